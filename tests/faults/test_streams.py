"""Class 3: output that goes away ends nothing silently (closed stderr, a log or checkpoint
that cannot be written, a closed or full stdout); class 4: one run per file."""

from __future__ import annotations

import errno
import os

import pytest

from resnet_gui.commands.jsonlog import JsonLog, kept_records
from resnet_gui.files import FileInUseError, FileLock
from tests.faults import cases_streams as cases
from tests.faults.harness import shared_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return shared_workspace(tmp_path_factory)


def test_a_closed_stderr_loses_the_progress_not_the_run(ws):
    outcome = cases.closed_stderr(ws, lines=2)
    assert outcome.clean, outcome.report()


def test_a_log_at_the_file_size_limit_stops_the_run_with_its_checkpoint(ws):
    outcome = cases.log_size_limit(ws, room=300)
    assert outcome.clean, outcome.report()


def test_a_checkpoint_over_the_file_size_limit_keeps_the_previous_one(ws):
    outcome = cases.checkpoint_size_limit(ws, limit=20_000)
    assert outcome.clean, outcome.report()


def test_a_full_disk_is_one_sentence_and_loses_nothing(ws):
    try:
        outcome = cases.full_disk(ws, 150_000)
    except OSError as error:
        pytest.skip(str(error))
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("command, how", [("presets", "full"), ("export json", "closed"),
                                          ("export py", "reader gone"), ("presets", "closed")])
def test_a_closed_or_full_stdout_is_one_sentence(ws, command, how):
    outcome = cases.stdout_gone(ws, command, how)
    assert outcome.clean, outcome.report()


def test_a_log_on_stdout_whose_reader_left_stops_the_run_with_its_checkpoint(ws):
    outcome = cases.log_reader_gone(ws)
    assert outcome.clean, outcome.report()


def test_a_record_cut_short_by_a_full_disk_is_taken_back(tmp_path, monkeypatch):
    path = tmp_path / "run.jsonl"
    stops = []
    log = JsonLog(str(path), on_failure=lambda: stops.append(True))
    log.write({"event": "step", "step": 1})
    real_write = os.write

    def half_then_full(fd, data):
        if fd != log.fd:
            return real_write(fd, data)
        if len(data) > 10:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    log.write({"event": "step", "step": 2})
    log.write({"event": "step", "step": 3})  # not tried again after a failure
    monkeypatch.undo()
    log.close()
    assert path.read_text() == '{"event": "step", "step": 1}\n'
    assert stops == [True] and log.failure == f"could not write the log {path}: the disk is full"


def test_resuming_drops_the_records_past_the_checkpoint_and_a_torn_line():
    lines = [b'{"event": "step", "step": 4}\n', b'{"event": "epoch", "epoch": 0, "step": 5}\n',
             b'{"event": "error", "message": "x"}\n', b'{"event": "step", "step": 6}\n',
             b'{"event": "st']
    kept, dropped = kept_records(b"".join(lines), last_step=5)
    assert kept == b"".join(lines[:3]) and dropped
    assert kept_records(b"".join(lines[:3]), last_step=5) == (b"".join(lines[:3]), False)


@pytest.mark.parametrize("shared", ["checkpoint via a link", "log"])
def test_a_second_run_on_the_same_file_is_refused_naming_the_first(ws, shared):
    outcome = cases.two_runs(ws, shared)
    assert outcome.clean, outcome.report()


def test_a_lock_names_its_holder_and_is_gone_once_released(tmp_path):
    path = tmp_path / "run.pt"
    with FileLock(path, "the checkpoint run.pt") as held:
        assert held.path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(FileInUseError) as refused:
            FileLock(path, "the checkpoint run.pt").acquire()
        assert refused.value.pid == os.getpid()
        assert str(refused.value) == (f"the checkpoint run.pt is in use by another resnet-gui "
                                      f"run (pid {os.getpid()}); wait for it to end, or choose "
                                      "another file")
    assert os.listdir(tmp_path) == []
    with FileLock(path, "again"):  # free again
        pass
