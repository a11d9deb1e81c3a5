"""A checkpoint carries its curves, so that a network trained on the command line opens in the
window as a run with its architecture, recipe, results and curves (issue 10)."""

from __future__ import annotations

import pytest
import torch

from resnet_gui.engine.checkpoint import load_checkpoint, save_checkpoint
from resnet_gui.engine.runs import CHECKPOINT_STEP_LIMIT, RunLog, RunRecorder, RunStore
from resnet_gui.engine.trained import load_trained, run_of_checkpoint
from resnet_gui.engine.trainer import Trainer
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two epochs of TINY with a checkpoint, and the curves a run recorder saw."""
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "run.pt"
    recorded = RunStore(folder / "recorded")
    recorder = RunRecorder(recorded, recorded.create(TINY, recipe(epochs=2)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(TINY, recipe(epochs=2), data=tiny_data(), checkpoint_path=path,
                callbacks=(recorder,)).run()
    finally:
        torch.set_num_threads(threads)
    return path, recorder.run.log


def test_the_checkpoint_carries_the_curves_the_run_reported(trained):
    path, seen = trained
    carried = RunLog.from_checkpoint(load_checkpoint(path)["curves"], max_step=10**9)
    assert carried.epochs["epoch"] == [0, 1]
    assert carried.epochs["test_accuracy"] == pytest.approx(seen.epochs["test_accuracy"])
    assert carried.steps["step"] == seen.steps["step"] and len(carried.steps["step"]) >= 2
    assert carried.steps["loss"] == pytest.approx(seen.steps["loss"])


def test_a_checkpoint_opens_as_a_run_once(trained, tmp_path):
    path, seen = trained
    store = RunStore(tmp_path / "runs")
    run = run_of_checkpoint(store, load_trained(path))
    assert [summary.run_id for summary in store.list()] == [run.run_id]
    summary = run.summary
    assert summary.status == "completed" and summary.epochs_done == 2 == summary.epochs_planned
    assert summary.test_accuracy == pytest.approx(seen.epochs["test_accuracy"][-1])
    assert summary.checkpoint == str(path.resolve())
    assert run.architecture_spec() == load_trained(path).arch
    stored = store.load(run.run_id)
    assert stored.log.epochs["test_accuracy"] == pytest.approx(seen.epochs["test_accuracy"])
    assert stored.log.steps["step"] == seen.steps["step"]

    again = run_of_checkpoint(store, load_trained(path))  # opened again: the same run
    assert again.run_id == run.run_id and len(store.list()) == 1
    store.delete(run.run_id)
    assert path.is_file()  # the user's checkpoint is not the run's to delete


def test_a_stored_runs_own_checkpoint_opens_that_run(trained, tmp_path):
    path, _ = trained
    store = RunStore(tmp_path / "runs")
    run = store.create(TINY, recipe(epochs=2))
    own = store.checkpoint_path(run.run_id)
    own.write_bytes(path.read_bytes())
    assert run_of_checkpoint(store, load_trained(own)).run_id == run.run_id
    assert len(store.list()) == 1


def test_curves_survive_a_resume_and_stop_at_the_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(TINY, recipe(epochs=2, max_steps=7), data=tiny_data(), checkpoint_path=path).run()
    first = RunLog.from_checkpoint(load_checkpoint(path)["curves"], max_step=10**9)
    assert first.epochs["epoch"] == [0] and first.steps["step"][-1] == 7
    Trainer(TINY, recipe(epochs=2), data=tiny_data(), checkpoint_path=path,
            resume_from=path).run()
    whole = RunLog.from_checkpoint(load_checkpoint(path)["curves"], max_step=10**9)
    assert whole.epochs["epoch"] == [0, 1]
    assert whole.steps["step"][:len(first.steps["step"])] == first.steps["step"]
    assert whole.steps["step"] == sorted(set(whole.steps["step"]))


def test_damaged_or_missing_curves_leave_a_run_without_curves(trained, tmp_path):
    path, _ = trained
    checkpoint = load_checkpoint(path)
    for curves in (None, {"steps": "junk", "epochs": torch.zeros(3)}):
        copy = tmp_path / f"copy-{curves is None}.pt"
        save_checkpoint(copy, {**checkpoint, "curves": curves})
        run = run_of_checkpoint(RunStore(tmp_path / "runs"), load_trained(copy))
        assert run.log.epochs["epoch"] == [] and run.summary.epochs_done == 2


def test_long_curves_are_thinned_keeping_the_last_report():
    log = RunLog()
    for step in range(1, 3 * CHECKPOINT_STEP_LIMIT):
        log.steps["step"].append(step)
        for name in ("epoch_progress", "loss", "accuracy", "lr", "examples_per_sec"):
            log.steps[name].append(1.0 / step)
    saved = log.to_checkpoint()["steps"]
    assert len(saved) <= CHECKPOINT_STEP_LIMIT
    assert saved[-1, 0] == 3 * CHECKPOINT_STEP_LIMIT - 1 and saved[0, 0] == 1
