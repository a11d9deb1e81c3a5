"""A small residual network trained for a few seconds on tiny generated data, for the lab's
tests: it learns (so deleting blocks has something to break), and its blocks include identity
blocks and a downsampling block with a projection shortcut."""

from __future__ import annotations

import torch

from resnet_gui.arch.model import Architecture, Head, Shortcut, Stage, Stem
from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.device import Placement
from resnet_gui.engine.inference import EvalSet
from resnet_gui.engine.trainer import Trainer
from tests.engine.test_trainer import tiny_data

LAB_TINY = Architecture(
    stages=(Stage(blocks=("basic", "basic", "basic"), width=8, stride=1),
            Stage(blocks=("basic", "basic", "basic"), width=12, stride=2,
                  shortcut=Shortcut(kind="projection", batch_norm=True))),
    stem=Stem(kind="single", width=8, kernel=3, stride=1, max_pool=False),
    head=Head(pool="avg"),
    in_channels=1, input_size=(10, 10), num_classes=3, name="lab-tiny",
)
RECIPE = Recipe(epochs=4, batch_size=16, lr=0.05, momentum=0.9, schedule="cosine",
                augment=False, seed=1, device="cpu", precision="fp32")


def train_tiny(arch: Architecture = LAB_TINY):
    """(trained model, data, recipe); the model is in eval mode on the CPU."""
    data = tiny_data(train=120, test=60)
    trainer = Trainer(arch, RECIPE, data=data)
    end = trainer.run()
    assert end.reason == "completed"
    return trainer.model.eval(), data, RECIPE


def evalset_of(data, precision: str = "fp32", count: int | None = None) -> EvalSet:
    return EvalSet.from_bundle(data, RECIPE, Placement(torch.device("cpu"), precision), count)
