"""`resnet-gui train` end to end: a few steps on tiny generated IDX data, the JSON-lines log,
resume, Ctrl-C, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from resnet_gui.cli import main
from tests.conftest import REPO
from tests.engine.test_data import write_fashion_mnist

END_KEYS = {"train_loss", "train_acc", "test_acc", "examples_per_sec", "seconds"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "FashionMNIST" / "raw", train=200, test=40)
    return root


def run_cli(*args, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RESNET_GUI_DATA": ""}
    return subprocess.run([sys.executable, "-m", "resnet_gui", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


def read_log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_a_few_steps_then_resume_with_the_log_checked(tmp_path, data_dir):
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    common = ["--data-dir", data_dir, "--checkpoint", checkpoint, "--no-progress"]
    first = run_cli("train", "resnet20", "--epochs", "2", "--batch-size", "32",
                    "--max-steps", "9", "--limit-test", "20", "--seed", "5", "--log", log,
                    *common)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    records = read_log(log)
    kinds = [r["event"] for r in records]
    assert kinds[-1] == "end" and "epoch" in kinds and kinds.count("end") == 1
    assert set(kinds) == {"start", "step", "telemetry", "epoch", "end"} and kinds[0] == "start"
    steps = [r for r in records if r["event"] == "step"]
    assert steps[-1]["step"] == 9 and all(0 <= r["accuracy"] <= 1 for r in steps)
    epoch = next(r for r in records if r["event"] == "epoch")
    assert epoch["step"] == 7 and 0 <= epoch["test_acc"] <= 1  # 200 images = 7 steps of 32
    end = records[-1]
    assert END_KEYS <= end.keys() and end["reason"] == "max_steps" and end["step"] == 9
    assert end["examples_per_sec"] > 0 and end["seconds"] > 0
    assert 0 <= end["test_acc"] <= 1 and np.isfinite(end["train_loss"])
    assert checkpoint.is_file()

    resumed = run_cli("train", "--resume", checkpoint, "--log", log, "--epochs", "7", *common)
    assert resumed.returncode == 0, resumed.stderr
    assert "--epochs ignored" in resumed.stderr  # the plan is the checkpoint's
    records = read_log(log)
    end = records[-1]
    assert end["event"] == "end" and end["reason"] == "completed" and end["step"] == 14
    assert [r["event"] for r in records].count("end") == 2  # the log was appended to


def test_ctrl_c_stops_after_saving(tmp_path, data_dir):
    log, checkpoint = tmp_path / "run.jsonl", tmp_path / "run.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "resnet_gui", "train", "resnet20", "--data-dir", str(data_dir),
         "--epochs", "50", "--batch-size", "8", "--log", str(log), "--checkpoint",
         str(checkpoint), "--no-progress"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if log.exists() and '"event": "step"' in log.read_text():
                break
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopping after this batch" in stderr
    end = read_log(log)[-1]
    assert end["event"] == "end" and end["reason"] == "stopped"
    assert checkpoint.is_file()


def test_a_folder_without_the_data_is_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["train", "resnet20", "--data-dir", str(tmp_path / "empty"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("resnet-gui: error: Fashion-MNIST is not in")
    assert "--data-dir" in err[-1] and "Traceback" not in "\n".join(err)


def test_a_bad_architecture_or_setting_is_one_line(tmp_path, capsys, data_dir):
    assert main(["train", "resnet2O", "--data-dir", str(data_dir)]) == 2
    assert "did you mean 'resnet20'" in capsys.readouterr().err
    assert main(["train", "resnet20", "--data-dir", str(data_dir), "--lr", "-1"]) == 1
    assert "training setting 'lr'" in capsys.readouterr().err
    assert main(["train", "--data-dir", str(data_dir)]) == 1
    assert "give an architecture" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err
