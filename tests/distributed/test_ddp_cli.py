"""``resnet-gui train`` on two gloo processes over loopback, through the real torchrun and
through ``--nproc``: every option reaches the program, checkpoints resume across process
counts, and a killed process or Ctrl-C ends the run cleanly."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.distributed.run import parse_args as torchrun_parse_args

from resnet_gui.cli import _subcommand_parser, main
from resnet_gui.engine.checkpoint import load_checkpoint
from tests.conftest import REPO
from tests.engine.test_data import write_fashion_mnist

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2", "-m", "resnet_gui", "--"]
RUN = ["--epochs", "2", "--batch-size", "32", "--limit-test", "20", "--seed", "5",
       "--no-progress"]  # 200 training images: 7 steps an epoch
ONE_THREAD = ["--threads", "1"]  # runs in this process: tiny tensors, and other jobs' load
DEADLINE = 150  # seconds; a run that hangs fails instead of holding CI
pytestmark = pytest.mark.timeout(300)  # each test, whatever it waits for


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "FashionMNIST" / "raw", train=200, test=40)
    return root


@pytest.fixture(autouse=True)
def threads_restored():
    """--threads in this process changes torch's setting for the tests after it."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "RESNET_GUI_DATA": ""}


def run(command: list, timeout: float = DEADLINE) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], cwd=REPO, env=environment(),
                          capture_output=True, text=True, timeout=timeout)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def train_options() -> list[argparse.Action]:
    parser = _subcommand_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in commands.choices["train"]._actions if a.option_strings and a.dest != "help"]


def sample_arguments(action: argparse.Action) -> list[str]:
    """Each spelling of the option, with a value its parser accepts."""
    if action.nargs == 0:
        return list(action.option_strings)
    value = (action.choices[0] if action.choices else "3" if action.type is int
             else "0.5" if action.type is float else "some/path.pt")
    return [part for option in action.option_strings for part in (option, str(value))]


def test_every_train_option_reaches_the_program_through_torchruns_parser():
    for action in train_options():
        ours = ["train", "resnet20", *sample_arguments(action)]
        parsed = torchrun_parse_args(["--standalone", "--nproc-per-node", "2", "-m",
                                      "resnet_gui", "--", *ours])
        assert parsed.training_script == "resnet_gui"
        assert parsed.training_script_args == ours, action.option_strings
    # Without "--", torchrun's parser takes --log for an abbreviation of its own options.
    with pytest.raises(SystemExit):
        torchrun_parse_args(["--nproc-per-node", "2", "-m", "resnet_gui", "train", "resnet20",
                             "--log", "run.jsonl"])


def test_torchrun_trains_with_the_train_options_on_two_processes(tmp_path, data_dir):
    log, board = tmp_path / "run.jsonl", tmp_path / "board"
    done = run([*TORCHRUN, "train", "resnet20", "--recipe", "chapter", "--dataset",
                "fashion-mnist", "--data-dir", data_dir, "--resize", "28", "--augment",
                "--crop-padding", "2", "--limit-train", "100", "--limit-test", "20",
                "--epochs", "2", "--batch-size", "20", "--lr", "0.05", "--optimizer", "sgd",
                "--momentum", "0.9", "--nesterov", "--weight-decay", "0.0001", "--schedule",
                "cosine", "--warmup-epochs", "0.5", "--label-smoothing", "0.1", "--grad-clip",
                "5", "--init", "kaiming", "--zero-init-last", "--seed", "3", "--device", "cpu",
                "--precision", "fp32", "--channels-last", "--no-compile", "--threads", "1",
                "--max-steps", "7", "--sync-bn", "--checkpoint", tmp_path / "run.pt", "--log",
                log, "--tensorboard", board, "--no-progress"])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("--sync-bn needs GPUs (NCCL)") == 1  # rank 0 alone speaks
    logged = records(log)
    start, end = logged[0], logged[-1]
    assert start["processes"] == 2 and start["batch_size"] == 20
    assert start["recipe"]["lr"] == 0.05 and start["recipe"]["schedule"] == "cosine"
    assert start["input_shape"] == [1, 28, 28] and start["num_train"] == 100
    assert end["reason"] == "max_steps" and end["step"] == 7
    assert len(list(board.glob("events.out.tfevents.*"))) == 1  # written by rank 0 only
    assert load_checkpoint(tmp_path / "run.pt")["step"] == 7


def test_a_two_process_checkpoint_resumes_on_one_process_in_the_same_plan(tmp_path, data_dir):
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    first = run([sys.executable, "-m", "resnet_gui", "train", "resnet20", "--data-dir", data_dir,
                 *RUN, "--max-steps", "5", "--checkpoint", checkpoint, "--log", log,
                 "--nproc", "2"])
    assert first.returncode == 0, first.stderr
    saved = load_checkpoint(checkpoint)
    assert (saved["step"], saved["position"], saved["batch_size"]) == (5, 160, 32)

    assert main(["train", "--resume", str(checkpoint), "--data-dir", str(data_dir), "--log",
                 str(log), "--no-progress", *ONE_THREAD]) == 0
    end = records(log)[-1]
    assert (end["reason"], end["epoch"], end["step"]) == ("completed", 2, 14)
    assert_same_plan_as_one_uninterrupted_process(records(log), tmp_path, data_dir)


def test_a_one_process_checkpoint_resumes_on_two_processes_in_the_same_plan(tmp_path,
                                                                           data_dir):
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    assert main(["train", "resnet20", "--data-dir", str(data_dir), *RUN, "--max-steps", "5",
                 "--checkpoint", str(checkpoint), "--log", str(log), *ONE_THREAD]) == 0
    resumed = run([sys.executable, "-m", "resnet_gui", "train", "--resume", checkpoint,
                   "--data-dir", data_dir, "--log", log, "--no-progress", "--nproc", "2"])
    assert resumed.returncode == 0, resumed.stderr
    logged = records(log)
    assert logged[-1]["reason"] == "completed" and logged[-1]["step"] == 14
    assert [r for r in logged if r["event"] == "start"][-1]["processes"] == 2
    assert load_checkpoint(checkpoint)["epoch"] == 2
    assert_same_plan_as_one_uninterrupted_process(logged, tmp_path, data_dir)


def assert_same_plan_as_one_uninterrupted_process(logged, tmp_path, data_dir):
    """Steps, epochs and learning rates where one process running the whole plan has them."""
    whole = tmp_path / "whole.jsonl"
    assert main(["train", "resnet20", "--data-dir", str(data_dir), *RUN, "--log",
                 str(whole), *ONE_THREAD]) == 0
    expected = {(r["step"], round(r["epoch_progress"], 9)): r["lr"]
                for r in records(whole) if r["event"] == "step"}
    steps = [r for r in logged if r["event"] == "step"]
    assert steps and all(expected[(r["step"], round(r["epoch_progress"], 9))]
                         == pytest.approx(r["lr"]) for r in steps
                         if (r["step"], round(r["epoch_progress"], 9)) in expected)
    assert [r["step"] for r in logged if r["event"] == "epoch"] == [7, 14]


def workers_of(launcher: int) -> dict[int, int]:
    """The pids of the processes torchrun's agent in ``launcher`` started, by rank."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        rank = next((v[5:] for v in environ if v.startswith(b"RANK=")), None)
        if parent == launcher and rank is not None:
            found[int(rank)] = int(entry.name)
    return found


def start_long_run(tmp_path, data_dir) -> tuple[subprocess.Popen, Path, Path]:
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "resnet_gui", "train", "resnet20", "--data-dir", str(data_dir),
         "--epochs", "200", "--batch-size", "32", "--limit-test", "20", "--no-progress",
         "--checkpoint", str(checkpoint), "--log", str(log), "--nproc", "2"],
        cwd=REPO, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, log, checkpoint


def wait_for(condition, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds ranks in /proc")
def test_a_killed_process_ends_the_run_with_one_sentence_naming_it(tmp_path, data_dir):
    process, log, checkpoint = start_long_run(tmp_path, data_dir)
    try:
        wait_for(checkpoint.is_file, process)  # an epoch has ended and been saved
        workers = workers_of(process.pid)
        assert sorted(workers) == [0, 1]
        killed = time.monotonic()
        os.kill(workers[1], signal.SIGKILL)
        _, stderr = process.communicate(timeout=DEADLINE)
        ended = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"resnet-gui: error: process 1 of 2 was killed by SIGKILL; the other processes were "
        f"stopped and the checkpoint {checkpoint} from its last save is kept")
    assert ended < 60  # the surviving process noticed at once, not after a timeout
    assert load_checkpoint(checkpoint)["epoch"] >= 1  # intact


def test_ctrl_c_stops_every_process_at_one_step_and_saves(tmp_path, data_dir):
    process, log, checkpoint = start_long_run(tmp_path, data_dir)
    try:
        wait_for(lambda: log.is_file() and '"event": "step"' in log.read_text(), process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.count("stopping after this batch and saving") == 1  # rank 0 speaks
    end = records(log)[-1]
    assert end["event"] == "end" and end["reason"] == "stopped"
    assert load_checkpoint(checkpoint)["step"] == end["step"]


def test_pause_resume_and_stop_on_standard_input_steer_every_process(tmp_path, data_dir):
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "resnet_gui", "train", "resnet20", "--data-dir", str(data_dir),
         "--epochs", "200", "--batch-size", "32", "--limit-test", "20", "--no-progress",
         "--checkpoint", str(checkpoint), "--log", str(log), "--nproc", "2", "--control"],
        cwd=REPO, env=environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)

    def last_step() -> int:
        steps = [r["step"] for r in records(log) if r["event"] == "step"] if log.is_file() else []
        return steps[-1] if steps else 0

    try:
        wait_for(lambda: last_step() > 0, process)
        process.stdin.write("pause\n")
        process.stdin.flush()
        time.sleep(2)  # the pause takes at the next step; then nothing moves
        held = last_step()
        time.sleep(2)
        assert last_step() == held
        process.stdin.write("resume\n")
        process.stdin.flush()
        wait_for(lambda: last_step() > held, process)
        process.stdin.write("stop\n")
        process.stdin.flush()
        _, stderr = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    end = records(log)[-1]
    assert end["event"] == "end" and end["reason"] == "stopped" and end["step"] > held
    assert load_checkpoint(checkpoint)["step"] == end["step"]


def test_nproc_mistakes_are_one_sentence(monkeypatch, capsys):
    assert main(["train", "resnet20", "--nproc", "0"]) == 2
    assert "--nproc must be between 1 and 64, got 0" in capsys.readouterr().err
    cores = os.cpu_count() or 1
    if cores < 64:
        assert main(["train", "resnet20", "--device", "cpu", "--nproc", str(cores + 1)]) == 2
        assert f"need more cores than this machine's {cores}" in capsys.readouterr().err
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)  # as if torchrun had started this process
    monkeypatch.delenv("RESNET_GUI_LAUNCHED", raising=False)
    assert main(["train", "resnet20", "--nproc", "2"]) == 2
    assert "--nproc starts torchrun itself; under torchrun leave it out" in \
        capsys.readouterr().err
