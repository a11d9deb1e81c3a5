"""The Lab's degradation view (He et al. 2015, Fig. 1 and Fig. 6): ResNet-d and plain-d
trained side by side, overlaid in the paper's style, with a table of the results.

The runs go through the engine's degradation experiment on a helper thread, each recorded in
the session's run store, so they appear in the Train tab's run list (and their checkpoints
serve the lesion and landscape views).
"""

from __future__ import annotations

import math
import re

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.arch.lab import (
    CIFAR_DEPTHS,
    DEFAULT_DEPTHS,
    HE_TABLE6_TEST_ERROR,
    LAB_RECIPE,
)
from resnet_gui.engine.events import EpochEnd, StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.lab.degradation import DegradationResult, DegradationRun
from resnet_gui.errors import UserError
from resnet_gui.qt.lab.context import LabContext
from resnet_gui.qt.lab.controls import Redrawer, RunBar, plot_widget
from resnet_gui.qt.lab.worker import ExperimentWorker

DEPTH_COLOURS = dict(zip(CIFAR_DEPTHS, ("#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                        "#ff7f0e")))
REDRAW_MS = 150
COLUMNS = ("Depth", "Kind", "Network", "Parameters", "Final train error", "Test error",
           "He et al. (CIFAR-10)")
REFERENCE_CAPTION = (
    "Training error thin and dashed, test error bold; one colour per depth. For reference, "
    "He et al. (2015) Table 6 CIFAR-10 test errors: "
    + " / ".join(f"ResNet-{d} {e:.2f} %" for d, e in HE_TABLE6_TEST_ERROR.items())
    + " (another dataset and a far longer budget: compare the ordering, not the values).")


def network_of(name: str) -> tuple[str, int]:
    """"plain56" -> ("plain", 56)."""
    match = re.search(r"(\d+)$", name)
    return ("plain" if name.startswith("plain") else "resnet"), int(match.group(1) if match
                                                                    else 0)


def percent(value: float) -> str:
    return f"{100 * value:.2f} %" if math.isfinite(value) else "n/a"


class DegradationView(QWidget):
    def __init__(self, context: LabContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("labDegradation")
        self.context = context
        self.worker = ExperimentWorker(self)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.runs: dict[str, DegradationRun] = {}  # by network name, live then final
        self.verdicts: dict[str, str] = {}  # why a run did not learn, by network name
        self.result: DegradationResult | None = None
        self.redrawer = Redrawer(self._redraw, REDRAW_MS, self)
        self._build()

    def _build(self) -> None:
        self.depth_boxes = {}
        depths = QHBoxLayout()
        for depth in CIFAR_DEPTHS:
            box = QCheckBox(str(depth))
            box.setObjectName(f"depth{depth}Box")
            box.setChecked(depth in DEFAULT_DEPTHS)
            self.depth_boxes[depth] = box
            depths.addWidget(box)
        depths.addStretch(1)
        self.epochs_spin = _spin("labEpochsSpin", 1, 500, LAB_RECIPE.epochs)
        self.limit_spin = _spin("labLimitTrainSpin", 10, 60000, LAB_RECIPE.limit_train or 60000)
        self.limit_spin.setSingleStep(1000)
        self.seed_spin = _spin("labSeedSpin", 0, 2**31 - 1, LAB_RECIPE.seed)
        form = QFormLayout()
        form.addRow("Depths (ResNet-d and plain-d each)", depths)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Training images (class-balanced)", self.limit_spin)
        form.addRow("Seed", self.seed_spin)
        self.bar = RunBar("Train the twins", "degradation")
        self.bar.run_button.clicked.connect(self.start)
        self.bar.cancel_button.clicked.connect(self.cancel)
        self.plain_plot = plot_widget("Plain networks", "epochs", "error (%)", "plainErrorPlot")
        self.resnet_plot = plot_widget("ResNets", "epochs", "error (%)", "resnetErrorPlot")
        for plot in (self.plain_plot, self.resnet_plot):
            plot.addLegend(offset=(-10, 10), labelTextColor="#111827")
        plots = QHBoxLayout()
        plots.addWidget(self.plain_plot)
        plots.addWidget(self.resnet_plot)
        self.caption = QLabel(REFERENCE_CAPTION)
        self.caption.setWordWrap(True)
        self.findings = QLabel()
        self.findings.setObjectName("degradationFindings")
        self.findings.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("degradationTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(190)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addLayout(plots, 1)
        layout.addWidget(self.caption)
        layout.addWidget(self.findings)
        layout.addWidget(self.table)

    # -- running ----------------------------------------------------------------------

    def depths(self) -> list[int]:
        chosen = [depth for depth, box in self.depth_boxes.items() if box.isChecked()]
        if not chosen:
            raise UserError("tick at least one depth, such as 20 and 56")
        return chosen

    def recipe(self):
        changes = {"epochs": self.epochs_spin.value(), "limit_train": self.limit_spin.value(),
                   "seed": self.seed_spin.value()}
        folder = self.context.data_folder()
        if folder:
            changes["data_dir"] = folder
        return LAB_RECIPE.replace(**changes)

    def start(self) -> bool:
        """Train ResNet-d and plain-d for each ticked depth; False (and a sentence) when the
        settings cannot run."""
        if self.worker.busy:
            return False
        try:
            if self.context.training_live():
                raise UserError("a training run is live in the Train tab; let it finish or "
                                "stop it before training the twins")
            depths, recipe = self.depths(), self.recipe()
        except UserError as problem:
            self.bar.problem(str(problem))
            return False
        store = self.context.store()
        self.runs, self.result, self.verdicts = {}, None, {}
        self._redraw()
        self.table.setRowCount(0)
        self.findings.clear()

        def experiment(progress, stop):
            from resnet_gui.engine.data import load_data
            from resnet_gui.engine.lab.degradation import run_degradation

            data = load_data(recipe)
            return run_degradation(data, depths=depths, recipe=recipe, store=store,
                                   progress=progress, stop=stop)

        self.bar.running(f"Loading {recipe.dataset}…")
        self.worker.start(experiment)
        self.redrawer.timer.start()
        return True

    def cancel(self) -> None:
        self.worker.cancel()
        self.bar.say("Stopping after the current step…")

    def _on_progress(self, progress) -> None:
        self.bar.show_progress(progress)
        event = progress.event
        if progress.run is None or event is None:
            return
        run = self.runs.get(progress.run)
        if run is None:
            kind, depth = network_of(progress.run)
            run = self.runs[progress.run] = DegradationRun(
                depth=depth, kind=kind, network=progress.run, parameters=0,
                final_train_error=math.nan, final_test_error=math.nan)
        if isinstance(event, StepEnd):
            run.step_epoch.append(event.epoch_progress)
            run.step_train_error.append(1.0 - event.accuracy)
        elif isinstance(event, EpochEnd):
            run.epochs.append(event.epoch + 1)
            run.train_error.append(1.0 - event.train_accuracy)
            run.test_error.append(1.0 - event.test_accuracy)
        if isinstance(event, TrainEnd) and event.learned is False:
            self.verdicts[progress.run] = event.verdict
        if isinstance(event, (TrainStart, EpochEnd, TrainEnd)):
            self.context.runs_changed()  # the run list shows the new run and its epochs
        self.redrawer.mark()

    def _on_finished(self, result: DegradationResult) -> None:
        self.redrawer.timer.stop()
        self.bar.idle()
        self.show_result(result)
        self.context.runs_changed()
        done = sum(run.reason == "completed" for run in result.runs)
        state = "Stopped" if result.stopped else "Done"
        self.bar.say(f"{state}: {done} of {len(result.runs)} runs completed in "
                     f"{result.seconds:.0f} s ({result.cpu_seconds:.0f} CPU-seconds); they "
                     "are in the Train tab's run list.")

    def _on_failed(self, sentence: str) -> None:
        self.redrawer.timer.stop()
        self.bar.idle()
        self.bar.problem(sentence)
        self.context.runs_changed()

    # -- showing ----------------------------------------------------------------------

    def show_result(self, result: DegradationResult) -> None:
        self.result = result
        self.runs = {run.network: run for run in result.runs}
        self._redraw()
        self._fill_table(result)
        lines = result.findings()
        if result.stopped:
            lines.append("Stopped early: the runs not started are missing.")
        self.findings.setText("\n".join(lines))

    def _redraw(self) -> None:
        for plot in (self.plain_plot, self.resnet_plot):
            plot.clear()
            plot.getPlotItem().legend.clear()
        for run in sorted(self.runs.values(), key=lambda r: (r.kind, r.depth)):
            plot = self.plain_plot if run.kind == "plain" else self.resnet_plot
            colour = DEPTH_COLOURS.get(run.depth, "#7f7f7f")
            label = f"{'plain' if run.kind == 'plain' else 'ResNet'}-{run.depth}"
            plot.plot([*run.step_epoch], [100 * e for e in run.step_train_error],
                      pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                      name=f"{label} train")
            plot.plot([*run.epochs], [100 * e for e in run.test_error],
                      pen=pg.mkPen(colour, width=3.5), symbol="o", symbolSize=6,
                      symbolBrush=colour, symbolPen=colour, name=f"{label} test")
        self._share_error_range()

    def _share_error_range(self) -> None:
        """One error axis for both plots, covering every curve of both (plain and ResNet
        compare by height)."""
        errors = [100 * e for run in self.runs.values()
                  for e in (*run.step_train_error, *run.test_error) if math.isfinite(e)]
        if errors:
            low, high = min(errors), max(errors)
            pad = max(1.0, 0.05 * (high - low))
            for plot in (self.plain_plot, self.resnet_plot):
                plot.setYRange(max(0.0, low - pad), min(100.0, high + pad), padding=0)

    def _fill_table(self, result: DegradationResult) -> None:
        self.table.setRowCount(len(result.runs))
        for row, run in enumerate(result.runs):
            reference = result.reference_test_error.get(run.depth) if run.kind == "resnet" \
                else None
            test = percent(run.final_test_error)
            if run.reason != "completed":
                test = f"{test} ({run.reason})"
            elif run.network in self.verdicts:
                test = f"{test} (did not learn)"
            cells = (str(run.depth), "ResNet" if run.kind == "resnet" else "plain",
                     run.network, f"{run.parameters:,}", percent(run.final_train_error), test,
                     f"{reference:.2f} %" if reference else "–")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column in (0, 3, 4, 5, 6):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if run.message or run.network in self.verdicts:
                    item.setToolTip(run.message or self.verdicts[run.network])
                self.table.setItem(row, column, item)

    def shutdown(self) -> None:
        self.worker.cancel()
        self.worker.wait()


def _spin(name: str, low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setGroupSeparatorShown(True)
    spin.setMaximumWidth(160)
    return spin
