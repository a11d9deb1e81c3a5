"""`resnet-gui train` refuses bad options before training: exit code, one line on stderr,
no traceback, nothing written."""

from __future__ import annotations

import json
import os

import pytest

from resnet_gui.cli import main
from tests.engine.test_data import write_fashion_mnist


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "FashionMNIST" / "raw", train=64, test=20)
    return root


def one_error_line(capsys) -> str:
    """The one error line, last on stderr (after at most a "resuming" and a "loading" note)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert all(line.startswith(("resnet-gui: loading ", "resnet-gui: resuming "))
               for line in lines[:-1]), err
    assert lines[-1].startswith("resnet-gui: error: "), err
    return lines[-1]


def train(*args) -> int:
    return main(["train", *map(str, args), "--no-progress"])


@pytest.mark.parametrize("threads", ["0", "-3", "100000", str((os.cpu_count() or 1) + 1)])
def test_a_thread_count_outside_the_cores_is_refused(threads, data_dir, capsys):
    assert train("fmnist-fast", "--data-dir", data_dir, "--threads", threads) == 1
    line = one_error_line(capsys)
    assert f"--threads must be between 1 and {os.cpu_count()}" in line and threads in line


@pytest.mark.parametrize("option, value, field", [
    ("--lr", "inf", "lr"), ("--lr", "nan", "lr"), ("--lr", "-inf", "lr"),
    ("--weight-decay", "inf", "weight_decay"), ("--momentum", "nan", "momentum"),
    ("--warmup-epochs", "inf", "warmup_epochs"), ("--grad-clip", "inf", "grad_clip"),
    ("--label-smoothing", "nan", "label_smoothing"),
])
def test_a_float_that_is_not_finite_is_refused_naming_the_setting(option, value, field,
                                                                  data_dir, capsys):
    assert train("fmnist-fast", "--data-dir", data_dir, f"{option}={value}") == 1
    line = one_error_line(capsys)
    assert f"training setting '{field}'" in line and "finite" in line


@pytest.mark.parametrize("seed", [str(2**63), str(2**64 + 5), "-1"])
def test_a_seed_outside_0_to_2_63_is_refused(seed, data_dir, capsys):
    assert train("fmnist-fast", "--data-dir", data_dir, f"--seed={seed}") == 1
    line = one_error_line(capsys)
    assert "training setting 'seed'" in line and str(2**63 - 1) in line


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_a_data_dir_that_does_not_exist_is_named_and_not_created(dataset, tmp_path, capsys):
    missing = tmp_path / "typo" / "data"
    assert train("fmnist-fast", "--dataset", dataset, "--data-dir", missing) == 1
    line = one_error_line(capsys)
    assert f"the data folder {missing} (--data-dir) does not exist" in line
    assert not (tmp_path / "typo").exists()


def test_a_data_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert train("fmnist-fast", "--data-dir", tmp_path / "file") == 1
    assert "is a file, not a folder" in one_error_line(capsys)


def strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_run_too_short_to_time_says_so_and_logs_null(tmp_path, data_dir, capsys):
    log = tmp_path / "run.jsonl"
    assert train("fmnist-fast", "--data-dir", data_dir, "--batch-size", "32", "--epochs", "1",
                 "--max-steps", "2", "--log", log) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nan" not in err.lower()
    assert "examples/s not measured" in err.strip().splitlines()[-1]
    records = [strict_json(line) for line in log.read_text().splitlines()]
    assert records[-1]["event"] == "end" and records[-1]["examples_per_sec"] is None


def test_an_epoch_too_short_to_time_says_so(tmp_path, data_dir, capsys):
    # 64 images in batches of 32: each epoch has 2 steps, all of them warm-up.
    assert train("fmnist-fast", "--data-dir", data_dir, "--batch-size", "32", "--epochs", "1",
                 "--limit-test", "10") == 0
    err = capsys.readouterr().err
    epoch_line = next(line for line in err.splitlines() if line.startswith("epoch 1/1"))
    assert "examples/s not measured" in epoch_line and "nan" not in err.lower()


def test_a_checkpoint_path_that_is_a_folder_is_refused(tmp_path, data_dir, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    assert train("fmnist-fast", "--data-dir", data_dir, "--checkpoint", runs) == 1
    line = one_error_line(capsys)
    assert line == (f"resnet-gui: error: --checkpoint {runs} is a folder; give a file path "
                    f"such as {runs / 'model.pt'}")
    assert list(runs.iterdir()) == []
    assert train("fmnist-fast", "--data-dir", data_dir, "--checkpoint", f"{tmp_path}/new/") == 1
    assert "--checkpoint" in one_error_line(capsys) and not (tmp_path / "new").exists()


def test_a_checkpoint_under_a_file_or_in_a_locked_folder_is_refused_before_training(
        tmp_path, data_dir, capsys, monkeypatch):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder would go")
    assert train("fmnist-fast", "--data-dir", data_dir, "--checkpoint",
                 blocker / "runs" / "model.pt", "--max-steps", 1) == 1
    assert one_error_line(capsys) == (
        f"resnet-gui: error: --checkpoint {blocker / 'runs' / 'model.pt'}: {blocker} is a "
        "file, not a folder; choose another path")
    # A folder this user cannot write in (faked: tests may run as root, who can write anywhere).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == str(locked)
                        else real_access(path, mode, **kw))
    assert train("fmnist-fast", "--data-dir", data_dir, "--log", locked / "run.jsonl") == 1
    assert f"cannot write in {locked}" in one_error_line(capsys)
    assert list(locked.iterdir()) == []


def test_a_log_path_that_is_a_folder_is_refused(tmp_path, data_dir, capsys):
    assert train("fmnist-fast", "--data-dir", data_dir, "--log", tmp_path) == 1
    assert f"--log {tmp_path} is a folder" in one_error_line(capsys)


def test_resume_from_a_folder_or_a_missing_file_is_one_sentence(tmp_path, capsys):
    assert train("--resume", tmp_path) == 1
    assert one_error_line(capsys) == (
        f"resnet-gui: error: --resume {tmp_path} is a folder; give a checkpoint written by "
        f"resnet-gui train --checkpoint in it, such as {tmp_path / 'model.pt'}")
    assert train("--resume", tmp_path / "missing.pt") == 1
    assert one_error_line(capsys) == (
        f"resnet-gui: error: --resume {tmp_path / 'missing.pt'} does not exist; give the path "
        "of a checkpoint written by resnet-gui train --checkpoint")


def test_resume_without_checkpoint_keeps_saving_to_the_resumed_file(tmp_path, data_dir,
                                                                     capsys):
    from resnet_gui.engine.checkpoint import load_checkpoint

    checkpoint = tmp_path / "run.pt"
    assert train("fmnist-fast", "--data-dir", data_dir, "--batch-size", "32", "--epochs", "2",
                 "--limit-test", "10", "--max-steps", "1", "--checkpoint", checkpoint) == 0
    assert load_checkpoint(checkpoint)["step"] == 1
    capsys.readouterr()
    assert train("--resume", checkpoint, "--data-dir", data_dir) == 0
    assert load_checkpoint(checkpoint)["step"] == 4  # 2 epochs of 2 steps
    assert capsys.readouterr().err.strip().endswith(f"checkpoint {checkpoint}")
    assert {p.name for p in tmp_path.iterdir()} == {"run.pt", "run.prev.pt"}
    # A write-protected checkpoint is refused before training, not after an epoch's work.
    checkpoint.chmod(0o444)
    before = checkpoint.read_bytes()
    assert train("--resume", checkpoint, "--data-dir", data_dir) == 1
    assert one_error_line(capsys) == (
        f"resnet-gui: error: --checkpoint (by default the --resume file) {checkpoint} is "
        "read-only; make it writable or choose another name")
    assert checkpoint.read_bytes() == before


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path, data_dir, capsys):
    long_name = "a" * 300
    assert main(["summary", long_name]) == 2
    assert "unknown preset" in one_error_line(capsys)
    assert train("fmnist-fast", "--data-dir", data_dir, "--checkpoint",
                 tmp_path / f"{long_name}.pt") == 1
    assert "--checkpoint" in one_error_line(capsys)
    assert main(["export", "resnet20", "--format", "json", "--out",
                 str(tmp_path / f"{long_name}.json")]) == 1
    assert "the file name is longer than the 230 bytes" in one_error_line(capsys)


@pytest.mark.parametrize("padding, side, dataset", [
    ("1000", 28, "fashion-mnist"), ("28", 28, "mnist"), ("32", 32, "cifar10"),
])
def test_a_crop_padding_as_large_as_the_image_is_refused(padding, side, dataset, data_dir,
                                                        capsys):
    assert train("fmnist-fast", "--dataset", dataset, "--data-dir", data_dir,
                 "--crop-padding", padding) == 1
    line = one_error_line(capsys)
    assert line.startswith("resnet-gui: error: training setting 'crop_padding': must be smaller "
                           f"than the {side}-pixel side of the images, got {padding}")


def test_a_crop_padding_as_large_as_a_folders_images_is_refused(tmp_path, capsys):
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for index in range(3):
            Image.new("L", (9, 7), 10 * index).save(tmp_path / name / f"{index}.png")
    # Images are read at the input size (here 7 px, as --resize sets it).
    assert train("fmnist-fast", "--dataset", f"folder:{tmp_path}", "--resize", "7",
                 "--crop-padding", "7") == 1
    assert "7-pixel side of the images, got 7" in one_error_line(capsys)


@pytest.mark.parametrize("option, expected", [
    # An empty path read the current folder as a dataset.
    ("--dataset=folder:", "training setting 'dataset': folder: needs the path of an image "
     "folder after it"),
    # Only the network's input bound named it, as input_size.height.
    ("--resize=5000", "training setting 'resize': must be at most 4096 pixels, got 5000"),
    # torch.device() raised on them where a GPU is present.
    ("--device=cuda:x", "training setting 'device': unknown device 'cuda:x'"),
    ("--device=cuda:-1", "training setting 'device': unknown device 'cuda:-1'"),
])
def test_malformed_dataset_resize_and_device_values_are_refused(option, expected, data_dir,
                                                                capsys):
    assert train("fmnist-fast", "--data-dir", data_dir, option) == 1
    line = one_error_line(capsys)
    assert line.startswith(f"resnet-gui: error: {expected}"), line


def image_folder(root, classes=("cats", "dogs"), count=3, size=(9, 7)):
    from PIL import Image

    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(count):
            Image.new("L", size, 10 * index).save(root / name / f"{index}.png")
    return root


def make_unreadable(folder, monkeypatch):
    """chmod 0, and where that does not bind (root), the same refusal from the OS calls."""
    folder.chmod(0)
    real_scandir, real_listdir = os.scandir, os.listdir

    def guard(real):
        def call(path="."):
            if os.fspath(path) == os.fspath(folder):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path)
        return call

    monkeypatch.setattr(os, "scandir", guard(real_scandir))
    monkeypatch.setattr(os, "listdir", guard(real_listdir))


@pytest.mark.parametrize("where", ["root", "class"])
def test_an_unreadable_image_folder_is_named_not_skipped(where, tmp_path, monkeypatch, capsys):
    root = image_folder(tmp_path / "pets")
    folder = root if where == "root" else root / "cats"
    make_unreadable(folder, monkeypatch)
    try:
        assert train("fmnist-fast", "--dataset", f"folder:{root}") == 1
    finally:
        folder.chmod(0o755)
    assert one_error_line(capsys) == (
        f"resnet-gui: error: cannot read the folder {folder} (Permission denied); check that "
        "it and the folders in it are readable")


def test_an_image_beyond_pils_pixel_limit_is_one_line(tmp_path, monkeypatch, capsys):
    from PIL import Image

    root = image_folder(tmp_path / "pets")
    Image.new("L", (40, 40)).save(root / "dogs" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # 1600 pixels: over twice the limit
    assert train("fmnist-fast", "--dataset", f"folder:{root}") == 1
    line = one_error_line(capsys)
    assert line.startswith(f"resnet-gui: error: cannot read image {root / 'dogs' / 'huge.png'} "
                           "(Image size (1600 pixels) exceeds limit")
    assert line.endswith("; remove or replace it")


def test_a_folder_dataset_that_is_a_file_says_so(tmp_path, capsys):
    (tmp_path / "pets.zip").write_bytes(b"PK")
    assert train("fmnist-fast", "--dataset", f"folder:{tmp_path / 'pets.zip'}") == 1
    assert f"image folder {tmp_path / 'pets.zip'} is a file, not a folder" in one_error_line(capsys)


@pytest.fixture(scope="module")
def saved_checkpoint(data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "run.pt"
    assert train("fmnist-fast", "--data-dir", data_dir, "--batch-size", "32", "--epochs", "2",
                 "--limit-test", "10", "--max-steps", "1", "--checkpoint", path) == 0
    return path


def _wider(architecture: str) -> str:
    data = json.loads(architecture)
    data["stages"][0]["width"] *= 2
    return json.dumps(data)


@pytest.mark.parametrize("change, problem", [
    (lambda saved: saved.pop("step"), "is damaged: its training state cannot be restored "
     "(KeyError)"),
    (lambda saved: saved.update(step=-5), "(ValueError)"),
    (lambda saved: saved.update(model={"conv1.weight": 5}), "(RuntimeError)"),
    (lambda saved: saved.update(optimizer={"state": {}}), "(KeyError)"),
    # Weights that do not fit the checkpoint's own architecture.
    (lambda saved: saved.update(architecture=_wider(saved["architecture"])), "(RuntimeError)"),
    (lambda saved: saved.update(version="1"), "is damaged: its version is '1', not a whole "
     "number"),
    # An edit that leaves the checksum as it was.
    (lambda saved: saved.update(step=7, checksum=saved["checksum"]), "is damaged: its contents "
     "do not match the checksum saved with them"),
])
def test_a_damaged_checkpoint_is_one_line_and_left_as_it_was(change, problem, saved_checkpoint,
                                                           data_dir, tmp_path, capsys):
    import torch

    from resnet_gui.engine.checkpoint import state_digest

    saved = torch.load(saved_checkpoint, weights_only=True)
    checksum = saved["checksum"]
    change(saved)
    if saved.get("checksum") == checksum and "stale" not in problem and "checksum" not in problem:
        # Edited consistently (as another program might write it): the checksum passes and
        # the state's own checks must catch the damage.
        saved["checksum"] = state_digest(saved)
    path = tmp_path / "run.pt"
    torch.save(saved, path)
    before = path.read_bytes()
    capsys.readouterr()
    assert train("--resume", path, "--data-dir", data_dir) == 1
    line = one_error_line(capsys)
    assert line.startswith(f"resnet-gui: error: {path} is damaged") and problem in line, line
    assert line.endswith("; start a new run")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["run.pt"]


@pytest.mark.parametrize("option, fix", [("--batch-size=1", "use a batch size of 2 or more"),
                                         ("--limit-train=1", "give at least 2 training images")])
def test_a_batch_of_one_image_with_batch_norm_on_1x1_maps_is_refused(option, fix, data_dir,
                                                                     tmp_path, capsys):
    # resnet18 takes 28x28 images down to 1x1 in layer4; PyTorch raised a ValueError mid-step.
    assert train("resnet18", "--data-dir", data_dir, option, "--max-steps", "1", "--resize", "28",
                 "--checkpoint", tmp_path / "run.pt") == 1
    assert one_error_line(capsys) == (
        "resnet-gui: error: a batch of one image cannot train layer4.0.bn1: batch norm needs "
        f"two values per channel and its maps are 1x1; {fix}")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def torch_threads():
    import torch

    previous = torch.get_num_threads()
    yield torch
    torch.set_num_threads(previous)


def _with_threads(saved_checkpoint, path, threads):
    """A copy of the saved checkpoint that records ``threads`` (as the trainer saves it)."""
    import torch

    from resnet_gui.engine.checkpoint import state_digest

    saved = torch.load(saved_checkpoint, weights_only=True)
    saved["threads"] = threads
    saved["checksum"] = state_digest(saved)
    torch.save(saved, path)
    return path


def test_resume_reuses_the_thread_count_the_checkpoint_records(saved_checkpoint, data_dir,
                                                                tmp_path, capsys, torch_threads):
    path = _with_threads(saved_checkpoint, tmp_path / "run.pt", 1)
    torch_threads.set_num_threads(2)
    assert train("--resume", path, "--data-dir", data_dir, "--max-steps", "2") == 0
    assert "at epoch 1, step 1, on 1 thread, as the run used (--threads overrides)" in (
        capsys.readouterr().err)
    assert torch_threads.get_num_threads() == 1


def test_resume_says_when_threads_break_bit_exactness(saved_checkpoint, data_dir, tmp_path,
                                                       capsys, torch_threads):
    from argparse import Namespace

    from resnet_gui.commands.train import choose_threads

    cores = os.cpu_count() or 1
    assert choose_threads(Namespace(threads=1), {"threads": 2}) == (
        "on 1 thread where the run used 2, so it will not repeat the uninterrupted run bit "
        "for bit")
    assert choose_threads(Namespace(threads=None), {"threads": cores + 1}).endswith(
        f"the run used {cores + 1}, more than this machine's {cores} cores, so it will not "
        "repeat the uninterrupted run bit for bit")
    assert "does not record how many the run used" in choose_threads(Namespace(threads=None),
                                                                      {})
    assert choose_threads(Namespace(threads=None), {"threads": "2"}).startswith(
        f"on {torch_threads.get_num_threads()} thread")  # not a count: ignored
