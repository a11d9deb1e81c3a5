"""What the Inspect tab shows beside the feature maps, and where each view's numbers come from.

While a run is live only its worker touches the network: the block rows and the Grad-CAM of
the predicted class come with the worker's epoch-end probe, and whatever needs the network
itself (another class's Grad-CAM, an effective receptive field, an image file, the gallery's
"why?") waits for the run's end, saying so. When no run is live, those are computed on the
idle network in the session's helper thread (:class:`~resnet_gui.qt.shared.background.
BackgroundJobs`), never in the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QGraphicsRectItem, QListWidgetItem

import pyqtgraph as pg

from resnet_gui.errors import UserError
from resnet_gui.qt.inspect.block_view import BlockView
from resnet_gui.qt.inspect.cam_view import CamView, MistakeView
from resnet_gui.qt.inspect.feature_maps import FeatureMapView
from resnet_gui.qt.inspect.fields_view import BOX_COLOUR, FieldsView, Unit, unit_at
from resnet_gui.qt.inspect.image_drop import PredictionView, look_at_image_file
from resnet_gui.qt.inspect.images import INDEX_ROLE
from resnet_gui.qt.shared.session import TrainingSession
from resnet_gui.qt.shared.training_worker import MOSAIC_PAD, ProbeView

LIVE = "while a run is live only its worker touches the network"


@dataclass
class LensViews:
    """The views the lenses fill."""

    maps: FeatureMapView
    block: BlockView
    cam: CamView
    fields: FieldsView
    prediction: PredictionView
    mistakes: MistakeView


class InspectLenses(QObject):
    """Routes probes, clicks, class choices and image files to the views."""

    def __init__(self, session: TrainingSession, views: LensViews, parent: QObject) -> None:
        super().__init__(parent)
        self.session, self.views = session, views
        self.probe: ProbeView | None = None
        self.source = ""
        self.unit: Unit | None = None
        self.image: Path | None = None  # an image file shown (or waiting) instead of a test image
        self._test_image: int | None = None
        self.unit_marker = QGraphicsRectItem()
        self.unit_marker.setPen(pg.mkPen(BOX_COLOUR, width=2, cosmetic=True))
        self.unit_marker.setVisible(False)
        views.maps.maps_box.addItem(self.unit_marker)

        session.probe_ready.connect(self.on_probe)
        session.idle.connect(lambda: QTimer.singleShot(0, self._after_run))
        views.maps.probe_requested.connect(self.on_probe_requested)
        views.maps.maps_item.clicked.connect(self.on_map_clicked)
        views.cam.class_chosen.connect(lambda _target: self.refresh_cam())
        views.prediction.closed.connect(self.back_to_test_images)

    # -- what to probe ---------------------------------------------------------------------

    def on_probe_requested(self, layer: str, image_index: int) -> None:
        """A layer or test image was chosen: an image file stays shown through a change of
        layer; choosing a test image goes back to the test images."""
        chosen, self._test_image = self._test_image, image_index
        if self.image is not None and chosen in (None, image_index):
            self.look_at_image()
            return
        self.image = None
        self.session.request_probe(layer, image_index)

    def back_to_test_images(self) -> None:
        self.image = None
        self.views.prediction.clear()
        layer, index = self.views.maps.current_layer, self.views.maps.current_image
        if layer is not None and index is not None:
            self.session.request_probe(layer, index)

    def open_image(self, path: Path) -> None:
        """Show an image file: its prediction, its maps at the chosen layer and its CAM."""
        self.image = Path(path)
        self.look_at_image()

    def look_at_image(self) -> None:
        path, layer = self.image, self.views.maps.current_layer
        if path is None:
            return
        if layer is None:
            self.views.maps.show_message(f"Choose a layer to see {path.name}'s feature maps.")
            return
        if self.session.active:
            self.views.maps.show_message(f"{path.name} will show when the run ends: {LIVE}.")
            return

        def show(outcome) -> None:
            look, source = outcome
            if self.image == look.path:
                self.views.prediction.show_look(look, source)
                self.session.probe_ready.emit(look.probe, source)

        self.on_idle_network("probe", lambda network: (
            look_at_image_file(network, path, layer), network.source), show,
            self.views.maps.show_message)

    def _after_run(self) -> None:
        if self.image is not None:
            self.look_at_image()  # after the session's own probe: this one wins

    # -- a probe arrived -------------------------------------------------------------------

    def on_probe(self, probe: ProbeView, source: str) -> None:
        self.probe, self.source = probe, source
        if not probe.origin and not self.session.active:
            self.image = None
            self.views.prediction.clear()
        self.views.block.show_probe(probe, source)
        self.refresh_cam()
        if self.unit is not None and not self._fits(self.unit, probe):
            self.unit = None
            self.views.fields.clear()
        self.show_unit()

    # -- Grad-CAM --------------------------------------------------------------------------

    def refresh_cam(self) -> None:
        probe, cam = self.probe, self.views.cam
        if probe is None:
            return
        if probe.maps.shape[1] * probe.maps.shape[2] <= 1:
            cam.clear(f"{probe.layer} gives a vector, not maps, so Grad-CAM has nothing to "
                      "place; pick a convolution, block or stage.")
            return
        target = cam.target_class
        carried = probe.cam
        if carried is not None and (target is None or carried.target_class == target):
            cam.show_cam(carried, probe.image, self.source)
            return
        if self.session.active:
            note = (f"Grad-CAM of another class than the predicted one shows when the run "
                    f"ends: {LIVE}, and it computes the predicted class's at each epoch end.")
            if carried is not None:
                cam.show_cam(carried, probe.image, self.source)
                cam.show_message(note)
            else:
                cam.clear(note)
            return
        image, layer = probe.image, probe.layer

        def compute(network):
            import torch

            from resnet_gui.engine.explain import grad_cam

            return grad_cam(network.model, torch.from_numpy(image)[None], layer,
                            target), network.source

        self.on_idle_network("cam", compute, lambda done: cam.show_cam(done[0], image, done[1]),
                             cam.show_message)

    # -- receptive fields ------------------------------------------------------------------

    def on_map_clicked(self, x: float, y: float) -> None:
        if self.probe is not None:
            unit = unit_at(x, y, self.probe)
            if unit is not None:
                self.unit = unit
                self.show_unit()

    def show_unit(self) -> None:
        """The chosen unit's theoretical field now; its effective field from the idle
        network (in the helper thread), or a note while a run is live."""
        unit, probe, fields = self.unit, self.probe, self.views.fields
        self.unit_marker.setVisible(unit is not None)
        if unit is None or probe is None:
            return
        height, width = probe.tile_shape
        tile_row, tile_col = divmod(unit.channel, probe.columns)
        self.unit_marker.setRect(tile_col * (width + MOSAIC_PAD) + unit.col - 0.5,
                                 tile_row * (height + MOSAIC_PAD) + unit.row - 0.5, 1, 1)
        field = self.session.field_of(unit.layer)
        image_height, image_width = probe.image.shape[-2:]
        box = None if field is None else field.box(unit.row, unit.col, image_height,
                                                   image_width)
        fields.show_unit(unit, probe.image, field, box)
        if self.session.active:
            fields.show_message(f"{fields.info_label.text()} The effective field needs the "
                                f"network's gradients: it shows when the run ends ({LIVE}).")
            return
        image = probe.image

        def compute(network):
            import torch

            from resnet_gui.engine.fields import effective_receptive_field

            return effective_receptive_field(network.model, torch.from_numpy(image)[None],
                                             unit.layer, unit.row, unit.col, unit.channel)

        def done(heat) -> None:
            if self.unit == unit:
                fields.show_effective(heat)

        self.on_idle_network("field", compute, done, fields.show_message)

    @staticmethod
    def _fits(unit: Unit, probe: ProbeView) -> bool:
        height, width = probe.tile_shape
        return (unit.layer == probe.layer and unit.channel < probe.channels
                and unit.row < height and unit.col < width)

    # -- the gallery's "why did it say that?" ----------------------------------------------

    def explain_gallery_image(self, item: QListWidgetItem) -> None:
        index = item.data(INDEX_ROLE)
        mistakes, images = self.views.mistakes, self.session.images
        if index is None or images is None:
            return
        if self.session.active:
            mistakes.show_message(f"Test image #{index} is explained when the run ends: {LIVE}.")
            return
        truth, data = int(images.labels[index]), self.session.data
        layer = self.cam_layer()

        def compute(network):
            from resnet_gui.engine.explain import explain_test_image

            said = explain_test_image(network.model, data.test_images, index, None,
                                      network.prepare, layer)
            true = explain_test_image(network.model, data.test_images, index, truth,
                                      network.prepare, layer)
            image = network.prepare(data.test_images[index:index + 1])[0].float().cpu().numpy()
            return image, said, true, network.source

        def done(outcome) -> None:
            image, said, true, source = outcome
            mistakes.show_maps(image, said, true, images.class_names, index, source)

        self.on_idle_network("mistake", compute, done, mistakes.show_message)

    def cam_layer(self) -> str | None:
        """The chosen layer where it has maps to place a CAM on; else None (the last stage)."""
        probe = self.probe
        if probe is not None and probe.maps.shape[1] * probe.maps.shape[2] > 1:
            return probe.layer
        return None

    # -- running on the idle network -------------------------------------------------------

    def on_idle_network(self, key: str, compute: Callable[[Any], Any],
                        done: Callable[[Any], None], failed: Callable[[str], None]) -> None:
        """``compute(network)`` in the helper thread on the idle network, then ``done``."""
        try:
            network = self.session.idle_network()
        except UserError as problem:
            failed(str(problem))
            return
        self.session.idle_jobs.submit(key, lambda: compute(network), done, failed)
