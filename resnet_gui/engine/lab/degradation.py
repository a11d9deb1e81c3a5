"""The degradation problem (He, Zhang, Ren and Sun 2015, Fig. 1 and Fig. 6): a deeper plain
network trains worse than a shallower one, while a deeper residual network trains at least as
well.

For each depth, ResNet-d and its plain twin train with one recipe and one seed on the same
data; the result holds each run's parameters, final training and test error, and its curves
(per epoch, and per reported step for the training error).

Training error is the trainer's running error over each epoch's batches, in training mode,
as in the paper's curves; test error is evaluated at each epoch end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnet_gui.arch.lab import DEFAULT_DEPTHS, HE_TABLE6_TEST_ERROR, LAB_RECIPE, check_depths
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import Recipe, validate_recipe
from resnet_gui.arch.twin import plain_twin
from resnet_gui.engine.data import DataBundle
from resnet_gui.engine.events import Callback, EpochEnd, StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.lab.common import LabResult, ProgressCallback, Reporter
from resnet_gui.engine.runs import RunStore
from resnet_gui.errors import TrainingError

KINDS = ("resnet", "plain")


@dataclass
class DegradationRun:
    depth: int
    kind: str  # "resnet" or "plain"
    network: str  # "resnet56", "plain56"
    parameters: int
    final_train_error: float  # of the last epoch (NaN when no epoch finished)
    final_test_error: float
    epochs: list[int] = field(default_factory=list)  # 1, 2, ...
    train_error: list[float] = field(default_factory=list)  # per epoch
    test_error: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)  # optimizer steps at each report
    step_epoch: list[float] = field(default_factory=list)  # the same in epochs
    step_train_error: list[float] = field(default_factory=list)  # since the previous report
    reason: str = "completed"  # the trainer's, or "diverged"
    message: str = ""
    checkpoint: str | None = None  # where the trained network was saved, if asked
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class DegradationResult(LabResult):
    depths: list[int]
    dataset: str
    num_train: int
    num_test: int
    recipe: dict[str, Any]
    runs: list[DegradationRun]
    reference_test_error: dict[int, float]  # He et al. Table 6, CIFAR-10, %
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stopped: bool = False

    def run(self, kind: str, depth: int) -> DegradationRun | None:
        return next((r for r in self.runs if r.kind == kind and r.depth == depth), None)

    def findings(self) -> list[str]:
        """What the runs show, one sentence per kind, comparing the shallowest and deepest."""
        if len(self.depths) < 2:
            return []
        low, high = min(self.depths), max(self.depths)
        sentences = []
        for kind, label in (("plain", "plain"), ("resnet", "ResNet")):
            a, b = self.run(kind, low), self.run(kind, high)
            if a is None or b is None or a.final_train_error != a.final_train_error or (
                    b.final_train_error != b.final_train_error):
                continue
            verdict = ("worse than" if b.final_train_error > a.final_train_error
                       else "at least as well as")
            sentences.append(
                f"{label}-{high} trains {verdict} {label}-{low}: training error "
                f"{100 * b.final_train_error:.2f} % vs {100 * a.final_train_error:.2f} %")
        return sentences


def degradation_architecture(kind: str, depth: int, data: DataBundle) -> Architecture:
    """ResNet-``depth`` or its plain twin, for ``data``'s channels and classes, at the
    images' own size (no resizing: the budget was measured there)."""
    check_depths([depth])
    arch = build_preset(f"resnet{depth}", in_channels=data.channels,
                        num_classes=data.num_classes, input_size=data.image_size)
    return plain_twin(arch) if kind == "plain" else arch


class _RunRecorder(Callback):
    """Records one run's curves, forwards its events as progress, and stops it on request."""

    def __init__(self, run: DegradationRun, reporter: Reporter, offset: int, total: int) -> None:
        self.run, self.reporter, self.offset, self.total = run, reporter, offset, total
        self.trainer = None  # set before the run starts
        self.steps_per_epoch = 1

    def _forward(self, event: Any, step: int, message: str) -> None:
        if self.reporter.stopped and self.trainer is not None:
            self.trainer.request_stop()
        self.reporter.done = self.offset + min(step, self.total)
        self.reporter.report(message, run=self.run.network, event=event)

    def on_train_start(self, event: TrainStart) -> None:
        self.steps_per_epoch = event.steps_per_epoch
        self._forward(event, 0, f"training {self.run.network}")

    def on_batch_end(self, event: StepEnd) -> None:
        self.run.step.append(event.step)
        self.run.step_epoch.append(event.epoch_progress)
        self.run.step_train_error.append(1.0 - event.accuracy)
        self._forward(event, event.step, f"training {self.run.network}: epoch "
                      f"{event.epoch + 1}, training error {100 * (1 - event.accuracy):.1f} %")

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.run.epochs.append(event.epoch + 1)
        self.run.train_error.append(1.0 - event.train_accuracy)
        self.run.test_error.append(1.0 - event.test_accuracy)
        self._forward(event, event.step, f"{self.run.network}: epoch {event.epoch + 1} done, "
                      f"test error {100 * (1 - event.test_accuracy):.1f} %")

    def on_train_end(self, event: TrainEnd) -> None:
        self._forward(event, event.step, f"{self.run.network}: {event.reason}")


def run_degradation(data: DataBundle, depths=DEFAULT_DEPTHS, recipe: Recipe = LAB_RECIPE,
                    kinds=KINDS, checkpoint_dir: str | Path | None = None,
                    store: RunStore | None = None,
                    progress: ProgressCallback | None = None,
                    stop: threading.Event | None = None) -> DegradationResult:
    """Train ResNet-d and plain-d for every depth in ``depths`` with ``recipe`` on ``data``
    (already limited as the recipe asks). A run that diverges is recorded as such and the
    others go on; after ``stop`` the runs not started are left out. With ``checkpoint_dir``
    each network is saved there as ``NAME.pt`` (for the lesion and landscape experiments).
    With ``store`` each run is also recorded there like any training run (the window's run
    list shows it), its checkpoint in the run's folder."""
    from resnet_gui.engine.analysis import analyse
    from resnet_gui.engine.runs import RunRecorder
    from resnet_gui.engine.trainer import Trainer, steps_in_epoch

    depths = check_depths(depths)
    recipe = validate_recipe(recipe)
    plan = [(kind, depth) for kind in kinds for depth in depths]
    steps = recipe.epochs * steps_in_epoch(data.num_train, recipe.batch_size)
    if recipe.max_steps is not None:
        steps = min(steps, recipe.max_steps)
    reporter = Reporter("degradation", steps * len(plan), progress, stop)
    runs: list[DegradationRun] = []
    for index, (kind, depth) in enumerate(plan):
        if reporter.stopped:
            break
        arch = degradation_architecture(kind, depth, data)
        run = DegradationRun(depth=depth, kind=kind, network=arch.name,
                             parameters=analyse(arch).total_params,
                             final_train_error=float("nan"), final_test_error=float("nan"))
        runs.append(run)
        recorder = _RunRecorder(run, reporter, index * steps, steps)
        callbacks: list[Callback] = [recorder]
        checkpoint = Path(checkpoint_dir) / f"{arch.name}.pt" if checkpoint_dir else None
        if store is not None:
            stored = store.create(arch, recipe)
            callbacks.insert(0, RunRecorder(store, stored))
            checkpoint = checkpoint or store.checkpoint_path(stored.run_id)
        trainer = recorder.trainer = Trainer(arch, recipe, callbacks=callbacks, data=data,
                                             checkpoint_path=checkpoint)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            end = trainer.run()
            run.reason, run.message = end.reason, end.message
            # The last epoch's running training error and last evaluation (a stopped run's
            # partial epoch, when it stopped before the first epoch ended).
            run.final_train_error = 1.0 - end.train_accuracy
            run.final_test_error = 1.0 - end.test_accuracy
            run.checkpoint = end.checkpoint
        except TrainingError as problem:  # divergence: a finding too, not the end of the lab
            run.reason, run.message = "diverged", str(problem)
        run.seconds = time.perf_counter() - started
        run.cpu_seconds = time.process_time() - cpu_started
    seconds, cpu_seconds = reporter.seconds()
    return DegradationResult(
        depths=depths, dataset=data.name, num_train=data.num_train, num_test=data.num_test,
        recipe=recipe.to_dict(), runs=runs, reference_test_error=dict(HE_TABLE6_TEST_ERROR),
        seconds=seconds, cpu_seconds=cpu_seconds, stopped=reporter.stopped)
