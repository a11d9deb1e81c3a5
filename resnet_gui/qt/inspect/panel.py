"""The Inspect tab: feature maps of any layer for any test image (or a dropped image file), with
a residual block's x / F(x) rows, Grad-CAM and receptive fields beside them, and the last
evaluation with the gallery's "why?"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from resnet_gui.qt.inspect.block_view import BlockView
from resnet_gui.qt.inspect.cam_view import CamView, MistakeView
from resnet_gui.qt.inspect.evaluation import EvaluationView
from resnet_gui.qt.inspect.feature_maps import FeatureMapView
from resnet_gui.qt.inspect.fields_view import FieldsView
from resnet_gui.qt.inspect.image_drop import PredictionView, image_files
from resnet_gui.qt.inspect.lenses import InspectLenses, LensViews
from resnet_gui.qt.shared.session import TrainingSession
from resnet_gui.arch.recipe import Recipe


class InspectPanel(QWidget):
    """``inspectPanel``: a Feature maps page and a Mistakes page; image files dropped on it
    are classified and probed."""

    def __init__(self, session: TrainingSession, current_recipe: Callable[[], Recipe],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspectPanel")
        self.setAcceptDrops(True)
        self.session = session
        self.current_recipe = current_recipe
        self.feature_maps = FeatureMapView()
        self.block_view = BlockView()
        self.cam_view = CamView()
        self.fields_view = FieldsView()
        self.prediction = PredictionView()
        self.evaluation = EvaluationView()
        self.mistakes = MistakeView()
        self.pages = QTabWidget()
        self.pages.setObjectName("inspectPages")
        self.pages.setDocumentMode(True)
        self.pages.addTab(self._feature_page(), "Feature maps")
        self.pages.addTab(self._mistakes_page(), "Confusion and mistakes")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)
        self.lenses = InspectLenses(session, LensViews(
            self.feature_maps, self.block_view, self.cam_view, self.fields_view,
            self.prediction, self.mistakes), self)

        # Edits arrive in bursts (a spin box being stepped): rebuild the layer tree once.
        self._layers_stale = True
        self._layer_timer = QTimer(self)
        self._layer_timer.setSingleShot(True)
        self._layer_timer.setInterval(200)
        self._layer_timer.timeout.connect(self.refresh_layers)

        self.evaluation.gallery.itemClicked.connect(self.lenses.explain_gallery_image)
        session.images_changed.connect(self._on_images)
        session.evaluation_changed.connect(self._on_evaluation)
        session.probe_ready.connect(self.feature_maps.show_probe)
        session.probe_message.connect(self.feature_maps.show_message)
        session.architecture_changed.connect(self._architecture_changed)
        session.run_started.connect(self._on_run_started)
        session.idle.connect(self._architecture_changed)
        if session.images is not None:
            self._on_images(session.images)

    def _feature_page(self) -> QWidget:
        """The maps and, beside them, the image file's prediction, Grad-CAM and the receptive
        field; the block's rows beneath."""
        side = QWidget()
        side.setObjectName("inspectSide")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 0, 0)
        side_layout.addWidget(self.prediction)
        side_layout.addWidget(self.cam_view, 1)
        side_layout.addWidget(self.fields_view, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.feature_maps)
        top.addWidget(side)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 1)
        top.setSizes([1150, 420])
        page = QSplitter(Qt.Orientation.Vertical)
        page.setObjectName("featurePage")
        page.addWidget(top)
        page.addWidget(self.block_view)
        page.setStretchFactor(0, 3)
        page.setStretchFactor(1, 2)
        page.setSizes([600, 330])
        return page

    def _mistakes_page(self) -> QWidget:
        page = QSplitter(Qt.Orientation.Horizontal)
        page.addWidget(self.evaluation)
        page.addWidget(self.mistakes)
        page.setStretchFactor(0, 3)
        page.setStretchFactor(1, 1)
        page.setSizes([1150, 420])
        return page

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        self.prepare()

    def prepare(self) -> None:
        """Make the views current: the layer tree, and the test images (loaded once)."""
        if self._layers_stale:
            self.refresh_layers()
        if self.session.images is None:
            try:
                self.session.ensure_images(self.current_recipe())
            except Exception as problem:  # an unfinished form: say so where the maps go
                self.feature_maps.show_message(str(problem))

    def refresh_layers(self) -> None:
        self._layers_stale = False
        wish = self.session.probe_wish
        self.feature_maps.set_layers(self.session.layers(), preferred=wish[0] if wish else None)

    def show_layer(self, name: str) -> bool:
        """Select layer (or block) ``name`` on the Feature maps page, as a click in the layer
        tree does; False when the network has no such layer."""
        self.pages.setCurrentIndex(0)
        if self._layers_stale:
            self.refresh_layers()
        return self.feature_maps.select_layer(name)

    # -- image files -----------------------------------------------------------------------

    def show_image_file(self, path: str | Path) -> None:
        """Classify an image file and show its maps and CAM, as dropping it here does."""
        self.pages.setCurrentIndex(0)
        self.lenses.open_image(Path(path))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if image_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()  # a checkpoint or an architecture: the window opens those

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        paths = image_files(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.show_image_file(paths[0])
        if len(paths) > 1:
            self.feature_maps.show_message(f"{len(paths)} images dropped: showing the first, "
                                           f"{paths[0].name}.")

    # -- session events --------------------------------------------------------------------

    def _architecture_changed(self) -> None:
        self._layers_stale = True
        if self.isVisible():
            self._layer_timer.start()

    def _on_run_started(self, event) -> None:
        self.cam_view.set_class_names(tuple(event.class_names))
        self._architecture_changed()

    def _on_images(self, images) -> None:
        self.feature_maps.set_test_images(images)
        self.evaluation.set_test_images(images)
        self.block_view.set_test_images(images)
        self.cam_view.set_class_names(images.class_names if images is not None else ())
        if self.session.evaluation is not None:
            self._on_evaluation(self.session.evaluation, self.session.class_names)

    def _on_evaluation(self, evaluation, class_names) -> None:
        self.evaluation.set_evaluation(evaluation, class_names,
                                       getattr(evaluation, "predictions", None))
