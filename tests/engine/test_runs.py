"""Runs persist: a recorded run lists, reloads with its curves, survives bad files, deletes."""

import json
import math
import os

import numpy as np
import pytest

from resnet_gui.engine.events import EpochEnd, StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.runs import (
    LOG_FILE,
    RUN_FILE,
    RunRecorder,
    RunStore,
    default_runs_dir,
)
from resnet_gui.errors import UserError
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import CHAPTER_RECIPE, Recipe


def _arch():
    return build_preset("resnet20", in_channels=1, num_classes=10, input_size=28)


def _record_run(store, epochs=2, steps_per_epoch=3, reason="completed", recipe=None):
    recipe = recipe or Recipe(epochs=epochs, limit_train=64)
    run = store.create(_arch(), recipe)
    recorder = RunRecorder(store, run)
    recorder.on_train_start(TrainStart(
        epochs=epochs, steps_per_epoch=steps_per_epoch, total_steps=epochs * steps_per_epoch,
        start_epoch=0, start_step=0, device="cpu", precision="fp32", batch_size=8,
        num_train=24, num_test=16, class_names=tuple("abcdefghij"), input_shape=(1, 28, 28)))
    step = 0
    for epoch in range(epochs):
        for batch in range(steps_per_epoch):
            step += 1
            recorder.on_batch_end(StepEnd(
                epoch=epoch, step=step, batch=batch + 1,
                epoch_progress=epoch + (batch + 1) / steps_per_epoch,
                loss=2.0 / step, accuracy=0.1 * step, lr=0.1, examples_per_sec=100.0))
        recorder.on_epoch_end(EpochEnd(
            epoch=epoch, step=step, train_loss=1.0 / (epoch + 1), train_accuracy=0.5,
            test_loss=float("nan"), test_accuracy=0.6 + 0.1 * epoch, lr=0.1, seconds=1.5,
            examples_per_sec=100.0, checkpoint=str(store.checkpoint_path(run.run_id))))
    recorder.on_train_end(TrainEnd(
        reason=reason, epoch=epochs, step=step, train_loss=0.5, train_accuracy=0.5,
        test_accuracy=0.6 + 0.1 * (epochs - 1), examples_per_sec=100.0, seconds=3.0,
        message="" if reason == "completed" else "stopped by the user"))
    return recorder.run


def test_recorded_run_reloads_with_its_curves_and_settings(tmp_path):
    store = RunStore(tmp_path)
    recipe = CHAPTER_RECIPE.replace(epochs=2, limit_train=64)
    recorded = _record_run(store, recipe=recipe)
    loaded = store.load(recorded.run_id)

    assert loaded.summary.status == "completed"
    assert loaded.summary.epochs_done == 2 and loaded.summary.steps == 6
    assert loaded.summary.test_accuracy == pytest.approx(0.7)
    assert loaded.architecture_spec() == _arch()
    assert loaded.recipe_spec() == recipe
    assert len(loaded.log.steps["loss"]) == 6
    assert loaded.log.steps["loss"][-1] == pytest.approx(2.0 / 6)
    assert loaded.log.epochs["test_accuracy"] == pytest.approx([0.6, 0.7])
    # NaN is not JSON: a missing test loss comes back as None, the file stays strict JSON.
    assert loaded.log.epochs["test_loss"] == [None, None]
    json.loads((tmp_path / recorded.run_id / LOG_FILE).read_text(), parse_constant=pytest.fail)


def test_list_is_newest_first_and_lists_unreadable_runs_as_damaged(tmp_path):
    store = RunStore(tmp_path)
    first = _record_run(store)
    second = _record_run(store, reason="stopped")
    broken = tmp_path / "20000101-000000-dead"
    broken.mkdir()
    (broken / RUN_FILE).write_text("{ not json")
    os.utime(broken / RUN_FILE, (0, 0))  # dated by its file: listed last
    (tmp_path / "not-a-run").mkdir()

    listed = store.list()

    assert [s.run_id for s in listed] == [second.run_id, first.run_id, broken.name]
    assert listed[0].status == "stopped" and listed[0].message == "stopped by the user"
    assert listed[2].status == "damaged" and "cannot be read" in listed[2].message
    with pytest.raises(UserError, match="cannot be read"):
        store.load(broken.name)


def test_a_run_interrupted_mid_epoch_keeps_what_was_saved(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(_arch(), Recipe(epochs=5))
    recorder = RunRecorder(store, run)
    recorder.on_epoch_end(EpochEnd(
        epoch=0, step=3, train_loss=1.0, train_accuracy=0.4, test_loss=1.1, test_accuracy=0.45,
        lr=0.1, seconds=1.0, examples_per_sec=50.0))
    # The process dies here: no on_train_end. The run still lists, as still "running".
    summary = RunStore(tmp_path).load_summary(run.run_id)
    assert summary.status == "running" and summary.epochs_done == 1
    assert summary.test_accuracy == pytest.approx(0.45)


def test_error_marks_the_run_and_keeps_the_message(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(_arch(), Recipe())
    RunRecorder(store, run).on_exception(UserError("the loss became NaN at epoch 1"))
    summary = store.load_summary(run.run_id)
    assert summary.status == "error" and "NaN" in summary.message


def test_missing_log_still_loads_the_summary(tmp_path):
    store = RunStore(tmp_path)
    recorded = _record_run(store)
    (tmp_path / recorded.run_id / LOG_FILE).unlink()
    loaded = store.load(recorded.run_id)
    assert loaded.summary.epochs_done == 2 and loaded.log.steps["loss"] == []


def test_delete_removes_the_folder_and_its_checkpoint(tmp_path):
    store = RunStore(tmp_path)
    recorded = _record_run(store)
    store.checkpoint_path(recorded.run_id).write_bytes(b"weights")
    store.delete(recorded.run_id)
    assert store.list() == [] and not (tmp_path / recorded.run_id).exists()
    with pytest.raises(UserError, match="no longer exists"):
        store.load(recorded.run_id)


@pytest.mark.parametrize("bad", ["", "../etc", ".hidden", "a/b"])
def test_run_names_cannot_escape_the_runs_folder(tmp_path, bad):
    with pytest.raises(UserError):
        RunStore(tmp_path).run_dir(bad)


def test_runs_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_GUI_RUNS", str(tmp_path / "elsewhere"))
    assert default_runs_dir() == tmp_path / "elsewhere"
    assert RunStore().root == tmp_path / "elsewhere"
    monkeypatch.delenv("RESNET_GUI_RUNS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert default_runs_dir() == tmp_path / "xdg" / "resnet-gui" / "runs"


def test_non_finite_summary_numbers_are_stored_as_null(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(_arch(), Recipe())
    recorder = RunRecorder(store, run)
    recorder.on_train_end(TrainEnd(
        reason="diverged", epoch=0, step=2, train_loss=math.inf, train_accuracy=float("nan"),
        test_accuracy=float("nan"), examples_per_sec=np.float64(10.0).item(), seconds=0.5,
        message="the loss became NaN at epoch 1, batch 2; lower the learning rate"))
    summary = store.load_summary(run.run_id)
    assert summary.status == "diverged"
    assert summary.test_accuracy is None and summary.train_accuracy is None
