"""A run's curves as CSV, for spreadsheets, pandas and plotting scripts.

The curves come from a stored run (:class:`resnet_gui.engine.runs.RunLog`, what the window's
run list keeps) or from a ``train --log`` JSON-lines file (:func:`read_log_file`); either way
:func:`write_curves_csv` writes one table, atomically: one row per step report and one per
epoch, in step order, told apart by the ``record`` column (``step`` or ``epoch``). A cell a
record does not have (a step's test accuracy), or a number that was not finite, is empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resnet_gui.arch.numbers import finite_or_none
from resnet_gui.arch.serialize import atomic_write_bytes
from resnet_gui.engine.runs import EPOCH_FIELDS, STEP_FIELDS, RunLog
from resnet_gui.errors import UserError

COLUMNS = ("record", "epoch", "step", "epoch_progress", "loss", "accuracy", "lr",
           "examples_per_sec", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
           "seconds")
# The --log file's names for what RunLog calls train_accuracy and test_accuracy.
LOG_ALIASES = {"train_acc": "train_accuracy", "test_acc": "test_accuracy"}


def curve_rows(log: RunLog) -> list[dict[str, Any]]:
    """The table's rows: step reports and epochs, in step order (an epoch after the report
    of its last step)."""
    rows = [{"record": "step", "epoch": _epoch_of(values["epoch_progress"]), **values}
            for values in _columns_to_records(log.steps, STEP_FIELDS)]
    rows += [{"record": "epoch", "epoch_progress": values["epoch"] + 1, **values}
             for values in _columns_to_records(log.epochs, EPOCH_FIELDS)]
    rows.sort(key=lambda row: (row["step"], row["record"] == "epoch"))  # stable
    return rows


def write_curves_csv(log: RunLog, path: str | os.PathLike) -> int:
    """Write ``log``'s curves to ``path`` as CSV, atomically; the number of rows written."""
    rows = curve_rows(log)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in COLUMNS})
    atomic_write_bytes(Path(path), text.getvalue().encode("utf-8"))
    return len(rows)


def read_log_file(path: str | os.PathLike) -> RunLog:
    """The curves of a ``train --log`` file. A log continued by ``--resume`` holds the steps
    the stopped run took after its checkpoint twice: the resumed run's, which start from the
    checkpoint's step, replace them."""
    path = Path(path)
    log = RunLog()
    records = 0
    for number, record in _records(path):
        kind = record.get("event")
        if kind == "start":
            _forget_after(log, _whole(record.get("start_step"), 0))
        elif kind in ("step", "epoch"):
            fields = STEP_FIELDS if kind == "step" else EPOCH_FIELDS
            columns = log.steps if kind == "step" else log.epochs
            values = {LOG_ALIASES.get(key, key): value for key, value in record.items()}
            if not isinstance(values.get("step"), int):
                raise UserError(f"line {number} of {path} is a {kind} record without a step "
                                "number; give a log written by resnet-gui train --log")
            for name in fields:
                value = values.get(name)
                columns[name].append(value if name in ("step", "epoch")
                                     else finite_or_none(value))
            records += 1
    if not records:
        raise UserError(f"{path} holds no step or epoch records; give a log written by "
                        "resnet-gui train --log")
    return log


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"the log {path} does not exist; give a file written by resnet-gui "
                        "train --log") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read the log {path} ({getattr(error, 'strerror', None) or error}"
                        "); give a file written by resnet-gui train --log") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(text.splitlines()):
                break  # a last line cut short by a crash: the records before it stand
            raise UserError(f"line {number} of {path} is not a JSON record; give a log "
                            "written by resnet-gui train --log") from None
        if isinstance(record, dict):
            yield number, record


def _forget_after(log: RunLog, step: int) -> None:
    """Drop the records of steps after ``step`` (undone by a resume from there)."""
    for columns in (log.steps, log.epochs):
        keep = [index for index, value in enumerate(columns["step"]) if value <= step]
        for name, values in columns.items():
            columns[name] = [values[index] for index in keep]


def _columns_to_records(columns: dict[str, list], fields: tuple[str, ...]
                        ) -> list[dict[str, Any]]:
    length = min((len(columns.get(name) or []) for name in fields), default=0)
    return [{name: columns[name][index] for name in fields} for index in range(length)]


def _epoch_of(progress: Any) -> int | None:
    """The epoch a step report belongs to: progress 2.0 ends epoch 1 (0-based)."""
    if not isinstance(progress, (int, float)) or not math.isfinite(progress):
        return None
    return max(0, math.ceil(progress) - 1)


def _whole(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _cell(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)
