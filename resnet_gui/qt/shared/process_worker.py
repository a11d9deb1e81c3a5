"""A run on several processes: ``resnet-gui train --nproc N`` in a ``QProcess``, followed
through its JSON log on standard output and steered through its standard input.

:class:`ProcessController` has the signals, states and commands of the thread worker's
:class:`~resnet_gui.qt.shared.training_worker.TrainingController`, so the session, the plots,
the run list and the run store follow a run on torchrun's processes as they follow one in a
thread. The command is the command line's own (``--control --log - --no-progress``): the
architecture and the recipe travel as JSON files, Pause, Resume and Stop as lines on its
standard input (rank 0 reads them; the ranks agree on them at each step), and a failure comes
back as the command's one-line error. When the processes have ended, the network the run
saved in its checkpoint is loaded for Inspect.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Slot

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.runs import RUN_FILE, RunRecorder, RunStore
from resnet_gui.errors import UserError
from resnet_gui.qt.shared.training_worker import (
    IDLE,
    PAUSED,
    RUNNING,
    STARTING,
    STOPPING,
    EpochUpdate,
    RunController,
)

# Closing the window stops the run, then waits this long for the step to end and the
# checkpoint to save; then SIGTERM (the launcher passes it on as Ctrl-C, which saves too) and,
# last, SIGKILL.
SAVE_TIMEOUT_MS = 120_000
TERMINATE_TIMEOUT_MS = 30_000
KILL_TIMEOUT_MS = 10_000
PREFIX = "resnet-gui: "
KEPT_STDERR_LINES = 20  # for the last words of a process that failed without its sentence


@dataclass(frozen=True)
class ProcessChoice:
    """Where the Train tab runs: here (``count`` 1, the thread worker) or on ``count``
    processes of torchrun, each on ``device`` ("cpu", "cuda")."""

    count: int
    device: str | None
    label: str

    @property
    def several(self) -> bool:
        return self.count > 1


THIS_PROCESS = ProcessChoice(1, None, "This process")
TWO_CPU_PROCESSES = ProcessChoice(2, "cpu", "2 CPU processes")


def process_choices() -> list[ProcessChoice]:
    """This process, two CPU processes (always: they try the multi-process path anywhere),
    and every GPU when there are several."""
    import torch

    choices = [THIS_PROCESS, TWO_CPU_PROCESSES]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1:
        choices.append(ProcessChoice(gpus, "cuda", f"All {gpus} GPUs"))
    return choices


@dataclass(frozen=True)
class ProcessJob:
    """One run on several processes, fixed when Start is pressed."""

    architecture: Architecture
    recipe: Recipe  # the device already the choice's
    store: RunStore
    processes: int
    python: str = sys.executable
    options: tuple[str, ...] = ()  # more ``train`` options (``--telemetry-every 5``)


def package_root() -> str:
    """The folder holding the resnet_gui package this window runs: the processes run the same
    code."""
    return str(Path(__file__).resolve().parents[3])


def child_processes(pid: int) -> list[int]:
    """The processes ``pid`` started, from Linux's /proc (none found elsewhere)."""
    children = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            children.append(int(entry.name))
    return children


def stopped_before_training() -> Any:
    from resnet_gui.engine.events import TrainEnd

    nan = float("nan")
    return TrainEnd(reason="stopped", epoch=0, step=0, train_loss=nan, train_accuracy=nan,
                    test_accuracy=nan, examples_per_sec=nan, seconds=0.0,
                    message="stopped before training began")


def evaluate_network(network: Any, data: Any) -> Any:
    """The test-set evaluation (engine.events.Evaluation) of a run's trained ``network``
    (an IdleNetwork) on ``data``'s test images: a run on other processes kept its own there.
    In the idle jobs' thread."""
    from resnet_gui.engine.inspect import evaluate_model

    return evaluate_model(network.model, data.test_images, data.test_labels, network.prepare,
                          data.num_classes)


class ProcessController(RunController):
    """Starts, steers and follows one several-process run; lives in the GUI thread. Its
    ``data_ready`` never fires (the data loads in the processes) and ``epoch_end`` carries
    no evaluation or probe (they stay there)."""

    probes_live = False  # the network lives in other processes until the run ends

    def __init__(self, parent: QObject | None = None) -> None:
        self._process: QProcess | None = None
        super().__init__(parent)
        self.trained_architecture: Architecture | None = None

    @property
    def is_active(self) -> bool:
        return self._process is not None

    # -- commands ------------------------------------------------------------------------

    def start(self, job: ProcessJob) -> None:
        if self.is_active:
            raise UserError("a training run is already live; stop it before starting another")
        self.last_model = self.last_end = self.trained_architecture = None
        self._job = job
        self._run_id = job.store.new_run_id()
        self._checkpoint = job.store.checkpoint_path(self._run_id)
        self._recorder: RunRecorder | None = None
        self._stdout, self._stderr = b"", b""
        self._error_line = self._error_record = None
        self._last_lines: deque[str] = deque(maxlen=KEPT_STDERR_LINES)
        self._warnings: list[str] = []
        self._stop_requested = self._started = False
        self._files = tempfile.TemporaryDirectory(prefix="resnet-gui-run-")
        process = QProcess(self)
        process.setProgram(job.python)
        process.setArguments(self._arguments(job, Path(self._files.name)))
        process.setProcessEnvironment(self._environment())
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._set_state(STARTING)
        process.start()

    def _arguments(self, job: ProcessJob, folder: Path) -> list[str]:
        from resnet_gui.arch.serialize import save_file
        from resnet_gui.files import atomic_write_bytes

        architecture, recipe = folder / "architecture.json", folder / "recipe.json"
        save_file(job.architecture, architecture)
        atomic_write_bytes(recipe, json.dumps(job.recipe.to_dict(), indent=1).encode("utf-8"))
        return ["-u", "-m", "resnet_gui", "train", str(architecture), "--recipe", str(recipe),
                "--nproc", str(job.processes), "--control", "--log", "-", "--no-progress",
                "--checkpoint", str(self._checkpoint), *job.options]

    @staticmethod
    def _environment() -> QProcessEnvironment:
        environment = QProcessEnvironment.systemEnvironment()
        paths = [package_root(), *filter(None, [environment.value("PYTHONPATH")])]
        environment.insert("PYTHONPATH", os.pathsep.join(paths))
        environment.insert("PYTHONUNBUFFERED", "1")
        return environment

    def _say(self, word: str) -> None:
        if self._process is not None:
            self._process.write(f"{word}\n".encode("ascii"))

    def stop(self) -> None:
        if self.is_active and self._state != STOPPING:
            self._stop_requested = True
            self._say("stop")
            self._set_state(STOPPING)

    def pause(self) -> None:
        if self.is_active and self._state in (STARTING, RUNNING):
            self._say("pause")
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.is_active and self._state == PAUSED:
            self._say("resume")
            self._set_state(RUNNING if self._started else STARTING)

    def set_probe(self, layer: str | None, image_index: int = 0) -> None:
        """Probes wait for the run's end: the processes do not take requests for them."""

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the processes have ended (and the run is wrapped up); True when they
        have, or none ran."""
        process = self._process
        if process is None:
            return True
        process.waitForFinished(timeout_ms)
        if self._process is process and process.state() == QProcess.ProcessState.NotRunning:
            self._on_finished(process.exitCode(), process.exitStatus())
        return self._process is None

    @Slot()
    def shutdown(self) -> None:
        """Stop the run and wait for its save; past the timeouts, terminate, then kill."""
        if not self.is_active:
            return
        self.stop()
        self._process.waitForBytesWritten(1_000)
        if self.wait(SAVE_TIMEOUT_MS):
            return
        self._process.terminate()
        if self.wait(TERMINATE_TIMEOUT_MS):
            return
        # torchrun's processes each lead a session of their own: SIGKILL them by name.
        for child in child_processes(int(self._process.processId())):
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        self._process.kill()
        self.wait(KILL_TIMEOUT_MS)

    # -- what the processes say ------------------------------------------------------------

    @Slot()
    def _read_stdout(self) -> None:
        if self._process is None:
            return
        self._stdout += self._process.readAllStandardOutput().data()
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            self._take_record(line)

    @Slot()
    def _read_stderr(self) -> None:
        if self._process is None:
            return
        self._stderr += self._process.readAllStandardError().data()
        *lines, self._stderr = self._stderr.split(b"\n")
        for line in lines:
            self._take_stderr(line.decode("utf-8", "replace").rstrip())

    def _take_stderr(self, line: str) -> None:
        """The command's one-line error, its notes and warnings; other lines (the progress
        lines, a bug's traceback) are kept only as a failure's last words."""
        if not line.strip():
            return
        if line.startswith(PREFIX + "error: "):
            self._error_line = line[len(PREFIX + "error: "):]
        elif line.startswith(PREFIX + "note: "):
            self.notice.emit(line[len(PREFIX + "note: "):])
        elif line.startswith(PREFIX + "warning: "):
            self._warnings.append(line[len(PREFIX + "warning: "):])
        else:
            self._last_lines.append(line)

    def _take_record(self, line: bytes) -> None:
        from resnet_gui.commands.jsonlog import event_of
        from resnet_gui.engine import events

        try:
            record = json.loads(line)
            event = event_of(record) if isinstance(record, dict) else None
        except (ValueError, KeyError, TypeError):  # not a record (another program's output)
            return
        if isinstance(event, str):
            self._error_record = event
        elif isinstance(event, events.TrainStart):
            self._on_start(event)
        elif isinstance(event, events.StepEnd):
            self._record("on_batch_end", event)
            self.batch_end.emit(event)
        elif isinstance(event, events.TelemetryEvent):
            self._record("on_telemetry", event)
            self.telemetry.emit(event)
        elif isinstance(event, events.EpochEnd):
            self._record("on_epoch_end", event)
            self.epoch_end.emit(EpochUpdate(event))
        elif isinstance(event, events.TrainEnd):
            self._record("on_train_end", event)
            self.last_end = event
            self.returned.emit(event)

    def _record(self, hook: str, event: Any) -> None:
        if self._recorder is not None:
            try:
                getattr(self._recorder, hook)(event)
            except UserError as problem:  # the run store cannot be written: the run goes on
                self.notice.emit(str(problem))

    def _on_start(self, event: Any) -> None:
        """The processes have loaded the data: record the run as the network they built."""
        if self._recorder is None:
            channels, height, width = event.input_shape
            fitted = self._job.architecture.replace(
                in_channels=channels, num_classes=len(event.class_names),
                input_size=(height, width))
            run = self._job.store.create(fitted, self._job.recipe, run_id=self._run_id)
            self._recorder = RunRecorder(self._job.store, run)
            self.run_created.emit(run.summary)
        self._record("on_train_start", event)
        self._started = True
        if self._state == STARTING:
            self._set_state(RUNNING)
        self.started.emit(event)

    # -- the end ---------------------------------------------------------------------------

    @Slot(QProcess.ProcessError)
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._error_line = (f"could not start {self._job.python} for the training "
                                f"processes ({self._process.errorString()}); train in this "
                                "process instead")
            self._wrap_up(None)

    @Slot(int, QProcess.ExitStatus)
    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if self._process is None:
            return
        self._read_stdout()
        self._read_stderr()
        if self._stdout.strip():  # a last line without its newline
            self._take_record(self._stdout)
        if self._stderr.strip():
            self._take_stderr(self._stderr.decode("utf-8", "replace").rstrip())
        self._stdout = self._stderr = b""
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        self._wrap_up(None if crashed else exit_code)

    def _wrap_up(self, exit_code: int | None) -> None:
        """Say how the run ended, record it, load its network and go idle."""
        process, self._process = self._process, None
        problem = self._problem(exit_code)
        if problem is None and self.last_end is None and self._stop_requested:
            self.last_end = stopped_before_training()
            self._record("on_train_end", self.last_end)
            self.returned.emit(self.last_end)
        if problem is not None:
            if self._recorder is not None and self.last_end is None:
                self._recorder.fail(problem)
            self.errored.emit(problem)
        for warning in self._warnings:  # the verdict of a run that did not learn is its own
            if self.last_end is None or warning != self.last_end.verdict:
                self.notice.emit(warning)
        if self._recorder is not None:
            self._load_network()
        else:  # never recorded: the folder the checkpoint would have gone in goes
            folder = self._checkpoint.parent
            if folder.is_dir() and not (folder / RUN_FILE).exists():
                shutil.rmtree(folder, ignore_errors=True)
        self._files.cleanup()
        process.deleteLater()
        self._started = False
        self._set_state(IDLE)
        self.finished.emit()

    def _problem(self, exit_code: int | None) -> str | None:
        """The one sentence of a failed run, or None."""
        if self._error_line:
            return self._error_line
        if self.last_end is not None:
            return None
        if self._error_record:
            return self._error_record
        if exit_code is not None and (exit_code == 0 or self._stop_requested):
            return None
        kept = (f"; the checkpoint {self._checkpoint} from its last save is kept"
                if self._checkpoint.is_file() else "")
        if exit_code is None:
            return f"the training processes were killed before the run finished{kept}"
        last = self._last_lines[-1].strip() if self._last_lines else ""
        said = f" (its last words: {last})" if last else ""
        return (f"the training processes ended with exit status {exit_code} before the run "
                f"finished{said}{kept}")

    def _load_network(self) -> None:
        """The network the run saved, for Inspect (in eval mode, as a checkpoint opens)."""
        if not self._checkpoint.is_file():
            return
        from resnet_gui.engine.trained import load_trained

        try:
            trained = load_trained(self._checkpoint)
        except UserError as problem:
            self.notice.emit(f"the trained network cannot be shown in Inspect: {problem}")
            return
        self.last_model, self.trained_architecture = trained.model, trained.arch
