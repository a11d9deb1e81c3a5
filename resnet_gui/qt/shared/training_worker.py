"""The trainer in a worker thread, and the GUI-thread controller that starts, stops and waits.

The pattern of ../shared/DESIGN.md: a :class:`TrainingWorker` (a ``QObject`` without parent)
is moved to a ``QThread``; ``thread.started`` runs it; its signals ``started``,
``batch_end``, ``epoch_end``, ``telemetry``, ``returned``, ``errored`` and, always last, ``finished`` reach
the :class:`TrainingController`, which lives in the GUI thread, through queued connections to
the controller's own slots. Stop and pause never travel as signals (a busy worker would not
see them): the controller sets the trainer's ``threading.Event`` directly through a small
thread-safe :class:`RunControls` object.

Nothing here touches the model while the worker runs; the controller hands out the trained
model only after the thread has ended.
"""

from __future__ import annotations

import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QObject, Qt, QThread, Signal, Slot

from resnet_gui.engine.events import (
    Callback,
    EpochEnd,
    FeatureProbe,
    StepEnd,
    TelemetryEvent,
    TrainEnd,
    TrainStart,
)
from resnet_gui.engine.runs import Run, RunRecorder, RunStore
from resnet_gui.errors import UserError
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, with_input_size

# Every QThread this module started and that has not been waited for: the test fixtures
# fail a test that leaves one running (a running QThread destroyed aborts the process).
_LIVE_THREADS: "weakref.WeakSet[QThread]" = weakref.WeakSet()


_CONTROLLERS: "weakref.WeakSet[TrainingController]" = weakref.WeakSet()


def stop_all_training(timeout_ms: int = 30_000) -> None:
    """Stop every live run and wait for its thread (test clean-up, application exit)."""
    for controller in list(_CONTROLLERS):
        try:
            controller.stop()
            controller.wait(timeout_ms)
        except RuntimeError:  # its C++ object is already gone
            continue


def running_training_threads() -> list[QThread]:
    alive = []
    for thread in list(_LIVE_THREADS):
        try:
            if thread.isRunning():
                alive.append(thread)
        except RuntimeError:  # the C++ object is already gone
            continue
    return alive


@dataclass(frozen=True)
class TrainingJob:
    """Everything one run needs, fixed when Start is pressed."""

    architecture: Architecture
    recipe: Recipe
    store: RunStore | None = None  # None: the run is not recorded
    data: Any = None  # a loaded DataBundle; None: the worker loads it from the recipe
    probe_layer: str | None = None
    probe_image: int = 0
    trainer_factory: Callable[..., Any] | None = None  # tests and benchmarks may swap it
    data_loader: Callable[[Recipe], Any] | None = None
    telemetry_every: int | None = None  # per-block telemetry interval; None: the trainer's
    tensorboard_dir: str | None = None  # write TensorBoard event files there
    resume_from: Any = None  # a checkpoint the run continues (a grown network)


@dataclass(frozen=True)
class ProbeView:
    """A feature probe prepared for display: the worker tiles the maps, the GUI only draws."""

    layer: str
    image_index: int
    image: np.ndarray  # (C, H, W) as fed to the network
    mosaic: np.ndarray  # 2-D float32, channels tiled row-major
    channels: int
    columns: int
    tile_shape: tuple[int, int]
    maps: np.ndarray  # (channels, h, w), for enlarging one channel
    label: int
    predicted: int
    decomposition: Any = None  # a residual block's x / F(x) / sum / output (BlockDecomposition)
    cam: Any = None  # Grad-CAM of the predicted class at this layer (ClassActivationMap)
    origin: str = ""  # an image file's name when the image is not a test image


@dataclass(frozen=True)
class EpochUpdate:
    event: EpochEnd
    probe: ProbeView | None = None


def prepare_probe(probe: FeatureProbe, origin: str = "") -> ProbeView:
    """Tile the probe's maps (channels, h, w) into one mosaic with the engine's layout; the
    block views it carries come along."""
    from resnet_gui.engine.inspect import mosaic

    maps = np.asarray(probe.maps, dtype=np.float32)
    channels = int(maps.shape[0])
    columns = mosaic_columns(channels)
    tiled = np.ascontiguousarray(mosaic(maps, columns=columns, pad=MOSAIC_PAD), dtype=np.float32)
    return ProbeView(probe.layer, int(probe.image_index), np.asarray(probe.image, np.float32),
                     tiled, channels, columns, (int(maps.shape[1]), int(maps.shape[2])), maps,
                     int(probe.label), int(probe.predicted), probe.decomposition, probe.cam,
                     origin)


MOSAIC_PAD = 1


def mosaic_columns(channels: int) -> int:
    """A near-square grid, slightly wider than tall to suit a landscape panel."""
    return max(1, int(np.ceil(np.sqrt(channels * 1.5))))


class RunControls:
    """Stop, pause and probe settings that the GUI thread sets while the worker runs.

    The trainer may not exist yet (data still loading) when the user presses Pause or Stop;
    the wish is kept and applied when it does.
    """

    def __init__(self, probe_layer: str | None = None, probe_image: int = 0) -> None:
        self._lock = threading.Lock()
        self._trainer: Any = None
        self.last_trainer: Any = None  # kept after the run, to hand its model to the GUI
        self.stop_requested = threading.Event()
        self._paused = False
        self._probe = (probe_layer, probe_image)

    def attach(self, trainer: Any) -> None:
        with self._lock:
            self._trainer = self.last_trainer = trainer
            if self._probe[0] is not None:
                trainer.set_probe(*self._probe)
            if self._paused:
                trainer.pause()
            if self.stop_requested.is_set():
                trainer.request_stop()

    def detach(self) -> None:
        with self._lock:
            self._trainer = None

    def request_stop(self) -> None:
        with self._lock:
            self.stop_requested.set()
            if self._trainer is not None:
                self._trainer.request_stop()
                self._trainer.resume()  # a paused loop must wake up to see the stop

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self._trainer is not None:
                self._trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._trainer is not None:
                self._trainer.resume()

    @property
    def paused(self) -> bool:
        return self._paused

    def set_probe(self, layer: str | None, image_index: int = 0) -> None:
        with self._lock:
            self._probe = (layer, image_index)
            if self._trainer is not None:
                self._trainer.set_probe(layer, image_index)


class _Forwarder(Callback):
    """Trainer callbacks -> worker signals, in the training thread."""

    def __init__(self, worker: "TrainingWorker") -> None:
        self.worker = worker

    def on_train_start(self, event: TrainStart) -> None:
        self.worker.started.emit(event)

    def on_batch_end(self, event: StepEnd) -> None:
        self.worker.batch_end.emit(event)

    def on_notice(self, message: str) -> None:
        self.worker.notice.emit(message)

    def on_telemetry(self, event: TelemetryEvent) -> None:
        self.worker.telemetry.emit(event)

    def on_epoch_end(self, event: EpochEnd) -> None:
        probe = None
        if event.probe is not None:
            try:
                probe = prepare_probe(event.probe)
            except Exception:  # a bad probe must never end a run
                traceback.print_exc()
        self.worker.epoch_end.emit(EpochUpdate(event, probe))


def _default_trainer_factory(**kwargs: Any) -> Any:
    from resnet_gui.engine.trainer import Trainer

    return Trainer(**kwargs)


def default_data_loader(recipe: Recipe) -> Any:
    """The engine's loader, imported on first use: torch loads when data is first needed."""
    from resnet_gui.engine.data import load_data

    return load_data(recipe)


class TrainingWorker(QObject):
    """Runs one :class:`TrainingJob` in whatever thread it was moved to."""

    data_ready = Signal(object)  # the DataBundle, before training starts
    run_created = Signal(object)  # the RunSummary of the recorded run
    started = Signal(object)  # TrainStart
    batch_end = Signal(object)  # StepEnd
    epoch_end = Signal(object)  # EpochUpdate
    telemetry = Signal(object)  # TelemetryEvent
    returned = Signal(object)  # TrainEnd
    errored = Signal(str)  # one sentence for the user
    notice = Signal(str)  # a sentence the user should see; the run goes on
    finished = Signal()  # always last

    def __init__(self, job: TrainingJob, controls: RunControls) -> None:
        super().__init__()  # no parent: it moves to the worker thread
        self.job = job
        self.controls = controls
        self.trainer: Any = None
        self.recorder: RunRecorder | None = None

    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except UserError as error:
            self.errored.emit(str(error))
        except MemoryError:
            self.errored.emit("the computer ran out of memory; use a smaller batch size, "
                              "a smaller training subset or a smaller network")
        except Exception as error:  # a bug in resnet-gui: say so, keep the window alive
            traceback.print_exc(file=sys.stderr)
            self.errored.emit(f"unexpected error ({type(error).__name__}: {error}); "
                              "this is a bug in resnet-gui, please report it")
        finally:
            self.controls.detach()
            self.finished.emit()

    def _run(self) -> None:
        job = self.job
        observers = _observers(job)  # a bad TensorBoard folder is said before any loading
        # The architecture's input size is the size that trains: the images are resized to it.
        sized = with_input_size(job.recipe, job.architecture)
        data = job.data
        if data is None:
            data = (job.data_loader or default_data_loader)(sized)
        self.data_ready.emit(data)
        from resnet_gui.engine.trainer import fit_architecture

        arch = fit_architecture(job.architecture, data, sized)
        run: Run | None = None
        if job.store is not None:  # recorded once the data is there: a typo is not a run
            run = job.store.create(arch, job.recipe)
            self.recorder = RunRecorder(job.store, run)
            self.run_created.emit(run.summary)
        if self.controls.stop_requested.is_set():
            end = TrainEnd(reason="stopped", epoch=0, step=0, train_loss=float("nan"),
                           train_accuracy=float("nan"), test_accuracy=float("nan"),
                           examples_per_sec=float("nan"), seconds=0.0,
                           message="stopped before training began")
            if self.recorder is not None:
                self.recorder.on_train_end(end)
            self.returned.emit(end)
            return
        callbacks: list[Callback] = [_Forwarder(self), *observers]
        if self.recorder is not None:
            callbacks.insert(0, self.recorder)
        factory = job.trainer_factory or _default_trainer_factory
        resumed = {"resume_from": job.resume_from} if job.resume_from is not None else {}
        try:
            self.trainer = factory(
                arch=arch,
                recipe=job.recipe,
                callbacks=tuple(callbacks),
                checkpoint_path=job.store.checkpoint_path(run.run_id) if run else None,
                data=data,
                **resumed,
            )
        except BaseException as error:  # the trainer never ran, so it reported nothing
            if self.recorder is not None:
                self.recorder.fail(str(error) or type(error).__name__)
            raise
        if job.telemetry_every is not None:
            self.trainer.telemetry_every = job.telemetry_every
        self.controls.attach(self.trainer)
        end = self.trainer.run()
        self.returned.emit(end)


def _observers(job: TrainingJob) -> list[Callback]:
    """The callbacks that only watch the run: the TensorBoard writer where one is asked
    for (its folder checked and tensorboardX imported now; a UserError otherwise)."""
    if not job.tensorboard_dir:
        return []
    from resnet_gui.engine.tensorboard import TensorBoardWriter

    return [TensorBoardWriter(job.tensorboard_dir)]


IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


class RunController(QObject):
    """What the session expects of whatever runs its training (this process's thread, or
    other processes): the run's events as signals in the GUI thread, and its state. A
    subclass says whether a run ``is_active`` and how to ``shutdown`` (on quitting)."""

    data_ready = Signal(object)
    run_created = Signal(object)
    started = Signal(object)
    batch_end = Signal(object)
    epoch_end = Signal(object)
    telemetry = Signal(object)
    returned = Signal(object)
    errored = Signal(str)
    notice = Signal(str)
    finished = Signal()
    state_changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = IDLE
        self.last_model: Any = None  # the model of the last run, once it has ended
        self.last_end: TrainEnd | None = None
        app = QCoreApplication.instance()
        if app is not None:  # quitting without closing the window still waits for the run
            app.aboutToQuit.connect(self.shutdown)

    @property
    def state(self) -> str:
        return self._state

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)


class TrainingController(RunController):
    """Owns the worker thread of the current run; lives in the GUI thread.

    Its signals repeat the worker's, delivered in the GUI thread, plus ``state_changed``.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._controls: RunControls | None = None
        _CONTROLLERS.add(self)

    @property
    def is_active(self) -> bool:
        """True from Start until the worker thread has ended."""
        return self._thread is not None

    # -- commands from the GUI thread ----------------------------------------------------

    def start(self, job: TrainingJob) -> None:
        if self.is_active:
            raise UserError("a training run is already live; stop it before starting another")
        self.last_model = None
        self.last_end = None
        self._controls = RunControls(job.probe_layer, job.probe_image)
        thread = QThread()  # no parent: only this controller owns it, until it has ended
        thread.setObjectName("resnet-gui training")
        worker = TrainingWorker(job, self._controls)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Signal to signal: queued, so this controller re-emits them in the GUI thread.
        worker.data_ready.connect(self.data_ready)
        worker.run_created.connect(self.run_created)
        worker.started.connect(self._on_started)
        worker.batch_end.connect(self.batch_end)
        worker.epoch_end.connect(self.epoch_end)
        worker.telemetry.connect(self.telemetry)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self.errored)
        worker.notice.connect(self.notice)
        # Direct: QThread.quit is thread-safe, and a queued quit would never reach a GUI
        # thread that is blocked in wait() (closing the window mid-run).
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.finished.connect(worker.deleteLater)
        thread.finished.connect(self._on_thread_finished)
        thread.finished.connect(thread.deleteLater)
        self._thread, self._worker = thread, worker
        _LIVE_THREADS.add(thread)
        self._set_state(STARTING)
        thread.start()

    def stop(self) -> None:
        if self._controls is not None and self.is_active:
            self._controls.request_stop()
            self._set_state(STOPPING)

    def pause(self) -> None:
        if self._controls is not None and self._state in (STARTING, RUNNING):
            self._controls.pause()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self._controls is not None and self._state == PAUSED:
            self._controls.resume()
            self._set_state(RUNNING if self._worker_started else STARTING)

    def set_probe(self, layer: str | None, image_index: int = 0) -> None:
        if self._controls is not None:
            self._controls.set_probe(layer, image_index)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker thread has ended; True when it has (or none was running)."""
        thread = self._thread
        if thread is None:
            return True
        if not thread.wait(QDeadlineTimer(timeout_ms)):
            return False
        # Deliver the worker's queued signals (finished last) so that views end in "idle".
        QCoreApplication.sendPostedEvents(None, 0)
        QCoreApplication.processEvents()
        if self._thread is thread:
            self._on_thread_finished()
        return True

    @Slot()
    def shutdown(self) -> None:
        """Stop any run and wait for its thread: the last thing before the window goes."""
        if self.is_active:
            self.stop()
            # Generous: a stop lands at the next batch boundary, then the checkpoint saves.
            self.wait(120_000)

    # -- worker signals, delivered in the GUI thread -------------------------------------

    _worker_started = False

    @Slot(object)
    def _on_started(self, event: TrainStart) -> None:
        self._worker_started = True
        if self._state == STARTING:
            self._set_state(RUNNING)
        self.started.emit(event)

    @Slot(object)
    def _on_returned(self, end: TrainEnd) -> None:
        self.last_end = end
        self.returned.emit(end)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread, controls = self._thread, self._controls
        if thread is None:
            return
        # finished() is emitted from the thread just before it ends: wait for the real end
        # so that deleting the QThread can never hit a running thread.
        thread.wait()
        trainer = controls.last_trainer if controls is not None else None
        # Never trainer.model: where the run failed before building its network (one refused
        # as too large, say) that would build it here, on the GUI thread.
        self.last_model = getattr(trainer, "run_model", None)
        self._thread = self._worker = self._controls = None
        self._worker_started = False
        self._set_state(IDLE)
        self.finished.emit()
