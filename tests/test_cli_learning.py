"""`resnet-gui train` says what it trains and whether it learned: the log's start record, the
architecture's input size, and a run that did not learn named as such."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.test_data import write_idx
from tests.test_cli_train import data_dir, read_log, run_cli  # noqa: F401 (fixture)


def test_the_log_starts_with_the_whole_plan_and_the_input_size_that_trains(tmp_path, data_dir):
    log = tmp_path / "run.jsonl"
    done = run_cli("train", "d2l-resnet18", "--data-dir", data_dir, "--max-steps", "1",
                   "--batch-size", "16", "--limit-test", "8", "--no-progress", "--log", log)
    assert done.returncode == 0, done.stderr
    start = read_log(log)[0]
    assert start["event"] == "start"
    # Build shows d2l-resnet18 at 96 px; the chapter resizes Fashion-MNIST to 96 too.
    assert start["input_shape"] == [1, 96, 96] and "1x96x96" in done.stderr
    assert start["architecture"] == "d2l-resnet18"
    assert start["batch_size"] == 16 and start["num_train"] == 200 and start["num_test"] == 8
    assert start["steps_per_epoch"] == 13 and start["epochs"] == start["recipe"]["epochs"]
    assert start["recipe"]["resize"] == 96 and start["device"] == "cpu"
    assert start["precision"] in ("fp32", "bf16")


def test_resize_overrides_the_input_size_of_the_run(tmp_path, data_dir):
    log = tmp_path / "run.jsonl"
    done = run_cli("train", "d2l-resnet18", "--data-dir", data_dir, "--max-steps", "1",
                   "--resize", "40", "--limit-test", "8", "--no-progress", "--log", log)
    assert done.returncode == 0, done.stderr
    assert read_log(log)[0]["input_shape"] == [1, 40, 40]


def test_a_run_at_a_vanishing_learning_rate_says_it_did_not_learn(tmp_path, data_dir):
    log = tmp_path / "run.jsonl"
    done = run_cli("train", "resnet20", "--data-dir", data_dir, "--epochs", "2",
                   "--batch-size", "16", "--lr", "1e-9", "--no-progress", "--log", log)
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "did not learn" in line]
    assert len(warning) == 1 and "chance" in warning[0], done.stderr
    assert "learning rate 1e-09 is likely far too low" in warning[0]
    end = read_log(log)[-1]
    assert end["event"] == "end" and end["learned"] is False and "chance" in end["verdict"]


@pytest.fixture(scope="module")
def learnable_dir(tmp_path_factory):
    """Ten classes of noise, each with a bright band of rows of its own: easy to learn."""
    root = tmp_path_factory.mktemp("learnable")
    rng = np.random.default_rng(1)
    for prefix, count in (("train", 300), ("t10k", 100)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 60, (count, 28, 28))
        for index, label in enumerate(labels):
            images[index, 2 * label + 4:2 * label + 7] = 250
        (root / "FashionMNIST" / "raw").mkdir(parents=True, exist_ok=True)
        write_idx(root / "FashionMNIST" / "raw" / f"{prefix}-images-idx3-ubyte", images, False)
        write_idx(root / "FashionMNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", labels, False)
    return root


def test_a_run_that_learned_says_nothing_more(tmp_path, learnable_dir):
    log = tmp_path / "run.jsonl"
    done = run_cli("train", "fmnist-fast", "--data-dir", learnable_dir, "--epochs", "3",
                   "--batch-size", "16", "--no-progress", "--log", log)
    assert done.returncode == 0, done.stderr
    assert "did not learn" not in done.stderr
    assert read_log(log)[-1]["learned"] is True


def test_the_plan_clips_gradients_only_where_it_also_picks_the_rate(tmp_path, data_dir):
    """A network whose early gradients run away at the planned rate (d2l-resnet18 at 96 px)
    is held back by clipping; a rate or clip the user gave is theirs, and 0 turns it off."""
    def planned_clip(*options):
        log = tmp_path / "run.jsonl"
        done = run_cli("train", "resnet20", "--data-dir", data_dir, "--max-steps", "1",
                       "--limit-test", "8", "--no-progress", "--overwrite", "--log", log,
                       *options)
        assert done.returncode == 0, done.stderr
        return read_log(log)[0]["recipe"]["grad_clip"]

    assert planned_clip() == 5.0
    assert planned_clip("--lr", "0.01") == 0.0
    assert planned_clip("--grad-clip", "2") == 2.0


def test_a_clip_of_zero_means_no_clipping_and_the_run_still_learns(tmp_path, learnable_dir):
    log = tmp_path / "run.jsonl"
    done = run_cli("train", "fmnist-fast", "--data-dir", learnable_dir, "--epochs", "3",
                   "--batch-size", "16", "--grad-clip", "0", "--no-progress", "--log", log)
    assert done.returncode == 0, done.stderr
    assert read_log(log)[-1]["learned"] is True


def test_fmnist_94_trains_the_fmnist_fast_network_over_its_own_longer_plan(tmp_path, data_dir):
    log = tmp_path / "run.jsonl"
    done = run_cli("train", "fmnist-94", "--data-dir", data_dir, "--max-steps", "1",
                   "--limit-test", "8", "--no-progress", "--log", log)
    assert done.returncode == 0, done.stderr
    start = read_log(log)[0]
    assert start["architecture"] == "fmnist-94" and start["input_shape"] == [1, 28, 28]
    assert start["epochs"] == 10 and start["recipe"]["augment"] is False
    fast = run_cli("summary", "fmnist-fast").stdout
    assert run_cli("summary", "fmnist-94").stdout.replace("fmnist-94", "fmnist-fast") == fast
