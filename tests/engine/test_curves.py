"""A run's curves as CSV: from the run store's log and from a ``train --log`` file, resumed runs
included, written atomically."""

from __future__ import annotations

import csv
import json

import pytest

from resnet_gui.engine.curves import COLUMNS, read_log_file, write_curves_csv
from resnet_gui.engine.events import EpochEnd, StepEnd
from resnet_gui.engine.runs import RunLog
from resnet_gui.errors import UserError


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def step_record(step, loss, epoch=0, **extra):
    return {"event": "step", "epoch": epoch, "step": step, "batch": step,
            "epoch_progress": step / 4, "loss": loss, "accuracy": 0.5, "lr": 0.1,
            "examples_per_sec": None if step == 1 else 250.0, **extra}


def epoch_record(epoch, step):
    return {"event": "epoch", "epoch": epoch, "step": step, "train_loss": 1.0, "train_acc": 0.6,
            "test_loss": 1.1, "test_acc": 0.55, "lr": 0.05, "seconds": 3.0,
            "examples_per_sec": 200.0, "checkpoint": "run.pt"}


def write_log(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_a_stored_runs_steps_and_epochs_become_one_table_in_step_order(tmp_path):
    log = RunLog()
    for number in (1, 2, 3, 4):
        log.add_step(StepEnd(epoch=0, step=number, batch=number, epoch_progress=number / 4,
                             loss=2.0 / number, accuracy=0.25 * number, lr=0.1,
                             examples_per_sec=float("nan") if number == 1 else 300.0))
    log.add_epoch(EpochEnd(epoch=0, step=4, train_loss=1.0, train_accuracy=0.6, test_loss=1.1,
                           test_accuracy=0.55, lr=0.1, seconds=2.5, examples_per_sec=280.0))
    path = tmp_path / "curves.csv"
    assert write_curves_csv(log, path) == 5
    rows = read_csv(path)
    assert tuple(rows[0].keys()) == COLUMNS
    assert [(r["record"], r["step"]) for r in rows] == [
        ("step", "1"), ("step", "2"), ("step", "3"), ("step", "4"), ("epoch", "4")]
    assert rows[0]["examples_per_sec"] == "" and rows[1]["examples_per_sec"] == "300.0"
    assert rows[3]["epoch"] == "0" and rows[3]["epoch_progress"] == "1.0"  # the epoch's end
    assert float(rows[2]["loss"]) == 2.0 / 3  # full precision
    epoch = rows[4]
    assert (epoch["test_accuracy"], epoch["seconds"], epoch["loss"]) == ("0.55", "2.5", "")
    assert [p.name for p in tmp_path.iterdir()] == ["curves.csv"]  # no temporary left


def test_a_log_file_resumed_from_a_checkpoint_keeps_the_steps_the_run_continued(tmp_path):
    path = tmp_path / "run.jsonl"
    write_log(path, [
        {"event": "start", "start_step": 0},
        *(step_record(n, 3.0 - 0.1 * n) for n in range(1, 5)), epoch_record(0, 4),
        *(step_record(n, 9.0, epoch=1) for n in (5, 6)),  # undone: the run stopped, saved at 4
        {"event": "end", "reason": "stopped", "step": 6},
        {"event": "start", "start_step": 4},
        *(step_record(n, 1.0, epoch=1) for n in (5, 6, 7, 8)), epoch_record(1, 8),
    ])
    log = read_log_file(path)
    assert log.steps["step"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert log.steps["loss"][4:] == [1.0, 1.0, 1.0, 1.0]
    assert log.epochs["step"] == [4, 8] and log.epochs["test_accuracy"] == [0.55, 0.55]
    assert write_curves_csv(log, tmp_path / "curves.csv") == 10


def test_a_log_cut_short_by_a_crash_keeps_its_whole_records(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(step_record(1, 2.0)) + "\n" + '{"event": "st')
    assert read_log_file(path).steps["step"] == [1]


@pytest.mark.parametrize("content, problem", [
    (None, "does not exist"),
    ("not json\n" + json.dumps(step_record(1, 2.0)) + "\n", "line 1 of .* is not a JSON record"),
    (json.dumps({"event": "start"}) + "\n", "holds no step or epoch records"),
    (json.dumps({"event": "step", "step": "one"}) + "\n", "without a step number"),
])
def test_a_file_that_is_not_a_training_log_is_one_sentence(tmp_path, content, problem):
    path = tmp_path / "run.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=problem):
        read_log_file(path)
