"""The Train tab: settings, Start / Pause-Resume / Stop, progress, live plots and the runs."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.engine.events import EpochEnd, StepEnd, TrainEnd, TrainStart
from resnet_gui.errors import UserError
from resnet_gui.qt.train.plots import LivePlots
from resnet_gui.qt.train.run_list import RunList, format_duration
from resnet_gui.qt.shared.session import TrainingSession
from resnet_gui.qt.train.recipe_form import RecipeForm
from resnet_gui.qt.shared.training_worker import IDLE, PAUSED, RUNNING, STARTING, STOPPING

ERROR_STYLE = "color: #b00020;"
NOTE_STYLE = "color: #333;"


class TrainingPanel(QWidget):
    """``trainingPanel``: everything needed to train the window's architecture."""

    def __init__(self, session: TrainingSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.session = session

        self.form = RecipeForm()
        self._make_run_controls()
        self.plots = LivePlots()
        self.run_list = RunList()
        self._lay_out()
        self._init_progress_state()
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(250)
        self._progress_timer.timeout.connect(self._update_progress)
        self._connect(session)
        self._on_state(IDLE)
        self.refresh_runs()

    # -- building ------------------------------------------------------------------------

    def _make_run_controls(self) -> None:
        """Start, Pause/Resume and Stop, the progress bar and the run's messages."""
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("startButton")
        self.start_button.setToolTip("Train the architecture in the Build tab with these settings")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pauseButton")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("End the run after this batch; the checkpoint is kept")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.session.stop)

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
        self.lock_label = QLabel("")
        self.lock_label.setObjectName("lockLabel")
        self.lock_label.setWordWrap(True)
        self.lock_label.setStyleSheet("color: #805b00;")

    def _left_side(self) -> QWidget:
        """The run's controls over the settings form."""
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        settings_box = QGroupBox("Settings")
        settings_layout = QVBoxLayout(settings_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.form)
        settings_layout.addWidget(scroll)
        run_box = QGroupBox("Run")
        run_layout = QVBoxLayout(run_box)
        run_layout.addLayout(buttons)
        run_layout.addWidget(self.progress)
        run_layout.addWidget(self.progress_label)
        run_layout.addWidget(self.lock_label)
        run_layout.addWidget(self.message_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(run_box)
        left_layout.addWidget(settings_box, 1)
        left.setMinimumWidth(300)
        left.setMaximumWidth(420)
        return left

    def _right_side(self) -> QWidget:
        """The live plots over the run list."""
        runs_box = QGroupBox("Runs — tick to compare curves")
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.addWidget(self.run_list)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plots)
        right.addWidget(runs_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setChildrenCollapsible(False)
        return right

    def _lay_out(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._left_side())
        splitter.addWidget(self._right_side())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([340, 1200])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def _init_progress_state(self) -> None:
        """What the progress text is rebuilt from, on a timer rather than per event."""
        self._last_step: StepEnd | None = None
        self._start_info: TrainStart | None = None
        self._started_at = 0.0
        self._paused_since: float | None = None
        self._notices: list[str] = []
        self._status = ""
        self._paused_total = 0.0

    def _connect(self, session: TrainingSession) -> None:
        session.state_changed.connect(self._on_state)
        session.run_started.connect(self._on_run_started)
        session.step.connect(self._on_step)
        session.epoch.connect(self._on_epoch)
        session.run_ended.connect(self._on_run_ended)
        session.error.connect(self.show_error)
        session.notice.connect(self._on_notice)
        session.idle.connect(self._on_idle)
        session.runs_changed.connect(self.refresh_runs)
        session.run_updated.connect(self.run_list.update_run)
        session.recipe_reopened.connect(self.form.set_recipe)
        self.run_list.overlay_toggled.connect(self._toggle_overlay)
        self.run_list.reopen_requested.connect(self._reopen)
        self.run_list.delete_requested.connect(self._delete)

    # -- commands ------------------------------------------------------------------------

    def start(self) -> None:
        self.show_note("")
        try:
            recipe = self.form.recipe()
            self.plots.reset_live()
            # The epoch axis takes its final span now, while the worker is still loading,
            # rather than when the first steps compete with the redraw.
            self.plots.set_planned_epochs(recipe.epochs)
            self._last_step = None
            self._start_info = None
            self._started_at = time.monotonic()
            self._paused_total, self._paused_since = 0.0, None
            self._notices = []
            self.session.start(recipe)
        except UserError as problem:
            self.show_error(str(problem))
            return
        self.show_note("Loading the data…")

    def toggle_pause(self) -> None:
        if self.session.controller.state == PAUSED:
            self.session.resume()
        else:
            self.session.pause()

    # -- messages ------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setText(message[:1].upper() + message[1:] if message else "")

    def show_note(self, message: str) -> None:
        self.message_label.setStyleSheet(NOTE_STYLE)
        self.message_label.setText(message)

    @property
    def message(self) -> str:
        return self.message_label.text()

    # -- session events ------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        idle = state == IDLE
        self.start_button.setEnabled(idle)
        self.pause_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.form.set_enabled_for_run(idle)
        self.lock_label.setText(
            "" if idle else "The architecture is locked while this run trains; stop the run "
            "to edit it. Settings apply to the next run.")
        if state == PAUSED:
            self._paused_since = time.monotonic()
            self.progress.setFormat("paused — %p %")
        elif self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None
        if state == STOPPING:
            self.show_note("Stopping after this batch and saving the checkpoint…")
        if idle:
            self._progress_timer.stop()
        else:
            self._progress_timer.start()

    def _on_run_started(self, event: TrainStart) -> None:
        self._start_info = event
        self._started_at = time.monotonic()
        self.plots.set_planned_epochs(event.epochs)
        self.progress.setRange(0, max(1, event.total_steps))
        self.progress.setValue(event.start_step)
        self._status = (f"Training on {event.device} ({event.precision}), "
                        f"{event.num_train:,} training and {event.num_test:,} test images.")
        self._show_status()
        self.run_list.set_live_run(self.session.live_run.run_id if self.session.live_run else None)

    def _on_notice(self, message: str) -> None:
        self._notices.append(message[:1].upper() + message[1:])
        self._show_status()

    def _show_status(self) -> None:
        self.show_note("\n".join([self._status, *self._notices]).strip())

    def _on_step(self, event: StepEnd) -> None:
        self.plots.add_step(event)
        self._last_step = event

    def _on_epoch(self, event: EpochEnd) -> None:
        self.plots.add_epoch(event)

    def _on_run_ended(self, end: TrainEnd) -> None:
        accuracy = ("" if not math.isfinite(end.test_accuracy)
                    else f" Test accuracy {100 * end.test_accuracy:.2f} %.")
        summary = (f"{end.epoch} epochs, {end.step:,} steps in {format_duration(end.seconds)}."
                   f"{accuracy}")
        if end.reason == "completed":
            self._status = f"Finished: {summary}"
            self._show_status()
        elif end.reason in ("stopped", "max_steps"):
            kept = " The checkpoint is kept." if end.checkpoint else ""
            self._status = f"Stopped: {summary}{kept}"
            self._show_status()
        else:
            self.show_error(end.message or f"The run ended: {end.reason}.")

    def _on_idle(self) -> None:
        self._update_progress()
        self.progress.setFormat("idle" if self._last_step is None else "done — %p %")
        self.run_list.set_live_run(None)
        self.plots.refresh(everything=True)

    def _update_progress(self) -> None:
        step, info = self._last_step, self._start_info
        if step is None or info is None:
            return
        self.progress.setValue(min(step.step, self.progress.maximum()))
        if self.session.controller.state != PAUSED:
            self.progress.setFormat("%p %")
        done = step.step - info.start_step
        remaining = max(0, info.total_steps - step.step)
        paused = self._paused_total + (time.monotonic() - self._paused_since
                                       if self._paused_since is not None else 0.0)
        elapsed = max(1e-6, time.monotonic() - self._started_at - paused)
        eta = f"ETA {format_duration(remaining * elapsed / done)}" if done > 0 else "ETA –"
        self.progress_label.setText(
            f"Epoch {step.epoch + 1}/{info.epochs} · step {step.step:,}/{info.total_steps:,} · "
            f"{step.examples_per_sec:,.0f} examples/s · {eta}\n"
            f"loss {step.loss:.4f} · accuracy {100 * step.accuracy:.1f} % · lr {step.lr:.4g}")

    # -- runs ----------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        ticked = {run_id for run_id in self.run_list.run_ids() if self.run_list.is_ticked(run_id)}
        runs = self.session.list_runs()
        live = self.session.live_run.run_id if self.session.live_run and self.session.active else None
        self.run_list.set_live_run(live)
        self.run_list.set_runs(runs, ticked)
        present = {summary.run_id for summary in runs}
        for run_id in self.plots.overlay_ids:
            if run_id not in present:
                self.plots.hide_run(run_id)
            else:
                self.run_list.set_colour(run_id, self.plots.run_colour(run_id))

    def _toggle_overlay(self, run_id: str, ticked: bool) -> None:
        if not ticked:
            self.plots.hide_run(run_id)
            self.run_list.set_colour(run_id, None)
            return
        try:
            run = self.session.load_run(run_id)
        except UserError as problem:
            self.show_error(str(problem))
            return
        label = f"{run.summary.name} {run.summary.created_text[5:]}"
        self.plots.show_run(run_id, label, run.log)
        self.run_list.set_colour(run_id, self.plots.run_colour(run_id))

    def _reopen(self, run_id: str) -> None:
        try:
            run = self.session.reopen_run(run_id)
        except UserError as problem:
            self.show_error(str(problem))
            return
        self.show_note(f"Reopened {run.summary.name} from {run.summary.created_text}: its "
                       "architecture is in the Build tab and its settings are above.")

    def _delete(self, run_id: str) -> None:
        answer = QMessageBox.question(
            self, "Delete run", "Delete this run, its curves and its checkpoint?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.plots.hide_run(run_id)
        try:
            self.session.delete_run(run_id)
        except UserError as problem:
            self.show_error(str(problem))
