"""Class 5: damaged inputs are caught (checkpoints with a checksum, run stores, IDX files);
class 6: numbers that overflow are refused before training; class 7: no leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from resnet_gui.arch.recipe import Recipe
from resnet_gui.cli import main
from resnet_gui.engine.checkpoint import load_checkpoint, previous_path, save_checkpoint
from resnet_gui.engine.data import load_data
from resnet_gui.errors import CheckpointError, DataError
from tests.faults import cases_inputs as cases
from tests.faults.harness import shared_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return shared_workspace(tmp_path_factory)


@pytest.mark.parametrize("seed, where", [(1, "tensor"), (3, "anywhere")])
def test_a_checkpoint_with_flipped_bytes_never_resumes_silently(ws, seed, where):
    outcome = cases.flipped_checkpoint(ws, seed, where)
    assert outcome.clean, outcome.report()


def test_every_flipped_weight_is_caught_by_the_checksum(ws, tmp_path):
    """In-process, many flips: each one inside a tensor fails the checksum."""
    saved = cases.saved_checkpoint(ws)
    data = saved.read_bytes()
    ranges = cases.tensor_byte_ranges(saved)
    for index, (offset, size) in enumerate(ranges):
        flipped = bytearray(data)
        flipped[offset + (index * 7919) % size] ^= 0x10
        path = tmp_path / f"flip{index}.pt"
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match="do not match the checksum"):
            load_checkpoint(path)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="is damaged"):
        load_checkpoint(cut)


def test_a_checkpoint_saved_before_checksums_still_resumes(ws):
    outcome = cases.checkpoint_without_checksum(ws)
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("variant", sorted(cases.RUN_DAMAGE))
def test_a_run_file_with_a_wrong_typed_field_is_listed_as_damaged(ws, variant):
    outcome = cases.damaged_run_file(ws, variant)
    assert outcome.clean, outcome.report()


def test_the_window_starts_beside_a_damaged_run(ws):
    outcome = cases.damaged_run_file(ws, "created text", window=True)
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("variant", cases.IDX_DAMAGE)
def test_a_damaged_or_huge_idx_file_is_one_sentence_before_reading(ws, variant):
    root, expected = cases.prepare_damaged_idx(ws, variant)
    began = time.process_time()
    with pytest.raises(DataError, match=expected):
        load_data(Recipe(data_dir=str(root)))
    assert time.process_time() - began < 5  # the terabyte was never read


def test_a_huge_idx_file_through_the_command_line(ws):
    outcome = cases.damaged_idx(ws, "huge-header")
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("option, value, setting", cases.BAD_NUMBERS)
def test_a_number_that_would_overflow_is_refused_before_training(ws, option, value, setting,
                                                                 tmp_path, capsys):
    code = main([*ws.train(f"{option}={value}", "--checkpoint", tmp_path / "run.pt")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "training on" not in err
    assert err.strip().splitlines()[-1].startswith(
        f"resnet-gui: error: training setting '{setting}': must be ")
    assert os.listdir(tmp_path) == []


def test_resuming_a_finished_run_says_so(ws):
    outcome = cases.finished_resume(ws)
    assert outcome.clean, outcome.report()


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    return int(done.stdout)


def test_the_next_save_removes_stale_temporary_files_of_ours_only(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"step": 1})
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead, alive = _dead_pid(), sleeper.pid
        names = {f".run.pt.{dead}-abcdef.tmp": False,  # its writer is gone: removed
                 f".run.prev.pt.{dead}-123456.tmp": False,  # the rotation's, too
                 f".run.pt.{alive}-abcdef.tmp": True,  # a live writer's: kept
                 ".run.pt.k3j_x9q2.tmp": True,  # an older writer's, recent: kept
                 ".run.pt.old_tmp1.tmp": False,  # ... and an hour old: removed
                 ".run.pt.notours.tmp": True, "run.pt.tmp": True, ".other.pt.12-abcdef.tmp": True}
        for name in names:
            (tmp_path / name).write_bytes(b"half a checkpoint")
        hour_ago = time.time() - 3700
        os.utime(tmp_path / ".run.pt.old_tmp1.tmp", (hour_ago, hour_ago))
        save_checkpoint(path, {"step": 2})
    finally:
        sleeper.kill()
        sleeper.wait()
    left = set(os.listdir(tmp_path)) - {"run.pt", "run.prev.pt"}
    assert left == {name for name, kept in names.items() if kept}


def test_a_prev_that_is_a_hard_link_of_the_checkpoint_leaks_nothing(tmp_path):
    """A kill between the rotation's two renames leaves run.prev.pt and run.pt one file."""
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"step": 1})
    os.link(path, previous_path(path))
    for step in (2, 3, 4):
        save_checkpoint(path, {"step": step})
        assert sorted(os.listdir(tmp_path)) == ["run.prev.pt", "run.pt"]
    assert load_checkpoint(path)["step"] == 4 and load_checkpoint(previous_path(path))["step"] == 3
    assert os.stat(path).st_nlink == 1 and os.stat(previous_path(path)).st_nlink == 1
