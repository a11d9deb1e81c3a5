"""Every training run kept on disk: its architecture, recipe, step and epoch logs, and outcome.

A run is a folder ``<runs dir>/<run id>/`` holding ``run.json`` (the summary, the architecture
and the recipe: small, read for the run list) and ``log.json`` (the per-step and per-epoch
curves, read only when a run's curves are shown), beside the run's ``checkpoint.pt``. Every
file is written atomically, so a crash mid-write leaves the previous version readable.

:class:`RunRecorder` is a trainer :class:`~resnet_gui.engine.events.Callback`: it records the
events of one run and saves at each epoch end and at the end, from the training thread, so the
window never waits on the disk. No Qt here: the command line can record runs the same way.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from resnet_gui.engine.data import user_data_dir
from resnet_gui.engine.events import (
    Callback,
    EpochEnd,
    StepEnd,
    TelemetryEvent,
    TrainEnd,
    TrainStart,
)
from resnet_gui.engine.telemetry import TelemetryHistory
from resnet_gui.errors import UserError
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.numbers import finite_or_none, json_value
from resnet_gui.arch.recipe import Recipe
from resnet_gui.arch.serialize import atomic_write_bytes, from_dict, to_dict

RUN_FILE = "run.json"
LOG_FILE = "log.json"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_SCHEMA = "resnet-gui/run"
RUN_SCHEMA_VERSION = 1
# run.json holds a summary, an architecture and a recipe: a few kB, a few MB at the very most.
MAX_RUN_FILE_BYTES = 64 * 2**20

# Where a run ended; "running" on disk with no live trainer means the process died mid-run.
# "did_not_learn": it ran its plan (or its step bound) but ended near chance (engine/verdict.py).
# "damaged": its run.json cannot be read or holds a value of the wrong kind (it is listed, so
# that it can be deleted, and never stops the list from showing).
STATUSES = ("running", "completed", "stopped", "max_steps", "diverged", "error",
            "did_not_learn", "damaged")
STEP_FIELDS = ("step", "epoch_progress", "loss", "accuracy", "lr", "examples_per_sec")
EPOCH_FIELDS = (
    "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr",
    "seconds", "examples_per_sec",
)
CHECKPOINT_STEP_LIMIT = 4000  # step reports a checkpoint keeps of its curves


def default_runs_dir() -> Path:
    """``RESNET_GUI_RUNS`` when set, else ``runs`` in the per-user data folder."""
    configured = os.environ.get("RESNET_GUI_RUNS")
    return Path(configured).expanduser() if configured else user_data_dir() / "runs"


@dataclass(frozen=True)
class RunSummary:
    """What the run list shows, read from ``run.json`` alone."""

    run_id: str
    name: str  # the architecture's name
    created: float  # seconds since the epoch
    status: str = "running"
    dataset: str = ""
    epochs_planned: int = 0
    epochs_done: int = 0
    steps: int = 0
    test_accuracy: float | None = None
    train_accuracy: float | None = None
    seconds: float = 0.0
    examples_per_sec: float | None = None
    message: str = ""
    checkpoint: str | None = None
    input_shape: list[int] | None = None  # channels, height, width as the network saw them

    @property
    def created_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))


@dataclass
class RunLog:
    """The curves of one run, as columns of plain floats (``None`` where not finite)."""

    steps: dict[str, list] = field(default_factory=lambda: {k: [] for k in STEP_FIELDS})
    epochs: dict[str, list] = field(default_factory=lambda: {k: [] for k in EPOCH_FIELDS})
    telemetry: TelemetryHistory = field(default_factory=TelemetryHistory)  # per-block samples

    def add_step(self, event: StepEnd) -> None:
        for name in STEP_FIELDS:
            value = getattr(event, name)
            self.steps[name].append(value if name == "step" else finite_or_none(value))

    def add_epoch(self, event: EpochEnd) -> None:
        for name in EPOCH_FIELDS:
            value = getattr(event, name)
            self.epochs[name].append(value if name in ("epoch", "step") else finite_or_none(value))

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "epochs": self.epochs,
                "telemetry": self.telemetry.to_json()}

    # -- in a checkpoint: the curves travel with the network (telemetry has its own field) --

    def to_checkpoint(self, limit: int = CHECKPOINT_STEP_LIMIT) -> dict[str, torch.Tensor]:
        """The step and epoch columns as float64 tensors (NaN for a missing value), at most
        ``limit`` step reports, evenly chosen with the last kept."""
        steps = _column_tensor(self.steps, STEP_FIELDS)
        if len(steps) > limit:
            keep = torch.linspace(0, len(steps) - 1, limit).round().long().unique()
            steps = steps[keep]
        return {"steps": steps, "epochs": _column_tensor(self.epochs, EPOCH_FIELDS)}

    @classmethod
    def from_checkpoint(cls, saved: Any, max_step: int) -> "RunLog":
        """The curves a checkpoint carries, up to step ``max_step``; empty where it carries
        none or they cannot be read (they are for showing, and never stop a resume)."""
        log = cls()
        if not isinstance(saved, dict):
            return log
        for name, columns, fields in (("steps", log.steps, STEP_FIELDS),
                                      ("epochs", log.epochs, EPOCH_FIELDS)):
            table = saved.get(name)
            if not (isinstance(table, torch.Tensor) and table.ndim == 2
                    and table.shape[1] == len(fields) and table.is_floating_point()):
                continue
            for row in table.tolist():
                if not (math.isfinite(row[fields.index("step")])
                        and 0 <= row[fields.index("step")] <= max_step):
                    continue
                for key, value in zip(fields, row):
                    columns[key].append(int(value) if key in ("step", "epoch")
                                        else finite_or_none(value))
        return log

    @classmethod
    def from_dict(cls, data: Any) -> "RunLog":
        """The curves in ``data``; values of the wrong kind in an edited or damaged file are
        left out (a point whose step is not a whole number) or None (any other value)."""
        log = cls()
        if not isinstance(data, dict):
            return log
        for name, columns, fields, key in (("steps", log.steps, STEP_FIELDS, "step"),
                                           ("epochs", log.epochs, EPOCH_FIELDS, "epoch")):
            stored = data.get(name) if isinstance(data.get(name), dict) else {}
            stored = {k: v if isinstance(v, list) else [] for k, v in stored.items()}
            length = min((len(stored.get(k, [])) for k in fields), default=0)
            for row in range(length):
                if not _is_count(stored[key][row]) or not _is_count(stored["step"][row]):
                    continue
                for k in fields:
                    value = stored[k][row]
                    columns[k].append(value if k in (key, "step") else _number_or_none(value))
        log.telemetry = TelemetryHistory.from_json(data.get("telemetry"))
        return log


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return finite_or_none(value)
    except OverflowError:  # an integer beyond any float
        return None


def _column_tensor(columns: dict[str, list], fields: tuple[str, ...]) -> torch.Tensor:
    length = min((len(columns[name]) for name in fields), default=0)
    rows = [[math.nan if columns[name][i] is None else float(columns[name][i])
             for name in fields] for i in range(length)]
    return torch.tensor(rows, dtype=torch.float64).reshape(length, len(fields))


@dataclass(frozen=True)
class Run:
    """A whole stored run: summary, what was trained and how, and its curves."""

    summary: RunSummary
    architecture: dict[str, Any]  # architecture JSON (arch.serialize.to_dict)
    recipe: dict[str, Any]  # Recipe.to_dict()
    log: RunLog

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    def architecture_spec(self) -> Architecture:
        """The architecture, validated; raises ArchitectureError if the file was edited badly."""
        return from_dict(self.architecture)

    def recipe_spec(self) -> Recipe:
        return Recipe.from_dict(self.recipe)


class RunStore:
    """The runs in one folder: create, list, load, save and delete."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_runs_dir()

    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise UserError(f"{run_id!r} is not a run name; choose a run from the run list")
        return self.root / run_id

    def checkpoint_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / CHECKPOINT_FILE

    @staticmethod
    def new_run_id(now: float | None = None) -> str:
        """A fresh run id: sortable by time; the random tail keeps two runs started in one
        second apart."""
        now = time.time() if now is None else now
        return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(2)

    def create(self, architecture: Architecture, recipe: Recipe, run_id: str | None = None
               ) -> Run:
        """A new run, saved with status "running" so that a crash still leaves a trace.
        ``run_id``: one chosen beforehand with :meth:`new_run_id` (a run in another process
        writes its checkpoint into the run's folder before the run is recorded)."""
        now = time.time()
        run_id = run_id or self.new_run_id(now)
        summary = RunSummary(
            run_id=run_id,
            name=architecture.name,
            created=now,
            dataset=recipe.dataset,
            epochs_planned=recipe.epochs,
            input_shape=[architecture.in_channels, *architecture.input_size],
        )
        run = Run(summary, to_dict(architecture), recipe.to_dict(), RunLog())
        self.save(run)
        return run

    def save(self, run: Run, with_log: bool = True) -> None:
        folder = self.run_dir(run.run_id)
        document = {
            "schema": RUN_SCHEMA,
            "version": RUN_SCHEMA_VERSION,
            "summary": {
                name: json_value(value) for name, value in run.summary.__dict__.items()
            },
            "architecture": run.architecture,
            "recipe": run.recipe,
        }
        if with_log:
            atomic_write_bytes(folder / LOG_FILE, json.dumps(run.log.to_dict()).encode("utf-8"))
        atomic_write_bytes(folder / RUN_FILE, json.dumps(document, indent=1).encode("utf-8"))

    def _read_document(self, run_id: str) -> dict[str, Any]:
        path = self.run_dir(run_id) / RUN_FILE
        try:
            if path.stat().st_size > MAX_RUN_FILE_BYTES:
                raise UserError(f"run {run_id} cannot be read (its {RUN_FILE} is far larger "
                                "than any run's); delete it")
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"run {run_id} no longer exists in {self.root}") from None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            raise UserError(f"run {run_id} cannot be read ({type(error).__name__}); delete it"
                            ) from None
        if not isinstance(document, dict) or document.get("schema") != RUN_SCHEMA:
            raise UserError(f"{path} is not a resnet-gui run file; delete the run")
        return document

    @staticmethod
    def _summary(run_id: str, document: dict[str, Any]) -> RunSummary:
        """The summary in ``document``; a value of the wrong kind (``"created": "x"``) makes
        it a "damaged" run that shows what it can, never an error."""
        stored = document.get("summary")
        stored = stored if isinstance(stored, dict) else {}
        known, problems = {}, []
        for name in RunSummary.__dataclass_fields__:
            if name == "run_id" or name not in stored:
                continue  # the folder name wins over what the file says
            if _SUMMARY_CHECKS[name](stored[name]):
                known[name] = stored[name]
            else:
                problems.append(f"{name} is {_short_repr(stored[name])}")
        known.setdefault("name", "?")
        known.setdefault("created", 0.0)
        if problems:
            known.update(status="damaged", message=f"run.json is damaged ({'; '.join(problems)}); "
                         "delete the run")
        return RunSummary(run_id=run_id, **known)

    def load_summary(self, run_id: str) -> RunSummary:
        return self._summary(run_id, self._read_document(run_id))

    def load(self, run_id: str) -> Run:
        document = self._read_document(run_id)
        try:
            log_data = json.loads((self.run_dir(run_id) / LOG_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
            log_data = None  # a run whose log is missing or damaged still shows its summary
        architecture = document.get("architecture")
        recipe = document.get("recipe")
        return Run(
            self._summary(run_id, document),
            architecture if isinstance(architecture, dict) else {},
            recipe if isinstance(recipe, dict) else {},
            RunLog.from_dict(log_data),
        )

    def list(self) -> list[RunSummary]:
        """Every readable run, newest first; unreadable folders are skipped, not fatal."""
        if not self.root.is_dir():
            return []
        summaries = []
        for folder in self.root.iterdir():
            if not (folder / RUN_FILE).is_file() or folder.name.startswith("."):
                continue
            try:
                summaries.append(self.load_summary(folder.name))
            except UserError as error:  # listed as damaged: the user can see and delete it
                summaries.append(_damaged_summary(folder, str(error)))
        summaries.sort(key=lambda s: (s.created, s.run_id), reverse=True)
        return summaries

    def delete(self, run_id: str) -> None:
        folder = self.run_dir(run_id)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return
        except OSError as error:
            raise UserError(f"cannot delete run {run_id} ({error.strerror}); "
                            f"remove {folder} by hand") from None


def _is_time(value: Any) -> bool:
    """A number of seconds since the epoch that the run list can show as a date."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        time.localtime(value)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def _is_finite(value: Any) -> bool:
    return _number_or_none(value) is not None


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


# What each summary field of run.json must hold.
_SUMMARY_CHECKS = {
    "name": _is_text, "created": _is_time, "status": lambda v: v in STATUSES,
    "dataset": _is_text, "epochs_planned": _is_count, "epochs_done": _is_count,
    "steps": _is_count, "test_accuracy": lambda v: v is None or _is_finite(v),
    "train_accuracy": lambda v: v is None or _is_finite(v), "seconds": _is_finite,
    "examples_per_sec": lambda v: v is None or _is_finite(v), "message": _is_text,
    "checkpoint": lambda v: v is None or _is_text(v),
    "input_shape": lambda v: v is None or (isinstance(v, list) and len(v) == 3
                                           and all(_is_count(n) and n > 0 for n in v)),
}


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _damaged_summary(folder: Path, problem: str) -> RunSummary:
    """A run whose run.json cannot be read at all, dated by the file's time."""
    try:
        created = (folder / RUN_FILE).stat().st_mtime
    except OSError:
        created = 0.0
    return RunSummary(run_id=folder.name, name="?", created=created, status="damaged",
                      message=problem)


class RunRecorder(Callback):
    """Records one run's events into its :class:`Run` and saves it, in the training thread.

    Saving happens at epoch ends and at the end (not per step), so a crash loses at most one
    epoch of curve points and never the run itself.
    """

    def __init__(self, store: RunStore, run: Run) -> None:
        self.store = store
        self.run = run
        self._started = time.monotonic()

    @property
    def summary(self) -> RunSummary:
        return self.run.summary

    def _update(self, **changes: Any) -> None:
        self.run = replace(self.run, summary=replace(self.run.summary, **changes))

    def _save(self, with_log: bool = True) -> None:
        self.store.save(self.run, with_log=with_log)

    def on_train_start(self, event: TrainStart) -> None:
        self._started = time.monotonic()
        self._update(epochs_planned=event.epochs, epochs_done=event.start_epoch,
                     steps=event.start_step, input_shape=list(event.input_shape))
        self._save(with_log=False)

    def on_batch_end(self, event: StepEnd) -> None:
        self.run.log.add_step(event)

    def on_telemetry(self, event: TelemetryEvent) -> None:
        self.run.log.telemetry.add(event)

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.run.log.add_epoch(event)
        self._update(
            epochs_done=event.epoch + 1,
            steps=event.step,
            test_accuracy=finite_or_none(event.test_accuracy),
            train_accuracy=finite_or_none(event.train_accuracy),
            seconds=time.monotonic() - self._started,
            examples_per_sec=finite_or_none(event.examples_per_sec),
            checkpoint=event.checkpoint or self.run.summary.checkpoint,
        )
        self._save()

    def on_train_end(self, event: TrainEnd) -> None:
        status = event.reason if event.reason in STATUSES else "error"
        if event.learned is False:
            status = "did_not_learn"
        test_accuracy = finite_or_none(event.test_accuracy)
        self._update(
            status=status,
            epochs_done=event.epoch,
            steps=event.step,
            test_accuracy=test_accuracy if test_accuracy is not None
            else self.run.summary.test_accuracy,
            train_accuracy=finite_or_none(event.train_accuracy),
            seconds=finite_or_none(event.seconds) or time.monotonic() - self._started,
            examples_per_sec=finite_or_none(event.examples_per_sec),
            message="; ".join(text for text in (event.verdict, event.message) if text),
            checkpoint=event.checkpoint or self.run.summary.checkpoint,
        )
        self._save()

    def on_exception(self, error: BaseException) -> None:
        from resnet_gui.engine.trainer import DivergedError

        status = "diverged" if isinstance(error, DivergedError) else "error"
        self.fail(str(error) or type(error).__name__, status)

    def fail(self, message: str, status: str = "error") -> None:
        """Mark the run as ended by an error (also when the trainer could not be built)."""
        self._update(status=status, message=message,
                     seconds=time.monotonic() - self._started)
        try:
            self._save()
        except UserError:
            pass  # the disk problem is secondary: the error being reported matters more
