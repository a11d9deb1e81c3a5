"""The live run's progress bar, its line of figures, and the run's messages.

Rebuilt from the last step on a timer (never per event). When the run ends, the bar and the
message say how: "done", "did not learn" (in amber, with the likely cause and a fix),
"stopped at 68 %", "diverged at 40 %"; never "done" for a run that did not finish.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar

from resnet_gui.engine.events import StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.runs import RunSummary
from resnet_gui.qt.shared.session import TrainingSession
from resnet_gui.qt.shared.training_worker import IDLE, PAUSED, STOPPING
from resnet_gui.qt.train.run_list import format_duration

ERROR_STYLE = "color: #b00020;"
WARNING_STYLE = "color: #b45309; font-weight: bold;"  # amber: the run ended but did not learn
NOTE_STYLE = "color: #333;"

# How a run ended, in words, and the progress bar's text then (%p: how far it got).
END_WORDS = {
    "completed": "done",
    "did_not_learn": "did not learn",
    "stopped": "stopped",
    "max_steps": "step limit",
    "diverged": "diverged",
    "error": "failed",
}
END_FORMATS = {
    "completed": "done — %p %",
    "did_not_learn": "did not learn — %p %",
    "stopped": "stopped at %p %",
    "max_steps": "step limit — %p %",
    "diverged": "diverged at %p %",
    "error": "failed at %p %",
}


def outcome_of(end: TrainEnd | None, failed_status: str | None) -> str | None:
    """How the run ended, as a key of END_FORMATS (None: it never started)."""
    if end is not None:
        if end.learned is False:
            return "did_not_learn"
        return end.reason if end.reason in END_FORMATS else "error"
    return failed_status


def summary_line(end: TrainEnd) -> str:
    accuracy = ("" if not math.isfinite(end.test_accuracy)
                else f" Test accuracy {100 * end.test_accuracy:.2f} %.")
    epochs = f"{end.epoch} epoch{'' if end.epoch == 1 else 's'}"
    return f"{epochs}, {end.step:,} steps in {format_duration(end.seconds)}.{accuracy}"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


class RunProgress(QObject):
    """``trainingProgress``, ``progressLabel`` and ``trainingMessage``."""

    # Seconds trained (pauses excluded), epochs done (fractional), and the run's state word
    # ("running", "paused", ...), a few times a second while a run is live.
    live_progress = Signal(float, float, str)

    def __init__(self, session: TrainingSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.progress = QProgressBar()
        self.progress.setObjectName("trainingProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("progressLabel")
        self.progress_label.setWordWrap(True)
        self.message_label = QLabel("")
        self.message_label.setObjectName("trainingMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.begin()
        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.update)
        session.run_started.connect(self.on_run_started)
        session.step.connect(self.on_step)
        session.run_ended.connect(self.on_run_ended)
        session.notice.connect(self.on_notice)
        session.error.connect(self.show_error)
        session.run_updated.connect(self.on_summary)

    def begin(self) -> None:
        """Forget the last run (Start was pressed)."""
        self._last_step: StepEnd | None = None
        self._start_info: TrainStart | None = None
        self._started_at = time.monotonic()
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._notices: list[str] = []
        self._status = ""
        self._status_style = NOTE_STYLE
        self._end: TrainEnd | None = None
        self._failed_status: str | None = None

    # -- messages ------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        self._failed_status = self._failed_status or "error"
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setText(message[:1].upper() + message[1:] if message else "")

    def show_note(self, message: str, style: str = NOTE_STYLE) -> None:
        self.message_label.setStyleSheet(style)
        self.message_label.setText(message)

    def _show_status(self) -> None:
        self.show_note("\n".join([self._status, *self._notices]).strip(), self._status_style)

    # -- session events ------------------------------------------------------------------

    def on_state(self, state: str) -> None:
        if state == PAUSED:
            self._paused_since = time.monotonic()
            self.progress.setFormat("paused — %p %")
        elif self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None
        if state == STOPPING:
            self.show_note("Stopping after this batch and saving the checkpoint…")
        if state == IDLE:
            self._timer.stop()
        else:
            self._timer.start()
        if state != IDLE:
            self.update()

    def on_run_started(self, event: TrainStart) -> None:
        self._start_info = event
        self._started_at = time.monotonic()
        self.progress.setRange(0, max(1, event.total_steps))
        self.progress.setValue(event.start_step)
        channels, height, width = event.input_shape
        where = event.device if event.processes == 1 else \
            f"{event.processes} {'GPU' if event.device.startswith('cuda') else 'CPU'} processes"
        self._status = (f"Training on {where} ({event.precision}) at {height}×{width}, "
                        f"batch {event.batch_size}, {event.num_train:,} training and "
                        f"{event.num_test:,} test images.")
        self._show_status()

    def on_notice(self, message: str) -> None:
        self._notices.append(message[:1].upper() + message[1:])
        self._show_status()

    def on_step(self, event: StepEnd) -> None:
        self._last_step = event

    def on_summary(self, summary: RunSummary) -> None:
        if summary.status in ("diverged", "error"):
            self._failed_status = summary.status

    def on_run_ended(self, end: TrainEnd) -> None:
        self._end = end
        summary = summary_line(end)
        if end.learned is False:
            self._status = f"{_sentence(end.verdict)}\n{summary}"  # "The run did not learn: …"
            self._status_style = WARNING_STYLE
        elif end.reason == "completed":
            self._status = f"Finished: {summary}"
        elif end.reason in ("stopped", "max_steps"):
            kept = " The checkpoint is kept." if end.checkpoint else ""
            self._status = f"Stopped: {summary}{kept}"
        else:
            self.show_error(end.message or f"The run ended: {end.reason}.")
            return
        self._show_status()

    def on_idle(self) -> None:
        self.update()
        outcome = outcome_of(self._end, self._failed_status)
        if outcome is None:
            self.progress.setFormat("idle")
        elif self._last_step is None:  # it ended before its first step
            self.progress.setFormat(END_WORDS[outcome])
        else:
            self.progress.setFormat(END_FORMATS[outcome])

    @property
    def outcome(self) -> str | None:
        return outcome_of(self._end, self._failed_status)

    # -- the timer -----------------------------------------------------------------------

    def trained_seconds(self) -> float:
        paused = self._paused_total + (time.monotonic() - self._paused_since
                                       if self._paused_since is not None else 0.0)
        return max(0.0, time.monotonic() - self._started_at - paused)

    def update(self) -> None:
        state = self.session.controller.state
        step, info = self._last_step, self._start_info
        if state != IDLE:
            epochs = step.epoch_progress if step is not None else 0.0
            self.live_progress.emit(self.trained_seconds(), epochs, state)
        if step is None or info is None:
            return
        self.progress.setValue(min(step.step, self.progress.maximum()))
        if state not in (PAUSED, IDLE):
            self.progress.setFormat("%p %")
        done = step.step - info.start_step
        remaining = max(0, info.total_steps - step.step)
        elapsed = max(1e-6, self.trained_seconds())
        eta = f"ETA {format_duration(remaining * elapsed / done)}" if done > 0 else "ETA –"
        self.progress_label.setText(
            f"Epoch {step.epoch + 1}/{info.epochs} · step {step.step:,}/{info.total_steps:,} · "
            f"{step.examples_per_sec:,.0f} examples/s · {eta}\n"
            f"loss {step.loss:.4f} · accuracy {100 * step.accuracy:.1f} % · lr {step.lr:.4g}")
