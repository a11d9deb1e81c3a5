"""The Lab's lesion view (Veit, Wilber and Belongie 2016): a trained network with blocks
deleted, no retraining.

Three plots: the change of test accuracy when each block's branch is deleted (downsampling
blocks marked), accuracy against the number k of blocks deleted at random (mean and spread,
the plain twin's beside it when one is chosen), and the path-length distribution
Binomial(n, 1/2) with the gradient each length carries and the band of lengths that carries
most of it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from resnet_gui.engine.lab.lesion import GRADIENT_SHARE, LesionResult
from resnet_gui.qt.lab.checkpoint_view import CheckpointView
from resnet_gui.qt.lab.context import LabContext
from resnet_gui.qt.lab.controls import (
    DOWNSAMPLING_COLOUR,
    PLAIN_COLOUR,
    RESNET_COLOUR,
    plot_widget,
)

DEFAULT_IMAGES, DEFAULT_DRAWS = 2000, 10
COLOURS = (RESNET_COLOUR, PLAIN_COLOUR)


class LesionView(CheckpointView):
    name, run_text, default_images = "lesion", "Run the lesion study", DEFAULT_IMAGES

    def __init__(self, context: LabContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.draws_spin = QSpinBox()
        self.draws_spin.setObjectName("lesionDrawsSpin")
        self.draws_spin.setRange(1, 1000)
        self.draws_spin.setValue(DEFAULT_DRAWS)
        self.form.addRow("Random sets per k", self.draws_spin)
        self.strip = plot_widget("Deleting one block: change of test accuracy", "block",
                                 "Δ accuracy (points)", "lesionStrip")
        self.k_plot = plot_widget("Deleting k blocks at random", "blocks deleted (k)",
                                  "test accuracy (%)", "lesionKCurve")
        self.k_plot.addLegend(offset=(-10, 10), labelTextColor="#111827")
        self.paths_plot = plot_widget("Path lengths", "path length (blocks on the path)",
                                      "share (%)", "lesionPaths")
        self.paths_plot.addLegend(offset=(-10, 10), labelTextColor="#111827")
        self.summary = QLabel()
        self.summary.setObjectName("lesionSummary")
        self.summary.setWordWrap(True)
        plots = QGridLayout()
        plots.addWidget(self.strip, 0, 0, 1, 2)
        plots.addWidget(self.k_plot, 1, 0)
        plots.addWidget(self.paths_plot, 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.bar)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)

    def start(self) -> bool:
        paths = self.checkpoints()
        if paths is None:
            return False
        draws = self.draws_spin.value()

        def measure(trained, evalset, progress, stop):
            from resnet_gui.engine.lab.lesion import run_lesion

            return run_lesion(trained.model, evalset, draws=draws, network=trained.arch.name,
                              progress=progress, stop=stop)

        self.show_results([])
        return self.measure(paths, measure)

    # -- showing ----------------------------------------------------------------------

    def show_results(self, results: list[LesionResult]) -> None:
        self.results = list(results)
        self._draw()

    def _draw(self) -> None:
        for plot in (self.strip, self.k_plot, self.paths_plot):
            plot.clear()
        self._draw_strip()
        self._draw_k_curves()
        self._draw_paths()
        self.summary.setText(" ".join(summary_sentence(r) for r in self.results))

    def _draw_strip(self) -> None:
        plot = self.strip
        width = 0.8 / max(1, len(self.results))
        names: list[str] = []
        for index, result in enumerate(self.results):
            names = names if len(names) >= len(result.blocks) else \
                [block.name for block in result.blocks]
            x = np.arange(len(result.blocks)) + (index - (len(self.results) - 1) / 2) * width
            change = [100 * (b.accuracy - result.baseline_accuracy) for b in result.blocks]
            brushes = [pg.mkBrush(DOWNSAMPLING_COLOUR if b.downsampling else COLOURS[index])
                       for b in result.blocks]
            plot.addItem(pg.BarGraphItem(x=x, height=change, width=width, brushes=brushes,
                                         pen=pg.mkPen(COLOURS[index])))
        plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen("#374151")))
        plot.getAxis("bottom").setTicks([[(i, _short(name)) for i, name in enumerate(names)]])
        title = "Deleting one block: change of test accuracy (orange: downsampling blocks"
        if len(self.results) > 1:
            title += "; left bars ResNet, right bars plain"
        plot.getPlotItem().setTitle(title + ")", color="#111827", size="10pt")

    def _draw_k_curves(self) -> None:
        plot = self.k_plot
        plot.getPlotItem().legend.clear()
        for index, result in enumerate(self.results):
            if not result.delete_k:
                continue
            k = np.array([0] + [row.k for row in result.delete_k], dtype=float)
            mean = 100 * np.array([result.baseline_accuracy]
                                  + [row.mean_accuracy for row in result.delete_k])
            std = 100 * np.array([0.0] + [row.std for row in result.delete_k])
            colour = COLOURS[index]
            shift = 0.08 * index  # beside, not on top of, the other network's bars
            plot.addItem(pg.ErrorBarItem(x=k + shift, y=mean, height=2 * std, beam=0.15,
                                         pen=pg.mkPen(colour)))
            plot.plot(k + shift, mean, pen=pg.mkPen(colour, width=2), symbol="o",
                      symbolSize=6, symbolBrush=colour, symbolPen=colour,
                      name=f"{result.network} (mean ± std)")
        if self.results:
            chance = 100 * self.results[0].chance
            plot.addItem(pg.InfiniteLine(pos=chance, angle=0, label="chance",
                                         pen=pg.mkPen("#6b7280", style=Qt.PenStyle.DotLine)))

    def _draw_paths(self) -> None:
        plot = self.paths_plot
        plot.getPlotItem().legend.clear()
        paths = next((r.path_lengths for r in self.results if r.path_lengths), None)
        if paths is None:
            plot.getPlotItem().setTitle("Path lengths (a residual network's)", size="10pt")
            return
        lengths = np.array(paths.lengths, dtype=float)
        share = 100 * np.array(paths.paths) / 2.0 ** paths.n
        gradient = np.nan_to_num(np.array(paths.gradient_total, dtype=float))
        gradient = 100 * gradient / gradient.sum() if gradient.sum() > 0 else gradient
        plot.addItem(pg.BarGraphItem(x=lengths, height=share, width=0.8,
                                     brush=pg.mkBrush("#9ca3af"), pen=pg.mkPen("#6b7280")))
        plot.plot(lengths, share, pen=None, name=f"paths: Binomial({paths.n}, ½)",
                  symbol="s", symbolBrush="#9ca3af", symbolPen="#6b7280", symbolSize=5)
        plot.plot(lengths, gradient, pen=pg.mkPen(RESNET_COLOUR, width=2.5), symbol="o",
                  symbolSize=6, symbolBrush=RESNET_COLOUR, name="gradient carried")
        if paths.effective:
            low, high = paths.effective
            plot.addItem(pg.LinearRegionItem((low - 0.5, high + 0.5), movable=False,
                                             brush=pg.mkBrush(31, 119, 180, 40),
                                             pen=pg.mkPen(None)))
        plot.getPlotItem().setTitle(
            f"Paths: bars of the 2^{paths.n} paths, line of the gradient; shaded: "
            f"{100 * GRADIENT_SHARE:.0f} % of the gradient", size="10pt")


def summary_sentence(result: LesionResult) -> str:
    text = (f"{result.network}: intact {100 * result.baseline_accuracy:.1f} % on "
            f"{result.images:,} images (chance {100 * result.chance:.0f} %).")
    worst = min(result.blocks, key=lambda b: b.accuracy, default=None)
    if worst is not None:
        text += (f" Deleting {worst.name} hurts most: {100 * worst.accuracy:.1f} %"
                 f"{' (a downsampling block)' if worst.downsampling else ''}.")
    paths = result.path_lengths
    if paths is not None and paths.effective:
        text += (f" {100 * GRADIENT_SHARE:.0f} % of the gradient flows along paths of "
                 f"{paths.effective[0]}–{paths.effective[1]} of {paths.n} blocks (the mean "
                 f"path is {paths.n / 2:g}).")
    if result.stopped:
        text += " Cancelled before the end."
    return text


def _short(name: str) -> str:
    """"layer2.0" -> "2.0": the strip's ticks stay readable for deep networks."""
    return name.removeprefix("layer")
