"""The Train tab: settings, Start / Pause-Resume / Stop, progress, live plots, the block
telemetry heatmap and the runs.

Before Start it says what the run will be: the images' size as the network sees them, what
the "auto" settings will choose, and the estimated time per epoch (on a helper thread,
never while a run is live).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.arch.recipe import Recipe, is_planned, plan_for_budget
from resnet_gui.errors import UserError
from resnet_gui.qt.shared.session import TrainingSession
from resnet_gui.qt.shared.training_worker import IDLE, PAUSED, RUNNING, STARTING
from resnet_gui.qt.train.epoch_estimate import EpochEstimator
from resnet_gui.qt.train.exports import TrainExports
from resnet_gui.qt.train.observe_options import ObserveOptions
from resnet_gui.qt.train.plots import LivePlots
from resnet_gui.qt.train.recipe_form import RecipeForm
from resnet_gui.qt.train.run_list import RunList
from resnet_gui.qt.train.run_plan import SLOW_ADVICE, epochs_text, image_size_text, known_counts
from resnet_gui.qt.train.run_progress import ERROR_STYLE, NOTE_STYLE, RunProgress
from resnet_gui.qt.train.telemetry_heatmap import TelemetryHeatmap

ESTIMATE_STYLE = "color: #5b6474;"
SLOW_STYLE = "color: #b45309; font-weight: bold;"  # amber: think before pressing Start
PLAN_DELAY_MS = 150  # edits arrive in bursts (a spin box being stepped)

__all__ = ["ERROR_STYLE", "NOTE_STYLE", "TrainingPanel"]


class TrainingPanel(QWidget):
    """``trainingPanel``: everything needed to train the window's architecture."""

    def __init__(self, session: TrainingSession, parent: QWidget | None = None,
                 estimator: EpochEstimator | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.session = session

        self.form = RecipeForm()
        self.run_progress = RunProgress(session, self)
        self.progress = self.run_progress.progress
        self.progress_label = self.run_progress.progress_label
        self.message_label = self.run_progress.message_label
        self.estimator = estimator or EpochEstimator(self)
        self._make_run_controls()
        self.observe = ObserveOptions()
        self.plots = LivePlots()
        self.heatmap = TelemetryHeatmap()
        self.run_list = RunList()
        self.exports = TrainExports(self)
        self._lay_out()
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self.refresh_plan)
        self._connect(session)
        self._on_state(IDLE)
        self.refresh_runs()
        self.refresh_plan()

    # -- building ------------------------------------------------------------------------

    def _make_run_controls(self) -> None:
        """Start, Pause/Resume and Stop, the estimate and the lock note."""
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
        self.estimate_label = QLabel("")
        self.estimate_label.setObjectName("epochEstimateLabel")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setStyleSheet(ESTIMATE_STYLE)
        # Two lines held from the start: the settings below never jump when it arrives.
        metrics = self.estimate_label.fontMetrics()
        self.estimate_label.setMinimumHeight(2 * metrics.lineSpacing() + 2)
        self.estimate_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
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
        run_layout.addWidget(self.estimate_label)
        run_layout.addWidget(self.progress)
        run_layout.addWidget(self.progress_label)
        run_layout.addWidget(self.lock_label)
        run_layout.addWidget(self.message_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(run_box)
        left_layout.addWidget(settings_box, 1)
        left_layout.addWidget(self.observe)
        left.setMinimumWidth(300)
        left.setMaximumWidth(420)
        return left

    def _right_side(self) -> QWidget:
        """The live plots over the telemetry heatmap, over the run list."""
        runs_box = QGroupBox("Runs — tick to compare curves")
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.addWidget(self.run_list)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plots)
        right.addWidget(self.heatmap)
        right.addWidget(runs_box)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setStretchFactor(2, 1)
        right.setSizes([500, 260, 180])
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

    def _connect(self, session: TrainingSession) -> None:
        session.state_changed.connect(self._on_state)
        session.run_started.connect(self._on_run_started)
        session.run_started.connect(lambda _event: self.run_list.set_live_run(
            self.session.live_run.run_id if self.session.live_run else None))
        session.step.connect(self.plots.add_step)
        session.epoch.connect(self.plots.add_epoch)
        session.telemetry.connect(self.heatmap.add_event)
        session.idle.connect(self._on_idle)
        session.runs_changed.connect(self.refresh_runs)
        session.run_updated.connect(self.run_list.update_run)
        session.recipe_reopened.connect(self.form.set_recipe)
        session.architecture_changed.connect(self.plan_changed)
        session.architecture_changed.connect(
            lambda: self.form.set_architecture(session.architecture.get()))
        self.form.set_architecture(session.architecture.get())
        session.images_changed.connect(lambda _images: self.plan_changed())
        self.run_progress.live_progress.connect(self.run_list.set_live_progress)
        self.form.changed.connect(self.plan_changed)
        self.form.input_size_requested.connect(self.session.set_input_size)
        self.estimator.estimated.connect(self._show_estimate)
        self.estimator.measuring.connect(self._estimating)
        self.run_list.overlay_toggled.connect(self._toggle_overlay)
        self.run_list.reopen_requested.connect(self._reopen)
        self.run_list.delete_requested.connect(self._delete)

    # -- commands ------------------------------------------------------------------------

    def start(self) -> None:
        self.show_note("")
        self.refresh_plan()  # what the form says about this run is current when it starts
        try:
            recipe = self.form.recipe()
            tensorboard_dir = self.observe.tensorboard_dir()
            self.estimator.cancel()  # the machine is the run's from now on
            self.plots.reset_live()
            self.heatmap.reset()
            # The epoch axis takes its final span now, while the worker is still loading,
            # rather than when the first steps compete with the redraw.
            self.plots.set_planned_epochs(recipe.epochs)
            self.run_progress.begin()
            self.session.start(recipe, self.form.processes(),
                               telemetry_every=self.observe.telemetry_every,
                               tensorboard_dir=tensorboard_dir)
        except UserError as problem:
            self.show_error(str(problem))
            return
        continuation = self.session.continuation
        if continuation is not None:  # the curves before the growth, and where it grew
            self.plots.load_live("this run (grown)", continuation.log, continuation.epochs)
            self.plots.mark_growths(continuation.marks)
        self.show_note("Loading the data…")

    def toggle_pause(self) -> None:
        if self.session.controller.state == PAUSED:
            self.session.resume()
        else:
            self.session.pause()

    # -- messages ------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        self.run_progress.show_error(message)

    def show_note(self, message: str) -> None:
        self.run_progress.show_note(message)

    @property
    def message(self) -> str:
        return self.message_label.text()

    # -- before Start: the plan and the estimate -----------------------------------------

    def plan_changed(self) -> None:
        """Settings or the architecture changed: say what the next run will be, soon."""
        self._plan_timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        self.plan_changed()

    def refresh_plan(self) -> None:
        """The images' size, what "auto" chooses, and the estimated time per epoch (only
        while the tab is shown and no run is live: a live run shows its own plan)."""
        if self.session.active:
            return
        self._plan_timer.stop()
        arch = self.session.architecture.get()
        try:
            recipe = self.form.recipe()
        except UserError as problem:
            self.form.show_plan(None, image_size_text(None, arch.input_size))
            self._show_estimate(None, str(problem), quiet=True)
            return
        counts = known_counts(recipe, self.session.loaded_data(recipe))
        planned = (plan_for_budget(recipe, counts.num_train, arch) if counts.num_train
                   else None)
        self.form.show_plan(planned, image_size_text(counts.stored_size, arch.input_size))
        if not counts.num_train:
            self.estimate_label.setText("The time per epoch is estimated once the folder's "
                                        "images are counted (Start, or the Inspect tab).")
        elif self.isVisible():
            self.estimator.request(self.session.fitted_architecture(recipe), recipe,
                                   counts.num_train, counts.num_test or 0)

    def _estimating(self) -> None:
        self.estimate_label.setStyleSheet(ESTIMATE_STYLE)
        self.estimate_label.setToolTip("")
        self.estimate_label.setText("Estimating the time per epoch…")

    def _show_estimate(self, estimate, problem, quiet: bool = False) -> None:
        if self.session.active:
            return
        if estimate is None:
            self.estimate_label.setStyleSheet(ESTIMATE_STYLE)
            self.estimate_label.setText("" if quiet else f"No estimate: {problem}")
            return
        self.estimate_label.setStyleSheet(SLOW_STYLE if estimate.slow else ESTIMATE_STYLE)
        text = epochs_text(estimate.seconds, self.form.epochs_spin.value(), estimate.describe())
        self.estimate_label.setText(f"{text}: slow" if estimate.slow else text)
        self.estimate_label.setToolTip(SLOW_ADVICE if estimate.slow else
                                       "Measured with a few training steps of this network")

    # -- session events ------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        idle = state == IDLE
        self.start_button.setEnabled(idle)
        self.pause_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.form.set_enabled_for_run(idle)
        self.observe.set_enabled_for_run(idle)
        self.lock_label.setText(
            "" if idle else "The architecture is locked while this run trains; stop the run "
            "to edit it. Settings apply to the next run.")
        self.estimate_label.setVisible(idle)
        self.run_progress.on_state(state)

    def _on_run_started(self, event) -> None:
        """The run's own plan: what "auto" chose and the size it trains at."""
        self.plots.set_planned_epochs(event.epochs)
        try:
            planned = Recipe.from_dict(event.recipe)
        except (UserError, TypeError):
            return
        if not is_planned(planned):
            return  # a trainer that reports no plan
        _channels, height, width = event.input_shape
        counts = known_counts(planned, self.session.loaded_data(planned))
        self.form.show_plan(planned, image_size_text(counts.stored_size, (height, width)))

    def _on_idle(self) -> None:
        self.run_progress.on_idle()
        self.run_list.set_live_run(None)
        self.plots.refresh(everything=True)
        self.plan_changed()

    # -- runs ----------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        ticked = {run_id for run_id in self.run_list.run_ids() if self.run_list.is_ticked(run_id)}
        runs = self.session.list_runs()
        live_run = self.session.live_run
        live = live_run.run_id if live_run and self.session.active else None
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
        summary = run.summary
        self.plots.load_live(f"{summary.name} {summary.created_text[5:]}", run.log,
                             summary.epochs_planned)
        self.heatmap.load_history(run.log.telemetry)
        self.show_note(f"Reopened {summary.name} from {summary.created_text}: its "
                       "architecture is in the Build tab, its settings are above and its "
                       "curves are on the right.")

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
