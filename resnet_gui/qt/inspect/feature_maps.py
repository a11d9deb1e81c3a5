"""The feature-map view: pick a test image and a layer; see every channel of its output.

All channels are one mosaic in one ``ImageItem`` (row-major float32, explicit levels, a colour
map), beside the input image; clicking a tile enlarges that channel. The view only shows what
it is given: the inspect controller decides whether the maps come from a probe the worker ran
at an epoch end or from a short probe of the idle model.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.qt.inspect.images import INDEX_ROLE, ImageStrip
from resnet_gui.qt.shared.plot_items import ClickableImage
from resnet_gui.qt.shared.test_images import TestImages
from resnet_gui.qt.shared.training_worker import MOSAIC_PAD, ProbeView

NAME_ROLE = Qt.ItemDataRole.UserRole
THUMBNAILS_SHOWN = 48
SIGNED_COLOURS = pg.colormap.get("CET-D1")  # blue-white-red: signs matter before a ReLU
POSITIVE_COLOURS = pg.colormap.get("viridis")


def robust_levels(values: np.ndarray) -> tuple[float, float, bool]:
    """(low, high, signed): symmetric around 0 for signed maps, from 0 for non-negative ones;
    the 99.5th percentile rather than the maximum, so one hot pixel does not wash out the rest."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0, False
    signed = bool(finite.min() < 0)
    top = float(np.percentile(np.abs(finite), 99.5)) or float(np.abs(finite).max()) or 1.0
    return (-top, top, True) if signed else (0.0, top, False)


def tile_at(x: float, y: float, probe: ProbeView) -> int | None:
    """The channel whose tile holds mosaic pixel (x, y), or None for padding or outside."""
    height, width = probe.tile_shape
    column, row = int(x // (width + MOSAIC_PAD)), int(y // (height + MOSAIC_PAD))
    if x < 0 or y < 0 or column >= probe.columns:
        return None
    if x - column * (width + MOSAIC_PAD) >= width or y - row * (height + MOSAIC_PAD) >= height:
        return None
    channel = row * probe.columns + column
    return channel if channel < probe.channels else None


class FeatureMapView(QWidget):
    """``featureMapView``: layer tree, image chooser, input image, mosaic and enlarged tile."""

    probe_requested = Signal(str, int)  # layer, test-image index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("featureMapView")
        self.images: TestImages | None = None
        self.probe: ProbeView | None = None
        self.enlarged_channel: int | None = None

        self._make_choosers()
        self._make_graphics()
        self._make_labels()
        self._lay_out()

    # -- building ------------------------------------------------------------------------

    def _make_choosers(self) -> None:
        """The layer tree, and the class filter and strip to choose a test image."""
        self.layer_tree = QTreeWidget()
        self.layer_tree.setObjectName("featureLayerTree")
        self.layer_tree.setHeaderLabels(["Layer", "Type", "Output"])
        self.layer_tree.setUniformRowHeights(True)
        self.layer_tree.setMinimumWidth(320)
        self.layer_tree.currentItemChanged.connect(lambda *_: self._request())

        self.class_combo = QComboBox()
        self.class_combo.setObjectName("featureClassCombo")
        self.class_combo.addItem("All classes", None)
        self.class_combo.currentIndexChanged.connect(self._fill_strip)
        self.strip = ImageStrip(size=44)
        self.strip.setObjectName("featureImageStrip")
        self.strip.currentItemChanged.connect(lambda *_: self._request())

    def _make_graphics(self) -> None:
        """Left: the input and the enlarged channel, stacked; right: the mosaic, large."""
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setObjectName("featureMapGraphics")
        self.input_title = self.graphics.addLabel("input image", row=0, col=0, color="#333")
        self.input_box = self.graphics.addViewBox(row=1, col=0, lockAspect=True, invertY=True,
                                                  enableMouse=False)
        self.input_item = pg.ImageItem(axisOrder="row-major")
        self.input_box.addItem(self.input_item)
        self.channel_title = self.graphics.addLabel("click a tile to enlarge it", row=2, col=0,
                                                    color="#333")
        self.channel_box = self.graphics.addViewBox(row=3, col=0, lockAspect=True, invertY=True,
                                                    enableMouse=False)
        self.channel_item = pg.ImageItem(axisOrder="row-major")
        self.channel_box.addItem(self.channel_item)
        self.maps_box = self.graphics.addViewBox(row=0, col=1, rowspan=4, lockAspect=True,
                                                 invertY=True)
        self.maps_item = ClickableImage(axisOrder="row-major")
        self.maps_box.addItem(self.maps_item)
        self.maps_item.clicked.connect(self._clicked)
        self.highlight = pg.QtWidgets.QGraphicsRectItem()
        self.highlight.setPen(pg.mkPen("#ff7f0e", width=0))
        self.highlight.setVisible(False)
        self.maps_box.addItem(self.highlight)
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=POSITIVE_COLOURS,
                                          interactive=False, width=12)
        self.colour_bar.setImageItem([self.maps_item, self.channel_item])
        self.graphics.addItem(self.colour_bar, row=0, col=2, rowspan=4)
        grid = self.graphics.ci.layout
        grid.setColumnStretchFactor(0, 1)
        grid.setColumnStretchFactor(1, 4)
        grid.setRowStretchFactor(1, 1)
        grid.setRowStretchFactor(3, 1)

    def _make_labels(self) -> None:
        self.info_label = QLabel("Choose a layer and a test image.")
        self.info_label.setObjectName("featureInfoLabel")
        self.info_label.setWordWrap(True)
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Messages (loading, waiting for the epoch end) go here, under what is shown.
        self.status_label = QLabel("")
        self.status_label.setObjectName("featureStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: #555;")

    def _lay_out(self) -> None:
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("Test image"))
        chooser.addWidget(self.class_combo)
        chooser.addWidget(self.strip, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(chooser)
        right_layout.addWidget(self.graphics, 1)
        right_layout.addWidget(self.info_label)
        right_layout.addWidget(self.status_label)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.layer_tree)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([390, 1200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # -- inputs --------------------------------------------------------------------------

    def set_layers(self, layers: list[tuple[str, str, tuple[int, ...]]],
                   preferred: str | None = None) -> None:
        """(qualified module name, type name, output shape) in model order. Layers without
        spatial maps (flatten, fc) are listed but cannot be chosen. The selection survives
        when the same name is still there."""
        keep = self.current_layer
        self.layer_tree.blockSignals(True)
        try:
            self.layer_tree.clear()
            items: dict[str, QTreeWidgetItem] = {}
            first_spatial = None
            for name, type_name, shape in layers:
                parent_name = name.rsplit(".", 1)[0] if "." in name else None
                parent = items.get(parent_name) if parent_name else None
                item = QTreeWidgetItem([name.rsplit(".", 1)[-1], type_name,
                                        "×".join(str(size) for size in shape)])
                item.setData(0, NAME_ROLE, name)
                item.setToolTip(0, name)
                if len(shape) != 3:
                    item.setDisabled(True)
                    item.setToolTip(0, f"{name} has no spatial maps to show")
                elif first_spatial is None:
                    first_spatial = item
                if parent is None:
                    self.layer_tree.addTopLevelItem(item)
                else:
                    parent.addChild(item)
                items[name] = item
            self.layer_tree.expandToDepth(0)
            target = items.get(keep or preferred or "")
            if target is None or target.isDisabled():
                target = first_spatial
            if target is not None:
                self.layer_tree.setCurrentItem(target)
            # The tree shows every name whole (those of the layer table), children included.
            self.layer_tree.expandAll()
            for column in range(3):
                self.layer_tree.resizeColumnToContents(column)
            self.layer_tree.collapseAll()
            self.layer_tree.expandToDepth(0)
            if target is not None:
                self.layer_tree.scrollToItem(target)
        finally:
            self.layer_tree.blockSignals(False)
        self._request()

    def layer_names(self) -> list[str]:
        names = []

        def walk(item: QTreeWidgetItem) -> None:
            names.append(item.data(0, NAME_ROLE))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.layer_tree.topLevelItemCount()):
            walk(self.layer_tree.topLevelItem(i))
        return names

    def select_layer(self, name: str) -> bool:
        item = self._layer_item(name)
        if item is not None:
            self.layer_tree.setCurrentItem(item)
        return item is not None

    def set_test_images(self, images: TestImages | None) -> None:
        keep = self.current_image
        self.images = images
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("All classes", None)
        for label, name in enumerate(images.class_names if images is not None else ()):
            self.class_combo.addItem(name, label)
        self.class_combo.blockSignals(False)
        self._fill_strip(keep=keep)

    def select_image(self, index: int) -> None:
        """Show test image ``index`` (switching to its class's thumbnails when needed)."""
        if self.images is None or not 0 <= index < len(self.images):
            return
        if not self.strip.select_index(index):
            self.class_combo.setCurrentIndex(
                self.class_combo.findData(int(self.images.labels[index])))
            self._fill_strip(keep=index)

    @property
    def current_layer(self) -> str | None:
        item = self.layer_tree.currentItem()
        return item.data(0, NAME_ROLE) if item is not None else None

    @property
    def current_image(self) -> int | None:
        item = self.strip.currentItem()
        return item.data(INDEX_ROLE) if item is not None else None

    # -- output --------------------------------------------------------------------------

    @property
    def tile_count(self) -> int:
        """Channels shown in the mosaic (0 before any probe)."""
        return self.probe.channels if self.probe is not None else 0

    def show_probe(self, probe: ProbeView, source: str) -> None:
        self.probe = probe
        self.status_label.setText("")
        low, high, signed = self._levels = robust_levels(probe.maps)
        colours = SIGNED_COLOURS if signed else POSITIVE_COLOURS
        # The padding between tiles is NaN, which an ImageItem leaves transparent.
        self.maps_item.setImage(probe.mosaic, levels=(low, high), autoLevels=False)
        self.colour_bar.setColorMap(colours)
        self.colour_bar.setLevels((low, high))
        self.input_item.setImage(_display_image(probe.image), autoLevels=True)
        self.maps_box.autoRange(padding=0.01)
        self.input_box.autoRange(padding=0.02)
        channel = self.enlarged_channel if self.enlarged_channel is not None else 0
        self.enlarge_channel(min(channel, probe.channels - 1))
        height, width = probe.tile_shape
        name = self.images.class_name(probe.label) if self.images is not None else str(probe.label)
        predicted = ""
        if probe.predicted >= 0:
            guess = (self.images.class_name(probe.predicted) if self.images is not None
                     else str(probe.predicted))
            predicted = f", predicted {guess}" + (
                "" if probe.origin else " ✓" if probe.predicted == probe.label else " ✗")
        subject = (f"test image #{probe.image_index} ({name}{predicted})" if not probe.origin
                   else f"{probe.origin} (an image file{predicted})")
        self.info_label.setText(
            f"<b>{probe.layer}</b>: {probe.channels} channels of {height}×{width} · {subject} · "
            f"{source}.")

    def show_message(self, text: str) -> None:
        """A remark under the maps; what the maps show stays described above it."""
        self.status_label.setText(text)

    def clear_maps(self, text: str) -> None:
        self.probe = None
        self.maps_item.clear()
        self.channel_item.clear()
        self.highlight.setVisible(False)
        self.info_label.setText(text)

    def enlarge_channel(self, channel: int) -> None:
        probe = self.probe
        if probe is None or not 0 <= channel < probe.channels:
            return
        self.enlarged_channel = channel
        low, high, _ = self._levels  # those of the mosaic it was clicked in
        self.channel_item.setImage(probe.maps[channel], levels=(low, high), autoLevels=False)
        self.channel_box.autoRange(padding=0.02)
        height, width = probe.tile_shape
        row, column = divmod(channel, probe.columns)
        self.highlight.setRect(column * (width + MOSAIC_PAD) - 0.5, row * (height + MOSAIC_PAD) - 0.5,
                               width + 1, height + 1)
        self.highlight.setVisible(True)
        self.channel_title.setText(f"channel {channel} of {probe.channels}")

    # -- internals -----------------------------------------------------------------------

    def _layer_item(self, name: str) -> QTreeWidgetItem | None:
        found = self.layer_tree.findItems(name.rsplit(".", 1)[-1],
                                          Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive)
        return next((item for item in found if item.data(0, NAME_ROLE) == name), None)

    def _clicked(self, x: float, y: float) -> None:
        if self.probe is not None:
            channel = tile_at(x, y, self.probe)
            if channel is not None:
                self.enlarge_channel(channel)

    def _fill_strip(self, *_, keep: int | None = None) -> None:
        label = self.class_combo.currentData()
        if self.images is None:
            self.strip.set_images(None, [])
            return
        indices = self.images.indices_of_class(label)[:THUMBNAILS_SHOWN]
        if keep is not None and keep not in indices and (
                label is None or int(self.images.labels[keep]) == label):
            indices = np.concatenate([[keep], indices[:-1]])
        self.strip.blockSignals(True)
        self.strip.set_images(self.images, indices)
        target = keep if keep is not None and keep in indices else (
            int(indices[0]) if len(indices) else None)
        if target is not None:
            self.strip.select_index(target)
        self.strip.blockSignals(False)
        self._request()

    def _request(self) -> None:
        layer, image = self.current_layer, self.current_image
        if layer is not None and image is not None:
            self.probe_requested.emit(layer, image)


def _display_image(image: np.ndarray) -> np.ndarray:
    """(C, H, W) network input -> (H, W) or (H, W, 3) for an ImageItem, stretched to 0..1."""
    array = np.asarray(image, np.float32)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    return (array - low) / (high - low) if high > low else np.zeros_like(array)
