"""Inside a residual block: y = act(x + F(x)) as four rows of channel maps (issue 12.2).

For the chosen test image: the shortcut x (after the projection, zero-padding or pooling that
brings it to the output's shape, where the block has one),
the residual branch F(x), their sum and the block's output, channel by channel, on one colour
scale, each row with its L2 norm beside it. The rows come with the feature probe (the
worker's at an epoch end, or the idle network's), so this view only draws.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from resnet_gui.engine.inspect import mosaic
from resnet_gui.qt.inspect.feature_maps import SIGNED_COLOURS, POSITIVE_COLOURS, robust_levels
from resnet_gui.qt.shared.test_images import TestImages
from resnet_gui.qt.shared.training_worker import MOSAIC_PAD, ProbeView

ROWS = ("shortcut", "branch", "sum", "output")
CHANNELS_SHOWN = 16  # channels per row: enough to compare, small enough to read
HINT = ("Choose a residual block in the layer tree (a row such as layer2.0) to see its "
        "shortcut x, its branch F(x), their sum and its output, side by side.")


def row_titles(kind: str, projected: bool) -> dict[str, str]:
    """What each row is, in the words of y = act(x + F(x)); s(x) where the shortcut brings x
    to the output's shape (a projection, zero-padding or pooling)."""
    x = "s(x)" if projected else "x"
    return {
        "shortcut": f"{x}: the shortcut" + (" (x reshaped)" if projected else ""),
        "branch": "F(x): the residual branch",
        "sum": f"{x} + F(x): the sum",
        "output": ("output (the sum: no ReLU after it in a pre-activation block)"
                   if kind.startswith("preact") else f"output: ReLU({x} + F(x))"),
    }


def channel_strip(maps: np.ndarray, first: int, count: int = CHANNELS_SHOWN) -> np.ndarray:
    """Channels ``first`` .. ``first + count - 1`` of (channels, h, w) side by side."""
    return mosaic(maps[first:first + count], columns=count, pad=MOSAIC_PAD)


class BlockView(QWidget):
    """``blockView``: four rows of channel maps and their norms; a spin box pages through the
    channels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("blockView")
        self.images: TestImages | None = None
        self.probe: ProbeView | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.norm_texts: dict[str, str] = {}

        self.info_label = QLabel(HINT)
        self.info_label.setObjectName("blockInfoLabel")
        self.info_label.setWordWrap(True)
        self.channel_spin = QSpinBox()
        self.channel_spin.setObjectName("blockChannelSpin")
        self.channel_spin.setSingleStep(CHANNELS_SHOWN)
        self.channel_spin.setPrefix("from channel ")
        self.channel_spin.setToolTip(f"The rows show {CHANNELS_SHOWN} channels from this one on")
        self.channel_spin.valueChanged.connect(lambda _value: self._draw())
        self.channel_label = QLabel("")
        self._make_graphics()

        controls = QHBoxLayout()
        controls.addWidget(self.info_label, 1)
        controls.addWidget(self.channel_label)
        controls.addWidget(self.channel_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.graphics, 1)

    def _make_graphics(self) -> None:
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("blockGraphics")
        self.graphics.setBackground("w")
        self.row_labels: dict[str, pg.LabelItem] = {}
        self.row_items: dict[str, pg.ImageItem] = {}
        self.row_boxes: dict[str, pg.ViewBox] = {}
        for index, row in enumerate(ROWS):
            label = self.graphics.addLabel("", row=index, col=0, color="#222", justify="left")
            label.setFixedWidth(300)
            box = self.graphics.addViewBox(row=index, col=1, lockAspect=True, invertY=True,
                                           enableMouse=False)
            item = pg.ImageItem(axisOrder="row-major")
            box.addItem(item)
            self.row_labels[row], self.row_boxes[row], self.row_items[row] = label, box, item
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=SIGNED_COLOURS,
                                          interactive=False, width=12)
        self.colour_bar.setImageItem(list(self.row_items.values()))
        self.graphics.addItem(self.colour_bar, row=0, col=2, rowspan=len(ROWS))
        self.graphics.ci.layout.setColumnStretchFactor(1, 1)

    # -- inputs --------------------------------------------------------------------------

    def set_test_images(self, images: TestImages | None) -> None:
        self.images = images

    def show_probe(self, probe: ProbeView, source: str) -> None:
        """Show the probe's block rows, or say why there are none."""
        decomposition = probe.decomposition
        if decomposition is None:
            self.clear(f"{probe.layer} is not a block with a shortcut. {HINT}")
            return
        self.probe = probe
        channels = decomposition.output.shape[0]
        self.channel_spin.blockSignals(True)
        self.channel_spin.setRange(0, max(0, channels - 1))
        self.channel_spin.blockSignals(False)
        low, high, signed = robust_levels(np.concatenate(
            [getattr(decomposition, row).ravel() for row in ROWS]))
        self.levels = (low, high)
        self.colour_bar.setColorMap(SIGNED_COLOURS if signed else POSITIVE_COLOURS)
        self.colour_bar.setLevels(self.levels)
        self._label_rows()
        self.info_label.setText(
            f"<b>{probe.layer}</b> ({decomposition.kind} block"
            f"{', reshaping shortcut' if decomposition.projected else ', identity shortcut'}) · "
            f"{self._subject(probe)} · {source} · one colour scale for the four rows")
        self._draw()

    def clear(self, text: str = HINT) -> None:
        self.probe = None
        self.norm_texts = {}
        for row in ROWS:
            self.row_items[row].clear()
            self.row_labels[row].setText("")
        self.channel_label.setText("")
        self.info_label.setText(text)

    # -- drawing -------------------------------------------------------------------------

    def _label_rows(self) -> None:
        decomposition = self.probe.decomposition
        titles = row_titles(decomposition.kind, decomposition.projected)
        norms = dict(zip(ROWS, decomposition.norms))
        for row in ROWS:
            text = f"‖·‖ = {norms[row]:.4g}"
            if row == "branch" and norms["shortcut"] > 0:
                text += f", {norms['branch'] / norms['shortcut']:.2f} × the shortcut's"
            self.norm_texts[row] = text
            self.row_labels[row].setText(f"<b>{titles[row]}</b><br>{text}")

    def _draw(self) -> None:
        if self.probe is None:
            return
        decomposition = self.probe.decomposition
        channels = decomposition.output.shape[0]
        first = min(self.channel_spin.value(), channels - 1)
        shown = min(CHANNELS_SHOWN, channels - first)
        for row in ROWS:
            strip = channel_strip(getattr(decomposition, row), first, shown)
            self.row_items[row].setImage(strip, levels=self.levels, autoLevels=False)
            self.row_boxes[row].autoRange(padding=0.01)
        self.channel_label.setText(f"channels {first}–{first + shown - 1} of {channels}")

    def _subject(self, probe: ProbeView) -> str:
        def name(label: int) -> str:
            return self.images.class_name(label) if self.images is not None else str(label)

        if probe.origin:
            return f"{probe.origin}, predicted {name(probe.predicted)}"
        return (f"test image #{probe.image_index} ({name(probe.label)}, predicted "
                f"{name(probe.predicted)})")
