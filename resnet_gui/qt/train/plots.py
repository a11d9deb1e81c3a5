"""Live loss, accuracy and learning-rate plots, and the overlay of stored runs.

Curves are created once per run and fed with ``setData`` from a timer (never per event), on
plots that clip to the view and downsample automatically, with width-1 pens; non-finite
points are dropped before drawing. Hovering shows the values under the cursor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.engine.events import EpochEnd, StepEnd
from resnet_gui.engine.runs import RunLog
from resnet_gui.qt.train.plot_axis import ReadableAxis
from resnet_gui.qt.train.plot_legend import PlotLegend
from resnet_gui.qt.train.plot_ranges import (
    LossScale,
    accuracy_range,
    log_ticks,
    nice_ceiling,
    span,
)

REFRESH_MS = 80  # at most 12.5 redraws a second, and only when something changed
SECONDARY_EVERY = 4  # the learning-rate and speed plots redraw at every 4th tick
GROWTH_COLOUR = "#b45309"  # amber: where a run's network grew
SMOOTHING = 0.9  # exponential moving average of the per-step training loss and accuracy
EMPTY_LOSS_RANGE = (0.5, 2.5)  # the loss axis before any curve

# Colour per run: the live run first, then overlays (Tableau 10, readable on white).
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


class Series:
    """A growable pair of float arrays; appending is amortised O(1), reading is a view."""

    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity, np.float64)
        self._y = np.empty(capacity, np.float64)
        self.size = 0
        self.version = 0  # bumped on every change, so a curve redraws only when it changed

    def append(self, x: float, y: float) -> None:
        if self.size == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1
        self.version += 1

    def extend(self, xs, ys) -> None:
        for x, y in zip(xs, ys):
            self.append(x, y)

    def clear(self) -> None:
        self.size = 0
        self.version += 1

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]

    def finite(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.x, self.y
        keep = np.isfinite(x) & np.isfinite(y)
        return (x, y) if keep.all() else (x[keep], y[keep])

    def value_near(self, x: float) -> float | None:
        """The y of the point nearest ``x`` (x is sorted), or None when there is none."""
        xs, ys = self.finite()
        if not len(xs):
            return None
        i = int(np.searchsorted(xs, x))
        if i >= len(xs) or (i > 0 and abs(xs[i - 1] - x) <= abs(xs[i] - x)):
            i -= 1
        return float(ys[i])


class _Smoother:
    """Bias-corrected exponential moving average, as TensorBoard smooths."""

    def __init__(self, weight: float = SMOOTHING) -> None:
        self.weight, self._value, self._count = weight, 0.0, 0

    def __call__(self, value: float) -> float:
        if not math.isfinite(value):
            return value
        self._count += 1
        self._value = self.weight * self._value + (1 - self.weight) * value
        return self._value / (1 - self.weight ** self._count)


# What each plot shows: (curve key, label, plot, test-style?)
CURVES = (
    ("train_loss", "train loss", "loss", False),
    ("test_loss", "test loss", "loss", True),
    ("train_accuracy", "train acc", "accuracy", False),
    ("test_accuracy", "test acc", "accuracy", True),
    ("lr", "learning rate", "lr", False),
    ("speed", "examples/s", "speed", False),
)


class RunCurves:
    """The curve data of one run: per-step training values, per-epoch test values."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.series = {key: Series() for key, *_ in CURVES}
        self.raw_loss = Series()  # unsmoothed, drawn faintly behind the smoothed loss
        self._loss_smoother = _Smoother()
        self._accuracy_smoother = _Smoother()
        self.dirty = True

    def add_step(self, event: StepEnd) -> None:
        x = event.epoch_progress
        self.raw_loss.append(x, event.loss)
        self.series["train_loss"].append(x, self._loss_smoother(event.loss))
        self.series["train_accuracy"].append(x, 100.0 * self._accuracy_smoother(event.accuracy))
        self.series["lr"].append(x, event.lr)
        self.series["speed"].append(x, event.examples_per_sec)
        self.dirty = True

    def add_epoch(self, event: EpochEnd) -> None:
        x = event.epoch + 1.0
        self.series["test_loss"].append(x, event.test_loss)
        self.series["test_accuracy"].append(x, 100.0 * event.test_accuracy)
        self.dirty = True

    @classmethod
    def from_log(cls, log: RunLog) -> "RunCurves":
        curves = cls()
        curves.fill_from(log)
        return curves

    def fill_from(self, log: RunLog) -> None:
        """Replace the curves with a stored run's."""
        self.clear()
        steps, epochs = log.steps, log.epochs

        def number(value) -> float:
            return float("nan") if value is None else float(value)

        for i in range(len(steps["step"])):
            self.add_step(StepEnd(
                epoch=int(number(steps["epoch_progress"][i])), step=int(steps["step"][i]),
                batch=0, epoch_progress=number(steps["epoch_progress"][i]),
                loss=number(steps["loss"][i]), accuracy=number(steps["accuracy"][i]),
                lr=number(steps["lr"][i]), examples_per_sec=number(steps["examples_per_sec"][i])))
        for i in range(len(epochs["epoch"])):
            self.add_epoch(EpochEnd(
                epoch=int(epochs["epoch"][i]), step=int(epochs["step"][i]),
                train_loss=number(epochs["train_loss"][i]),
                train_accuracy=number(epochs["train_accuracy"][i]),
                test_loss=number(epochs["test_loss"][i]),
                test_accuracy=number(epochs["test_accuracy"][i]), lr=number(epochs["lr"][i]),
                seconds=number(epochs["seconds"][i]),
                examples_per_sec=number(epochs["examples_per_sec"][i])))

    def loss_values(self) -> tuple[np.ndarray, np.ndarray]:
        """(the first training losses, every loss value) for the loss plot's scale."""
        raw = self.raw_loss.y
        return raw, np.concatenate([raw, self.series["train_loss"].y,
                                    self.series["test_loss"].y])


@dataclass
class _PlottedRun:
    label: str
    curves: RunCurves
    items: dict[str, pg.PlotDataItem]
    raw_item: pg.PlotDataItem
    drawn: dict[str, int] = field(default_factory=dict)  # series version last drawn


class _PlotWidget(pg.PlotWidget):
    """A PlotWidget that says when the mouse leaves it (to hide the hover cursor)."""

    left = Signal()

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().leaveEvent(event)
        self.left.emit()


def _make_plot(name: str, title: str, y_label: str) -> pg.PlotWidget:
    widget = _PlotWidget(background="w", axisItems={"left": ReadableAxis("left")})
    widget.setObjectName(name)
    item = widget.getPlotItem()
    item.setTitle(title, color="#333", size="10pt")
    item.setLabel("bottom", "epoch")
    item.setLabel("left", y_label)
    # No grid and no auto-range: measured on a 2-core CPU they make each redraw 5-10x dearer
    # (13-22 ms instead of 2-3), time the training thread needs. Ranges are kept by
    # LivePlots._keep_ranges in coarse steps instead, so the axes rarely change.
    item.disableAutoRange()
    for axis in ("left", "bottom"):
        item.getAxis(axis).enableAutoSIPrefix(False)
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.setMenuEnabled(False)
    widget.setMinimumSize(220, 120)
    for axis in ("left", "bottom"):
        item.getAxis(axis).setTextPen("#444")
        item.getAxis(axis).setPen("#888")
    # A fixed width for the value axis: one that grows with its widest tick label ("2" ->
    # "2.25") resizes the view mid-run, and that full relayout and repaint was the longest
    # pause of the event loop while training. Equal widths also line up the linked epoch
    # axes of the plots stacked above one another.
    metrics = QFontMetrics(widget.font())
    item.getAxis("left").setWidth(metrics.horizontalAdvance("00,000.0") + metrics.height() + 14)
    return widget


class LivePlots(QWidget):
    """``lossPlot``, ``accuracyPlot`` and the learning rate below them, x-linked; the legend
    (``plotLegend``) and the loss plot's log-scale switch (``lossLogScale``) above them."""

    refreshed = Signal()  # after each redraw, for benchmarks

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _make_plot("lossPlot", "Loss", "cross-entropy")
        self.accuracy_plot = _make_plot("accuracyPlot", "Accuracy", "%")
        self.lr_plot = _make_plot("lrPlot", "Learning rate", "lr")
        self.speed_plot = _make_plot("speedPlot", "Training speed", "examples/s")
        for plot in (self.lr_plot, self.speed_plot):
            plot.setMinimumHeight(100)
        for plot in (self.accuracy_plot, self.lr_plot, self.speed_plot):
            plot.getPlotItem().setXLink(self.loss_plot.getPlotItem())
        self._plots = {"loss": self.loss_plot, "accuracy": self.accuracy_plot,
                       "lr": self.lr_plot, "speed": self.speed_plot}
        self.legend = PlotLegend()
        self.log_check = QCheckBox("Log-scale loss")
        self.log_check.setObjectName("lossLogScale")
        self.log_check.setToolTip("Show the loss on a logarithmic axis: the late, small "
                                  "improvements stay visible beside the first steps")
        self._hover = _Hover(self)
        # A plot the user zoomed or panned is left alone until its "A" button is pressed.
        self._following = {name: True for name in self._plots}
        self._ranges: dict[str, tuple[float, float]] = {}
        for name, plot in self._plots.items():
            item = plot.getPlotItem()
            item.vb.sigRangeChangedManually.connect(lambda *_, name=name: self._user_moved(name))
            item.autoBtn.clicked.connect(lambda *_, name=name: self._follow_again(name))
        self._lay_out()

        self.live = RunCurves()
        self.growth_lines: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []
        self._runs: dict[str, _PlottedRun] = {}
        self._add_run("live", "this run", self.live, RUN_COLOURS[0])
        self._next_colour = 1
        self.refresh_count = 0
        self.log_check.toggled.connect(self.set_loss_log)
        self.set_loss_log(True)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def _lay_out(self) -> None:
        # Each small plot sits under a big one of the same width, so linked epoch axes line
        # up on screen.
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.accuracy_plot, 0, 1)
        grid.addWidget(self.lr_plot, 1, 0)
        grid.addWidget(self.speed_plot, 1, 1)
        grid.setRowStretch(0, 4)
        grid.setRowStretch(1, 1)
        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        header.addWidget(self.legend, 1)
        header.addWidget(self.log_check, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addLayout(grid, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # -- live run ------------------------------------------------------------------------

    def mark_growths(self, marks) -> None:
        """A dashed vertical line on every plot at each (epoch, block) where the network
        grew; the next reset removes them."""
        for epoch, block in marks:
            for plot in self._plots.values():
                line = pg.InfiniteLine(pos=epoch, angle=90, movable=False, label=f"+{block}",
                                       labelOpts={"position": 0.92, "color": GROWTH_COLOUR},
                                       pen=pg.mkPen(GROWTH_COLOUR, width=1.5,
                                                    style=Qt.PenStyle.DashLine))
                line.setToolTip(f"The network grew here: {block} inserted")
                plot.getPlotItem().addItem(line, ignoreBounds=True)
                self.growth_lines.append((plot, line))

    @property
    def growth_marks(self) -> list[float]:
        """The epochs marked as growths (one per growth, from the loss plot)."""
        return [line.value() for plot, line in self.growth_lines if plot is self.loss_plot]

    def _clear_growths(self) -> None:
        for plot, line in self.growth_lines:
            plot.getPlotItem().removeItem(line)
        self.growth_lines.clear()

    def reset_live(self, label: str = "this run") -> None:
        self._clear_growths()
        self.live.clear()
        self._runs["live"].label = label
        self._runs["live"].drawn.clear()
        self._ranges.clear()
        self.refresh(everything=True)

    def load_live(self, label: str, log: RunLog, planned_epochs: int) -> None:
        """Show a stored run's curves in place of the live run's (a reopened run)."""
        self._clear_growths()
        self.live.fill_from(log)
        self._runs["live"].label = label
        self._runs["live"].drawn.clear()
        self._ranges.clear()
        self.set_planned_epochs(planned_epochs)
        self.refresh(everything=True)

    def add_step(self, event: StepEnd) -> None:
        self.live.add_step(event)

    def add_epoch(self, event: EpochEnd) -> None:
        self.live.add_epoch(event)

    # -- overlays ------------------------------------------------------------------------

    @property
    def overlay_ids(self) -> list[str]:
        return [key for key in self._runs if key != "live"]

    def show_run(self, run_id: str, label: str, log: RunLog) -> None:
        if run_id in self._runs:
            return
        colour = RUN_COLOURS[self._next_colour % len(RUN_COLOURS)]
        self._next_colour += 1
        self._add_run(run_id, label, RunCurves.from_log(log), colour)
        self._ranges.clear()
        self.refresh(everything=True)

    def hide_run(self, run_id: str) -> None:
        plotted = self._runs.pop(run_id, None)
        if plotted is None:
            return
        for key, item in plotted.items.items():
            self._plots[self._plot_of(key)].getPlotItem().removeItem(item)
        self.loss_plot.getPlotItem().removeItem(plotted.raw_item)
        self._ranges.clear()
        self._keep_ranges()

    def curves(self, run_id: str = "live") -> dict[str, pg.PlotDataItem]:
        return dict(self._runs[run_id].items)

    def run_colour(self, run_id: str) -> QColor:
        return self._runs[run_id].items["train_loss"].opts["pen"].color()

    @staticmethod
    def _plot_of(key: str) -> str:
        return next(plot for k, _, plot, _ in CURVES if k == key)

    def _add_run(self, run_id: str, label: str, curves: RunCurves, colour: str) -> None:
        items: dict[str, pg.PlotDataItem] = {}
        faint = QColor(colour)
        faint.setAlpha(55)
        raw_item = self.loss_plot.getPlotItem().plot(pen=pg.mkPen(faint, width=1))
        for key, _name, plot_name, is_test in CURVES:
            pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine if is_test
                           else Qt.PenStyle.SolidLine)
            options = dict(pen=pen, name=None)
            if is_test:
                options.update(symbol="o", symbolSize=5, symbolPen=pg.mkPen(colour, width=1),
                               symbolBrush=pg.mkBrush(colour))
            items[key] = self._plots[plot_name].getPlotItem().plot(**options)
        self._runs[run_id] = _PlottedRun(label, curves, items, raw_item)

    # -- the loss plot's scale -----------------------------------------------------------

    @property
    def loss_log(self) -> bool:
        return self.log_check.isChecked()

    def set_loss_log(self, on: bool) -> None:
        """A logarithmic (default) or linear loss axis."""
        if self.log_check.isChecked() != on:
            self.log_check.setChecked(on)  # comes back here through toggled
            return
        self.loss_plot.getPlotItem().setLogMode(y=on)
        self._ranges.pop("loss", None)
        self._keep_ranges()

    def loss_scale(self) -> LossScale:
        return LossScale([plotted.curves.loss_values() for plotted in self._runs.values()])

    # -- drawing -------------------------------------------------------------------------

    def refresh(self, everything: bool = False) -> None:
        """Redraw the curves whose data changed since the last redraw (timer-driven);
        ``everything`` includes the secondary plots whatever the tick."""
        self._ticks += 1
        # The learning rate and speed are secondary: a few redraws a second are plenty.
        secondary = everything or self._ticks % SECONDARY_EVERY == 0
        drew = False
        for plotted in self._runs.values():
            if not plotted.curves.dirty:
                continue
            pending = False
            for key, item in plotted.items.items():
                series = plotted.curves.series[key]
                if self._plot_of(key) in ("lr", "speed") and not secondary:
                    pending |= plotted.drawn.get(key) != series.version
                    continue
                if plotted.drawn.get(key) != series.version:
                    item.setData(*series.finite())
                    plotted.drawn[key] = series.version
                    drew = True
            raw = plotted.curves.raw_loss
            if plotted.drawn.get("raw") != raw.version:
                plotted.raw_item.setData(*raw.finite())
                plotted.drawn["raw"] = raw.version
                drew = True
            plotted.curves.dirty = pending
        if drew or everything:
            self._keep_ranges()
            self.refresh_count += 1
            self.refreshed.emit()

    _ticks = 0

    def set_planned_epochs(self, epochs: int) -> None:
        """The epoch axis spans the whole plan from the start, so it never has to move."""
        self.planned_epochs = max(1, int(epochs))
        self._keep_ranges()

    planned_epochs = 1

    def _user_moved(self, name: str) -> None:
        """Zoomed or panned by hand: left alone, with pyqtgraph's own ticks for any range."""
        self._following[name] = False
        if name == "loss":
            self.loss_plot.getPlotItem().getAxis("left").setTicks(None)

    def _follow_again(self, name: str) -> None:
        self._following[name] = True
        self._plots[name].getPlotItem().disableAutoRange()  # the button turned it on
        self._ranges.pop(name, None)
        if name == "loss":
            self._ranges.pop("x", None)
        self._keep_ranges()

    def _series_of(self, plot_name: str) -> list[Series]:
        return [plotted.curves.series[key] for plotted in self._runs.values()
                for key, _, plot, _ in CURVES if plot == plot_name]

    def _y_target(self, name: str) -> tuple[float, float] | None:
        """The range a followed plot should show: coarse steps (ten per decade), so that
        most redraws move only the curves, never the axes; the loss without off-scale
        points."""
        if name == "loss":
            scale = self.loss_scale()
            self._show_legend(scale)
            if scale.high is None:  # no curve yet: where a cross-entropy starts and falls to
                scale = LossScale([(np.array(EMPTY_LOSS_RANGE), np.array(EMPTY_LOSS_RANGE))])
            return scale.log_range() if self.loss_log else scale.linear_range()
        bounds = span(series.finite()[1] for series in self._series_of(name))
        if bounds is None:
            return None
        if name == "accuracy":
            return accuracy_range(*bounds)
        return 0.0, nice_ceiling(bounds[1] * 1.04)

    def _keep_ranges(self) -> None:
        right = float(self.planned_epochs)
        for series in self._series_of("loss"):
            xs = series.finite()[0]
            if len(xs):
                right = max(right, math.ceil(float(xs.max())))
        for name in self._plots:
            target = self._y_target(name)
            if target is None:
                continue
            if target[1] <= target[0]:
                target = (target[0], target[0] + 1.0)
            if self._following[name] and self._ranges.get(name) != target:
                self._ranges[name] = target
                self._plots[name].getPlotItem().setYRange(*target, padding=0)
                if name == "loss":
                    axis = self.loss_plot.getPlotItem().getAxis("left")
                    axis.setTicks(log_ticks(*target) if self.loss_log else None)
        if self._following["loss"] and self._ranges.get("x") != (0.0, right):
            self._ranges["x"] = (0.0, right)
            self.loss_plot.getPlotItem().setXRange(0.0, right, padding=0.02)

    def _show_legend(self, scale: LossScale) -> None:
        runs = list(self._runs.values())
        entries = [(plotted.label, self.run_colour(run_id).name())
                   for run_id, plotted in self._runs.items()
                   if run_id != "live" or plotted.curves.raw_loss.size or
                   plotted.curves.series["test_loss"].size or len(runs) == 1]
        off = [(plotted.label, highest) for plotted, highest in zip(runs, scale.off_scale)
               if highest is not None]
        self.legend.set_entries(entries, off)

    def values_near(self, plot_name: str, x: float) -> list[tuple[str, float, str]]:
        """(label, value, colour) of every curve of ``plot_name`` at the point nearest ``x``."""
        found = []
        for run_id, plotted in self._runs.items():
            for key, name, plot, _ in CURVES:
                if plot != plot_name:
                    continue
                value = plotted.curves.series[key].value_near(x)
                if value is not None:
                    label = name if run_id == "live" else f"{plotted.label} · {name}"
                    found.append((label, value, self.run_colour(run_id).name()))
        return found


class _Hover(QObject):
    """A vertical cursor across the three plots and the values under it."""

    def __init__(self, plots: LivePlots) -> None:
        super().__init__(plots)
        self.plots = plots
        self.lines = {}
        self.texts = {}
        for name, widget in plots._plots.items():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#999", width=1))
            line.setVisible(False)
            widget.getPlotItem().addItem(line, ignoreBounds=True)
            text = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 220),
                               border=pg.mkPen("#bbb"))
            text.setZValue(100)
            text.setVisible(False)
            widget.getPlotItem().addItem(text, ignoreBounds=True)
            self.lines[name], self.texts[name] = line, text
            widget.scene().sigMouseMoved.connect(
                lambda pos, name=name: self._moved(name, pos))
            widget.left.connect(self.hide)

    def hide(self) -> None:
        for item in (*self.lines.values(), *self.texts.values()):
            item.setVisible(False)

    def _moved(self, plot_name: str, scene_pos) -> None:
        plot = self.plots._plots[plot_name].getPlotItem()
        if not plot.sceneBoundingRect().contains(scene_pos):
            self.hide()
            return
        point = plot.vb.mapSceneToView(scene_pos)
        self.show_at(plot_name, point.x(), point.y())

    def show_at(self, plot_name: str, x: float, y: float | None = None) -> str:
        """Put the cursor at epoch ``x`` and list the values there; returns the text."""
        for line in self.lines.values():
            line.setPos(x)
            line.setVisible(True)
        values = self.plots.values_near(plot_name, x)
        text = self.texts[plot_name]
        for other in self.texts.values():
            if other is not text:
                other.setVisible(False)
        if not values:
            text.setVisible(False)
            return ""
        lines = [f"epoch {x:.2f}"]
        for label, value, colour in values:
            shown = {"lr": f"{value:.3g}", "accuracy": f"{value:.1f} %",
                     "speed": f"{value:,.0f}"}.get(plot_name, f"{value:.4f}")
            lines.append(f"<span style='color:{colour}'>■</span> {label}: {shown}")
        html = "<div style='color:#222; font-size:9pt'>" + "<br>".join(lines) + "</div>"
        text.setHtml(html)
        (x0, x1), (y0, y1) = self.plots._plots[plot_name].getPlotItem().vb.viewRange()
        # Keep the box inside the view: flip it to the left of the cursor past the middle.
        text.setAnchor((1, 0) if x > (x0 + x1) / 2 else (0, 0))
        text.setPos(x, y1)
        text.setVisible(True)
        return "\n".join(lines)
