"""The Inspect tab: feature maps of any layer for any test image, and the last evaluation."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from resnet_gui.qt.inspect.evaluation import EvaluationView
from resnet_gui.qt.inspect.feature_maps import FeatureMapView
from resnet_gui.qt.shared.session import TrainingSession
from resnet_gui.arch.recipe import Recipe


class InspectPanel(QWidget):
    """``inspectPanel``: a Feature maps page and a Mistakes page."""

    def __init__(self, session: TrainingSession, current_recipe: Callable[[], Recipe],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspectPanel")
        self.session = session
        self.current_recipe = current_recipe
        self.feature_maps = FeatureMapView()
        self.evaluation = EvaluationView()
        self.pages = QTabWidget()
        self.pages.setObjectName("inspectPages")
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.feature_maps, "Feature maps")
        self.pages.addTab(self.evaluation, "Confusion and mistakes")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)

        # Edits arrive in bursts (a spin box being stepped): rebuild the layer tree once.
        self._layers_stale = True
        self._layer_timer = QTimer(self)
        self._layer_timer.setSingleShot(True)
        self._layer_timer.setInterval(200)
        self._layer_timer.timeout.connect(self.refresh_layers)

        self.feature_maps.probe_requested.connect(session.request_probe)
        session.images_changed.connect(self._on_images)
        session.evaluation_changed.connect(self._on_evaluation)
        session.probe_ready.connect(self.feature_maps.show_probe)
        session.probe_message.connect(self.feature_maps.show_message)
        session.architecture_changed.connect(self._architecture_changed)
        session.run_started.connect(lambda _: self._architecture_changed())
        session.idle.connect(self._architecture_changed)
        if session.images is not None:
            self._on_images(session.images)

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

    def _architecture_changed(self) -> None:
        self._layers_stale = True
        if self.isVisible():
            self._layer_timer.start()

    def _on_images(self, images) -> None:
        self.feature_maps.set_test_images(images)
        self.evaluation.set_test_images(images)
        if self.session.evaluation is not None:
            self._on_evaluation(self.session.evaluation, self.session.class_names)

    def _on_evaluation(self, evaluation, class_names) -> None:
        self.evaluation.set_evaluation(evaluation, class_names,
                                       getattr(evaluation, "predictions", None))
