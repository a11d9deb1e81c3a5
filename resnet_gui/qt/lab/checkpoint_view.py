"""What the lesion and landscape views share: a ResNet checkpoint (and optionally its plain
twin's), the number of test images, Run/Cancel, and running an engine experiment on each
checkpoint in turn on a helper thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QFormLayout, QSpinBox, QWidget

from resnet_gui.errors import UserError
from resnet_gui.qt.lab.context import LabContext
from resnet_gui.qt.lab.controls import CheckpointField, RunBar, required_checkpoint
from resnet_gui.qt.lab.worker import ExperimentWorker


def on_checkpoints(paths: list[str], images: int, measure: Callable[..., Any]):
    """An experiment for :class:`ExperimentWorker`: for each path, load the checkpoint and
    ``images`` of its test images, then ``measure(trained, evalset, progress, stop)``.
    Progress arrives as ``(index, Progress)``; the result is the list of results (fewer
    when cancelled)."""

    def experiment(progress, stop) -> list[Any]:
        from resnet_gui.engine.lab.common import prepare_checkpoint

        results = []
        for index, path in enumerate(paths):
            if stop.is_set():
                break
            trained, evalset = prepare_checkpoint(path, images=images)
            results.append(measure(trained, evalset,
                                   lambda report, i=index: progress((i, report)), stop))
        return results

    return experiment


class CheckpointView(QWidget):
    """Subclasses set ``name``, ``run_text`` and ``default_images``, add their own fields to
    ``self.form``, and implement ``start()`` (through :meth:`measure`) and
    ``show_results(results)``."""

    name = ""
    run_text = ""
    default_images = 1000

    def __init__(self, context: LabContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"lab{self.name.capitalize()}")
        self.context = context
        self.results: list[Any] = []
        self.worker = ExperimentWorker(self)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.resnet_field = CheckpointField("ResNet", context.store, False,
                                            f"{self.name}CheckpointEdit")
        self.plain_field = CheckpointField("Plain twin (optional)", context.store, True,
                                           f"{self.name}PlainEdit")
        self.images_spin = QSpinBox()
        self.images_spin.setObjectName(f"{self.name}ImagesSpin")
        self.images_spin.setRange(1, 100_000)
        self.images_spin.setValue(self.default_images)
        self.images_spin.setMaximumWidth(160)
        self.bar = RunBar(self.run_text, self.name)
        self.bar.run_button.clicked.connect(self.start)
        self.bar.cancel_button.clicked.connect(self.cancel)
        for field in (self.resnet_field, self.plain_field):
            field.last_button.clicked.connect(lambda _=False, f=field: self.bar.say(f.note))
        self.form = QFormLayout()
        self.form.addRow(self.resnet_field)
        self.form.addRow(self.plain_field)
        self.form.addRow("Test images", self.images_spin)

    def start(self) -> bool:
        raise NotImplementedError

    def show_results(self, results: list[Any]) -> None:
        raise NotImplementedError

    def on_point(self, index: int, progress: Any) -> None:
        """A progress report of checkpoint ``index`` (a live view may draw its event)."""

    def checkpoints(self, check: Callable[[], None] = lambda: None) -> list[str] | None:
        """The chosen paths (the plain twin's second, when given), after ``check()``; None,
        and the problem in one sentence, when something is missing."""
        if self.worker.busy:
            return None
        try:
            paths = [required_checkpoint(self.resnet_field, "ResNet")]
            check()
        except UserError as problem:
            self.bar.problem(str(problem))
            return None
        return paths + ([self.plain_field.path] if self.plain_field.path else [])

    def measure(self, paths: list[str], measure: Callable[..., Any]) -> bool:
        self.results = []
        self.bar.running("Loading the checkpoint and its test images…")
        self.worker.start(on_checkpoints(paths, self.images_spin.value(), measure))
        return True

    def cancel(self) -> None:
        self.worker.cancel()
        self.bar.say("Stopping after the current evaluation…")

    def _on_progress(self, tagged) -> None:
        self.bar.show_progress(tagged[1])
        self.on_point(*tagged)

    def _on_finished(self, results: list[Any]) -> None:
        self.bar.idle()
        self.show_results(results)
        stopped = self.worker.cancelled or any(r.stopped for r in results)
        self.bar.say("Cancelled: showing what was measured." if stopped else
                     f"Done: {sum(r.evaluations for r in results)} evaluations in "
                     f"{sum(r.seconds for r in results):.0f} s.")

    def _on_failed(self, sentence: str) -> None:
        self.bar.idle()
        self.bar.problem(sentence)
