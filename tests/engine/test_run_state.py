"""The run's state saves and restores as a whole; a damaged field is "is damaged", never an
IndexError mid-run or a run that silently starts somewhere else."""

from __future__ import annotations

import math

import pytest
import torch

from resnet_gui.engine.checkpoint import load_checkpoint, save_checkpoint
from resnet_gui.engine.run_state import RunState
from resnet_gui.engine.trainer import Trainer
from resnet_gui.errors import CheckpointError
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401


@pytest.fixture(scope="module")
def mid_epoch(tmp_path_factory):
    """A checkpoint saved by Stop in the middle of the second epoch (90 images, batch 16)."""
    path = tmp_path_factory.mktemp("state") / "run.pt"
    Trainer(TINY, recipe(max_steps=8), data=tiny_data(), checkpoint_path=path).run()
    return load_checkpoint(path)


def test_the_state_round_trips_through_a_checkpoint(mid_epoch):
    state = RunState.from_checkpoint(mid_epoch, torch.device("cpu"), recipe(), 90)
    again = state.to_checkpoint()
    for key in ("epoch", "position", "batch_in_epoch", "step", "batch_size"):
        assert again[key] == mid_epoch[key], key
    assert torch.equal(again["data_order"], mid_epoch["data_order"])
    assert again["epoch_sums"]["seen"] == mid_epoch["epoch_sums"]["seen"] == 32
    assert again["threads"] == torch.get_num_threads()
    assert 0.0 <= mid_epoch["last_train_accuracy"] <= 1.0  # the first epoch's result is kept
    assert mid_epoch["class_names"] == ["low", "mid", "high"]


@pytest.mark.parametrize("field, value", [
    ("epoch", 10**20),
    ("epoch", -1),
    ("position", 91),
    ("step", "12"),
    ("batch_size", 0),
    ("data_order", torch.arange(89)),
    ("data_order", torch.full((90,), 7)),
    ("data_order", None),  # mid-epoch without its order
    ("last_test_accuracy", 3.5),
    ("last_train_loss", math.inf),
])
def test_a_damaged_state_field_is_refused_in_one_sentence(tmp_path, mid_epoch, field, value):
    path = tmp_path / "damaged.pt"
    save_checkpoint(path, {**mid_epoch, field: value})
    trainer = Trainer(TINY, recipe(max_steps=12), data=tiny_data(), resume_from=path)
    with pytest.raises(CheckpointError, match="is damaged: its training state cannot be "
                                              "restored"):
        trainer.run()


def test_an_older_checkpoint_without_the_new_fields_still_resumes(tmp_path, mid_epoch):
    path = tmp_path / "old.pt"
    old = {key: value for key, value in mid_epoch.items()
           if key not in ("last_train_loss", "last_train_accuracy", "threads", "class_names")}
    save_checkpoint(path, old)
    end = Trainer(TINY, recipe(), data=tiny_data(), resume_from=path).run()
    assert end.reason == "completed" and end.epoch == 3
