"""``train --log``: one JSON object per line (``"event": "start" | "step" | "telemetry" |
"epoch" | "end" | "error"``).

- Records are appended whole: one ``write`` per record on an ``O_APPEND`` descriptor; a write
  cut short by a full disk or a file-size limit is taken back (the file is truncated to where
  the record began), so the log never holds half a line.
- A log that cannot be written stops the run: the trainer is asked to stop (it saves its
  checkpoint) and the command ends with one sentence and a non-zero exit.
- Only a resnet-gui log is replaced or appended to; any other existing file is refused.
- On ``--resume`` the log keeps the records up to the checkpoint's step: those beyond it (the
  steps after the last save, which the resumed run trains again) are dropped, by rewriting the
  log atomically, so no step appears twice.
- ``-`` writes the records on standard output.
- Step records are not fsynced (a disk flush per step would cost more than the step); epoch
  and end records are.

:func:`event_of` reads a record back into the trainer's event (the window follows a run on
several processes through its ``--log -``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from collections.abc import Callable
from typing import Any

from resnet_gui.arch.numbers import json_value
from resnet_gui.errors import UserError
from resnet_gui.files import atomic_write_bytes, uninterruptible, write_target

EVENTS = ("start", "step", "telemetry", "epoch", "end", "error")
# A log's first line is a short JSON object; reading this much of it tells whether it is one.
FIRST_LINE_BYTES = 64 * 1024


def is_log_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(record, dict) and record.get("event") in EVENTS


def is_resnet_gui_log(path: str | os.PathLike) -> bool:
    """True for an empty file or one whose first line is a resnet-gui log record."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(FIRST_LINE_BYTES)
    except OSError:
        return False
    return not first or is_log_record(first)


def kept_records(data: bytes, last_step: int) -> tuple[bytes, bool]:
    """The whole records of ``data`` whose step is at most ``last_step``, and whether any
    record (or a torn last line) was dropped."""
    kept, dropped = [], False
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n") or not is_log_record(line):
            dropped = True
            continue
        step = json.loads(line).get("step")
        if isinstance(step, int) and not isinstance(step, bool) and step > last_step:
            dropped = True
            continue
        kept.append(line)
    return b"".join(kept), dropped


def _failure_reason(error: OSError) -> str:
    import errno

    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if error.errno == errno.EFBIG:
        return "it reached the file-size limit (ulimit -f)"
    if error.errno == errno.EPIPE:
        return "its reader closed the pipe"
    return error.strerror or str(error)


class JsonLog:
    """Trainer callback writing the log (see the module docstring).

    ``resume_step``: the step of the checkpoint being resumed (the log is appended to and
    trimmed to it), or None for a new run (the log starts empty). ``on_failure`` is called once
    when a record cannot be written (the command asks the trainer to stop).
    """

    def __init__(self, path: str, resume_step: int | None = None,
                 on_failure: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_failure = on_failure
        self.failure: str | None = None  # why the log could not be written, once it could not
        self.last_step = resume_step or 0
        self.last_epoch = 0
        self.fd = 1 if path == "-" else self._open_file(path, resume_step)
        self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)

    def _open_file(self, path: str, resume_step: int | None) -> int:
        try:
            if resume_step is not None and os.path.exists(path):
                with open(path, "rb") as handle:
                    data = handle.read()
                kept, dropped = kept_records(data, resume_step)
                if dropped:
                    atomic_write_bytes(path, kept)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            if resume_step is None:
                flags |= os.O_TRUNC
            return os.open(write_target(path), flags, 0o666)
        except OSError as error:
            raise UserError(f"cannot write the log {path}: {error.strerror}; choose another "
                            "path for --log") from None

    # -- writing ---------------------------------------------------------------------------

    def write(self, record: dict[str, Any], durable: bool = False) -> None:
        """Append ``record`` whole, or not at all; ``durable``: fsync it too (epoch and end
        records: a power cut then never leaves a checkpoint ahead of its log's epochs)."""
        if self.failure is not None:
            return
        line = (json.dumps({key: json_value(value) for key, value in record.items()},
                           allow_nan=False) + "\n").encode("utf-8")
        with uninterruptible():
            start = os.fstat(self.fd).st_size if self.regular else None
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self.fd, view):]
                if durable and self.regular:
                    os.fsync(self.fd)
            except OSError as error:
                if start is not None:
                    try:
                        os.ftruncate(self.fd, start)
                    except OSError:
                        pass
                self._failed(error)

    def _failed(self, error: OSError) -> None:
        self.failure = f"could not write the log {self.path}: {_failure_reason(error)}"
        if self.on_failure is not None:
            self.on_failure()

    # -- trainer callback ------------------------------------------------------------------

    def on_train_start(self, event) -> None:
        self.write({"event": "start", "architecture": event.architecture,
                    "input_shape": list(event.input_shape), "device": event.device,
                    "precision": event.precision, "batch_size": event.batch_size,
                    "epochs": event.epochs, "steps_per_epoch": event.steps_per_epoch,
                    "start_epoch": event.start_epoch, "start_step": event.start_step,
                    "num_train": event.num_train, "num_test": event.num_test,
                    "class_names": list(event.class_names), "recipe": event.recipe,
                    "processes": event.processes})

    def on_batch_end(self, event) -> None:
        self.last_step, self.last_epoch = event.step, event.epoch
        self.write({"event": "step", "epoch": event.epoch, "step": event.step,
                    "batch": event.batch, "epoch_progress": event.epoch_progress,
                    "loss": event.loss, "accuracy": event.accuracy, "lr": event.lr,
                    "examples_per_sec": event.examples_per_sec})

    def on_epoch_end(self, event) -> None:
        self.last_step = event.step
        self.write({"event": "epoch", "epoch": event.epoch, "step": event.step,
                    "train_loss": event.train_loss, "train_acc": event.train_accuracy,
                    "test_loss": event.test_loss, "test_acc": event.test_accuracy,
                    "lr": event.lr, "seconds": event.seconds,
                    "examples_per_sec": event.examples_per_sec,
                    "checkpoint": event.checkpoint}, durable=True)

    def on_train_end(self, event) -> None:
        self.write({"event": "end", "reason": event.reason, "epoch": event.epoch,
                    "step": event.step, "train_loss": event.train_loss,
                    "train_acc": event.train_accuracy, "test_acc": event.test_accuracy,
                    "examples_per_sec": event.examples_per_sec, "seconds": event.seconds,
                    "checkpoint": event.checkpoint, "message": event.message,
                    "learned": event.learned, "verdict": event.verdict}, durable=True)

    def on_telemetry(self, event) -> None:
        self.write({"event": "telemetry", "step": event.step,
                    "epoch_progress": event.epoch_progress,
                    "blocks": [{name: json_value(value) for name, value in vars(block).items()}
                               for block in event.blocks]})

    def on_exception(self, error: BaseException) -> None:
        self.write({"event": "error", "message": str(error) or type(error).__name__})

    def on_notice(self, message: str) -> None: ...

    def close(self) -> None:
        if self.fd != 1:
            os.close(self.fd)
        self.fd = -1


# Record keys that differ from the event's field names.
_RECORD_KEYS = {"train_accuracy": "train_acc", "test_accuracy": "test_acc"}


def _event(kind: type, record: dict[str, Any], **given: Any) -> Any:
    """``kind`` built from the record's values: a float the log wrote as null, or left out
    (the short ``end`` record of an aborted run), is NaN."""
    values = dict(given)
    for field in dataclasses.fields(kind):
        key = _RECORD_KEYS.get(field.name, field.name)
        if field.name in given:
            continue
        value = record.get(key)
        if value is None and field.type == "float":
            values[field.name] = math.nan
        elif key in record:
            values[field.name] = value
    return kind(**values)


def event_of(record: dict[str, Any]) -> Any:
    """The trainer's event a ``start``, ``step``, ``telemetry``, ``epoch`` or ``end`` record
    tells (TrainStart, StepEnd, TelemetryEvent, EpochEnd, TrainEnd), the message of an
    ``error`` record, or None for any other line; raises KeyError, TypeError or ValueError for
    a record that is not whole."""
    from resnet_gui.engine import events

    kind = record.get("event")
    if kind == "start":
        steps = int(record["epochs"]) * int(record["steps_per_epoch"])
        return _event(events.TrainStart, record, total_steps=steps,
                      class_names=tuple(record["class_names"]),
                      input_shape=tuple(record["input_shape"]))
    if kind == "telemetry":
        blocks = tuple(_event(events.BlockStats, block) for block in record["blocks"])
        return _event(events.TelemetryEvent, record, blocks=blocks)
    if kind == "error":
        return str(record.get("message") or "the run failed")
    event_kinds = {"step": events.StepEnd, "epoch": events.EpochEnd, "end": events.TrainEnd}
    return _event(event_kinds[kind], record) if kind in event_kinds else None
