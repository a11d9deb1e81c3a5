"""Checkpoints: atomic with the previous one kept, weights_only loadable, and a mismatch
explained in words."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from resnet_gui.engine import checkpoint as checkpoint_module
from resnet_gui.engine.checkpoint import (
    architecture_differences,
    load_checkpoint,
    load_weights,
    previous_path,
    save_checkpoint,
    write_checkpoint_bytes,
)
from resnet_gui.engine.model import build_model
from resnet_gui.engine.trainer import Trainer
from resnet_gui.errors import CheckpointError
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.serialize import dumps
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401


def test_trainer_checkpoint_loads_with_weights_only_and_holds_everything(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(TINY, recipe(epochs=2), data=tiny_data(), checkpoint_path=path).run()
    saved = torch.load(path, weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "step", "rng",
                "data_order", "architecture", "recipe", "position", "batch_size"):
        assert key in saved, key
    assert saved["epoch"] == 2 and saved["step"] == 12 and saved["position"] == 0
    assert saved["recipe"]["epochs"] == 2 and '"name": "tiny"' in saved["architecture"]
    assert isinstance(saved["rng"]["torch"], torch.Tensor)
    # The epoch before is kept beside it.
    previous = torch.load(previous_path(path), weights_only=True)
    assert previous["epoch"] == 1


def test_mid_epoch_checkpoint_holds_the_data_order_and_position(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(TINY, recipe(max_steps=8), data=tiny_data(), checkpoint_path=path).run()
    saved = load_checkpoint(path)
    assert (saved["epoch"], saved["position"], saved["batch_in_epoch"]) == (1, 32, 2)
    assert sorted(saved["data_order"].tolist()) == list(range(90))


def test_an_interrupted_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(3)})

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.os, "fsync", disk_full)
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(3)})
    message = str(caught.value)
    assert "the disk is full" in message and f"previous checkpoint {path} is intact" in message
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temp file left behind


def test_a_crash_between_the_two_renames_still_leaves_a_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"step": 1})
    real_replace = os.replace
    calls = []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the previous is kept, then the process dies before the swap
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "replace", crash_on_second)
    with pytest.raises(CheckpointError, match="is intact"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert load_checkpoint(previous_path(path))["step"] == 1


def test_the_trainer_reports_a_full_disk_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    trainer = Trainer(TINY, recipe(epochs=2), data=tiny_data(), checkpoint_path=path)
    real_write = checkpoint_module.write_checkpoint_bytes
    writes = []

    def full_on_second(target, data):
        writes.append(target)
        if len(writes) == 2:
            raise CheckpointError(f"could not save the checkpoint {target}: the disk is full; "
                                  f"the previous checkpoint {target} is intact")
        real_write(target, data)

    monkeypatch.setattr(checkpoint_module, "write_checkpoint_bytes", full_on_second)
    with pytest.raises(CheckpointError, match="disk is full"):
        trainer.run()
    assert load_checkpoint(path)["epoch"] == 1


def test_damaged_or_foreign_files_are_one_sentence(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(CheckpointError, match="damaged or not a resnet-gui checkpoint"):
        load_checkpoint(damaged)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a resnet-gui checkpoint"):
        load_checkpoint(foreign)


def test_write_creates_the_folder(tmp_path):
    target = tmp_path / "deep" / "er" / "run.pt"
    write_checkpoint_bytes(target, b"x")
    assert target.read_bytes() == b"x"


def test_loading_into_another_architecture_says_what_differs(tmp_path):
    r18 = build_preset("resnet18", in_channels=1, num_classes=10, input_size=32)
    r34 = build_preset("resnet34", in_channels=1, num_classes=10, input_size=32)
    path = tmp_path / "r18.pt"
    model = build_model(r18, device="meta")
    save_checkpoint(path, {"architecture": dumps(r18),
                           "model": {k: torch.zeros(v.shape) for k, v in
                                     model.state_dict().items()}})
    with pytest.raises(CheckpointError) as caught:
        load_weights(build_model(r34), path)
    message = str(caught.value)
    assert "'resnet18'" in message and "'resnet34'" in message
    assert "stage 2 (layer2) has 2 blocks there but 4 here" in message
    assert "stage 3 (layer3) has 2 blocks there but 6 here" in message
    assert "\n" not in message

    cifar = build_preset("resnet18", in_channels=3, num_classes=100, input_size=32)
    differences = architecture_differences(r18, cifar)
    assert differences == ["it takes 1 input channel there but 3 here",
                           "it predicts 10 classes there but 100 here"]


def test_resume_into_another_architecture_is_refused_in_words(tmp_path):
    path = tmp_path / "run.pt"
    data = tiny_data()
    Trainer(TINY, recipe(epochs=1), data=data, checkpoint_path=path).run()
    wider = TINY.with_stage(1, TINY.stages[1].__class__(blocks=("basic",), width=16, stride=2))
    with pytest.raises(CheckpointError, match="stage 2 .layer2. is 12 channels wide there but 16"):
        Trainer(wider, recipe(), data=data, resume_from=path).run()


def test_load_weights_fills_a_model_of_the_same_architecture(tmp_path):
    path = tmp_path / "run.pt"
    trained = Trainer(TINY, recipe(epochs=1), data=tiny_data(), checkpoint_path=path)
    trained.run()
    fresh = build_model(trained.arch)
    load_weights(fresh, path)
    assert all(torch.equal(a, b) for a, b in
               zip(fresh.state_dict().values(), trained.model.state_dict().values()))


def test_checkpoints_and_architecture_files_are_written_alike(tmp_path):
    """One atomic writer: a checkpoint gets the permissions of any file the user saves, and a
    folder that cannot be created is one sentence naming --checkpoint."""
    from resnet_gui.arch.serialize import save_file

    path = tmp_path / "run.pt"
    Trainer(TINY, recipe(epochs=1), data=tiny_data(), checkpoint_path=path).run()
    save_file(TINY, tmp_path / "tiny.json")
    assert (path.stat().st_mode & 0o777) == ((tmp_path / "tiny.json").stat().st_mode & 0o777)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="choose another folder with --checkpoint"):
        write_checkpoint_bytes(blocker / "run.pt", b"data")


def test_a_configured_trainer_builds_its_network_once(monkeypatch):
    from resnet_gui.engine import trainer as trainer_module

    builds = []
    real = trainer_module.build_model
    monkeypatch.setattr(trainer_module, "build_model",
                        lambda arch: builds.append(arch) or real(arch))
    trainer = Trainer(TINY, recipe(epochs=1), data=tiny_data())
    assert builds == []  # configuring allocates nothing
    trainer.run()
    assert len(builds) == 1 and trainer.model.fc.out_features == 3
