"""Class 2: SIGINT, SIGTERM and SIGHUP stop a run the way Ctrl-C does; a second signal waits for
the file being written; kill -9 at random moments, resumed, ends equal to the uninterrupted
run (a few trials here; benchmarks/bench_faults.py runs many)."""

from __future__ import annotations

import os
import signal

import pytest

from resnet_gui.commands.stopping import Aborted, StopOnSignal
from resnet_gui.files import atomic_write_bytes
from tests.faults import cases_stops as cases
from tests.faults.harness import shared_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return shared_workspace(tmp_path_factory)


@pytest.mark.parametrize("name, steps, resume", [("SIGTERM", 2, True), ("SIGHUP", 6, False),
                                                 ("SIGINT", 4, False)])
def test_a_signal_saves_the_run_logs_an_end_and_exits_128_plus_n(ws, name, steps, resume):
    outcome = cases.signal_mid_run(ws, name, steps, resume)
    assert outcome.clean, outcome.report()


def test_a_second_signal_right_after_the_first_corrupts_nothing(ws):
    outcome = cases.two_signals(ws, "SIGTERM", "SIGINT", steps=3, gap=0.0)
    assert outcome.clean, outcome.report()


def test_a_signal_before_training_ends_the_process_cleanly(ws):
    outcome = cases.signal_while_loading(ws, "SIGTERM", delay=1.5)
    assert outcome.clean, outcome.report()


class _Trainer:
    stops = 0

    def request_stop(self):
        self.stops += 1


def test_a_second_signal_during_a_save_aborts_only_once_the_file_is_whole(tmp_path, monkeypatch):
    """The abort is deferred to the end of the atomic write: the file is complete and no
    temporary file is left, then the abort goes on with 128 + the signal's number."""
    path = tmp_path / "run.pt"
    real_fsync = os.fsync
    trainer = _Trainer()

    def signal_mid_write(fd):
        os.kill(os.getpid(), signal.SIGHUP)  # the handler runs now, inside the write
        real_fsync(fd)

    with StopOnSignal() as stopper:
        stopper.trainer = trainer
        os.kill(os.getpid(), signal.SIGTERM)
        assert trainer.stops == 1 and stopper.exit_code == 128 + signal.SIGTERM
        monkeypatch.setattr(os, "fsync", signal_mid_write)
        with pytest.raises(Aborted) as aborted:
            atomic_write_bytes(path, b"x" * 100_000)
        monkeypatch.undo()
    assert aborted.value.exit_code == 128 + signal.SIGHUP
    assert path.read_bytes() == b"x" * 100_000 and os.listdir(tmp_path) == ["run.pt"]


def test_kill_9_at_random_moments_then_resume_equals_the_uninterrupted_run(ws):
    reference = cases.reference_run(ws)
    for seed in (1, 2):
        outcome = cases.kill9_trial(ws, reference, seed, kills=1)
        assert outcome.clean, outcome.report()
