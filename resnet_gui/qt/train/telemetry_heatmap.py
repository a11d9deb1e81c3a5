"""The Train tab's block telemetry: a heatmap of residual blocks (rows) over training time
(columns, one per sampled step), for one metric at a time.

It keeps the samples in a :class:`~resnet_gui.engine.telemetry.TelemetryHistory`, as the run
store does, so a live run and a reopened one are drawn the same way. Metrics whose values span
a decade or more are coloured on a log scale (the residual ratio typically runs from ~1 in the
first blocks to ~0.05 in the last). Hovering a cell says its block, step and value; clicking
it asks for that block in Inspect (``block_clicked``).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from resnet_gui.engine.events import TelemetryEvent
from resnet_gui.engine.telemetry import METRICS, TelemetryHistory
from resnet_gui.qt.shared.plot_items import ClickableImage

METRIC_LABELS = {
    "residual_ratio": "Residual ratio ‖F(x)‖/‖x‖",
    "cosine": "Cosine cos(F(x), x)",
    "grad_norm": "Gradient norm",
    "weight_norm": "Weight norm",
}
LOG_SPAN = 10.0  # a log colour scale once the largest value is this many times the smallest
REFRESH_MS = 250  # samples come every N steps: a few redraws a second are plenty
MAX_STEP_LABELS = 8
MAGNITUDE_COLOURS = pg.colormap.get("viridis")
SIGNED_COLOURS = pg.colormap.get("CET-D1")  # blue-white-red: a cosine's sign matters
EMPTY_TEXT = ("No block telemetry yet: while a run trains, each residual block is sampled "
              "every few steps (Telemetry setting) and shows here.")


def colour_scale(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """(what to colour, log?): log10 of the values when all finite ones are positive and
    span at least :data:`LOG_SPAN`; the values themselves otherwise."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() >= LOG_SPAN:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(values), True
    return values, False


def nice_stride(count: int, most: int = MAX_STEP_LABELS) -> int:
    """Label every 1, 2, 5, 10, 20, ... columns so that at most ``most`` labels show."""
    stride = 1
    for factor in (2, 2.5, 2) * 10:
        if count / stride <= most:
            break
        stride = int(stride * factor)
    return max(1, stride)


class StepAxis(pg.AxisItem):
    """The column axis: ticks at column centres, labelled with the sampled step."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.steps: list[int] = []

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph naming)
        first, last = max(0, math.floor(minVal)), min(len(self.steps), math.ceil(maxVal))
        if last <= first:
            return []
        stride = nice_stride(last - first)
        start = math.ceil(first / stride) * stride
        return [(stride, [index + 0.5 for index in range(start, last, stride)])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph naming)
        return [f"{self.steps[int(v)]:,}" if 0 <= int(v) < len(self.steps) else ""
                for v in values]


class TelemetryHeatmap(QWidget):
    """``telemetryHeatmap``: the metric chooser (``telemetryMetric``) over the heatmap
    (``telemetryPlot``)."""

    block_clicked = Signal(str)  # a block's name, as Inspect's layer tree names it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("telemetryHeatmap")
        self.history = TelemetryHistory()
        self.metric_combo = QComboBox()
        self.metric_combo.setObjectName("telemetryMetric")
        for metric in METRICS:
            self.metric_combo.addItem(METRIC_LABELS[metric], metric)
        self.metric_combo.setToolTip("What the colours show for each block at each sample")
        self.note = QLabel(EMPTY_TEXT)
        self.note.setObjectName("telemetryNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #5b6474;")
        self._make_plot()
        self._lay_out()
        self.shown = np.zeros((0, 0), np.float32)  # the drawn metric, (blocks, samples)
        self.log_scale = False
        self._dirty = False
        self.metric_combo.currentIndexChanged.connect(lambda _index: self.refresh())
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._refresh_if_dirty)
        self._timer.start()

    def _make_plot(self) -> None:
        self.axis = StepAxis()
        self.plot = pg.PlotWidget(background="w", axisItems={"bottom": self.axis})
        self.plot.setObjectName("telemetryPlot")
        self.plot.setMinimumHeight(120)
        item = self.plot.getPlotItem()
        item.setTitle("Block telemetry", color="#333", size="10pt")
        item.setLabel("bottom", "training step")
        item.setMenuEnabled(False)
        item.hideButtons()
        item.invertY(True)  # the first block on top, as in the layer table
        item.setMouseEnabled(x=False, y=False)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setTextPen("#444")
            item.getAxis(axis).setPen("#888")
        self.image = ClickableImage(axisOrder="row-major")
        self.image.clicked.connect(self._clicked)
        item.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(colorMap=MAGNITUDE_COLOURS, interactive=False,
                                          width=14)
        self.colour_bar.setImageItem(self.image, insert_in=item)
        self.hover_text = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 225),
                                      border=pg.mkPen("#bbb"), color="#222")
        self.hover_text.setZValue(100)
        self.hover_text.setVisible(False)
        item.addItem(self.hover_text, ignoreBounds=True)
        self.plot.scene().sigMouseMoved.connect(self._moved)

    def _lay_out(self) -> None:
        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        header.addWidget(QLabel("Colour:"))
        header.addWidget(self.metric_combo)
        header.addWidget(self.note, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.plot, 1)

    # -- data ----------------------------------------------------------------------------

    @property
    def metric(self) -> str:
        return self.metric_combo.currentData()

    def set_metric(self, metric: str) -> None:
        self.metric_combo.setCurrentIndex(self.metric_combo.findData(metric))

    @property
    def blocks(self) -> tuple[str, ...]:
        return self.history.blocks

    def reset(self) -> None:
        """Forget the shown samples (a new run starts)."""
        self.history = TelemetryHistory()
        self.refresh()

    def load_history(self, history: TelemetryHistory) -> None:
        """Show a stored run's samples (a reopened run)."""
        self.history = TelemetryHistory.from_json(history.to_json())  # a copy of our own
        self.refresh()

    def add_event(self, event: TelemetryEvent) -> None:
        """A live sample; drawn at the next refresh tick."""
        if self.history.add(event):
            self._dirty = True

    # -- drawing -------------------------------------------------------------------------

    def _refresh_if_dirty(self) -> None:
        if self._dirty:
            self.refresh()

    def refresh(self) -> None:
        self._dirty = False
        self.hover_text.setVisible(False)
        history = self.history
        self.shown = history.metric(self.metric).T  # (blocks, samples)
        self.axis.steps = list(history.steps)
        count = len(history)
        self.note.setText(EMPTY_TEXT if not count else
                          f"{len(history.blocks)} blocks × {count} samples; hover a cell for "
                          "its value, click it to open the block in Inspect.")
        item = self.plot.getPlotItem()
        item.getAxis("left").setTicks([[(row + 0.5, name)
                                        for row, name in enumerate(history.blocks)]])
        if not count:
            self.image.clear()
            return
        coloured, self.log_scale = colour_scale(self.shown)
        self.image.setImage(coloured, autoLevels=False)
        self.image.setRect(0, 0, count, len(history.blocks))
        self._set_colours(coloured)
        item.setXRange(0, count, padding=0)
        item.setYRange(0, len(history.blocks), padding=0)

    def _set_colours(self, coloured: np.ndarray) -> None:
        finite = coloured[np.isfinite(coloured)]
        label = METRIC_LABELS[self.metric]
        if self.metric == "cosine":
            low, high, colours = -1.0, 1.0, SIGNED_COLOURS
        else:
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0, 1)
            colours = MAGNITUDE_COLOURS
        if high <= low:
            low, high = low - 0.5, high + 0.5
        self.colour_bar.setColorMap(colours)
        self.colour_bar.setLevels((low, high))
        self.colour_bar.setLabel("right", f"log₁₀ {label}" if self.log_scale else label)

    # -- hover and click -----------------------------------------------------------------

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(block row, sample column) at view coordinates ``x``, ``y``, or None outside."""
        row, column = math.floor(y), math.floor(x)
        if 0 <= row < self.shown.shape[0] and 0 <= column < self.shown.shape[1]:
            return row, column
        return None

    def describe(self, row: int, column: int) -> str:
        """The hover text of a cell: block, step and value."""
        value = float(self.shown[row, column])
        shown = f"{value:.4g}" if math.isfinite(value) else "not measured"
        return (f"{self.history.blocks[row]} · step {self.history.steps[column]:,} "
                f"(epoch {self.history.progress[column]:.2f})\n"
                f"{METRIC_LABELS[self.metric]}: {shown}")

    def _moved(self, scene_pos) -> None:
        item = self.plot.getPlotItem()
        cell = None
        if item.vb.sceneBoundingRect().contains(scene_pos):
            point = item.vb.mapSceneToView(scene_pos)
            cell = self.cell_at(point.x(), point.y())
        if cell is None:
            self.hover_text.setVisible(False)
            return
        self.show_hover(*cell)

    def show_hover(self, row: int, column: int) -> str:
        text = self.describe(row, column)
        self.hover_text.setText(text)
        # Keep the box inside the view: to the left of the cursor past the middle.
        right_half = column + 0.5 > self.shown.shape[1] / 2
        lower_half = row + 0.5 > self.shown.shape[0] / 2
        self.hover_text.setAnchor((1 if right_half else 0, 1 if lower_half else 0))
        self.hover_text.setPos(column + (0 if right_half else 1), row + (0 if lower_half else 1))
        self.hover_text.setVisible(True)
        return text

    def _clicked(self, x: float, y: float) -> None:
        # ClickableImage reports image pixels, which are our cells (rect starts at 0, 0).
        cell = self.cell_at(x, y)
        if cell is not None:
            self.block_clicked.emit(self.history.blocks[cell[0]])
