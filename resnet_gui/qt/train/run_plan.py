"""What the Train tab says about the next run before Start: how many images it will see,
at what size, and what the "auto" settings will be. Plain functions, no widgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resnet_gui.arch.datasets import dataset_for
from resnet_gui.arch.recipe import Recipe


@dataclass(frozen=True)
class RunCounts:
    """Known before Start: from the loaded data, else from the dataset table (None: a folder
    not read yet)."""

    num_train: int | None
    num_test: int | None
    stored_size: tuple[int, int] | None  # the images' own size, before any resize


def known_counts(recipe: Recipe, data: Any = None) -> RunCounts:
    """The run's image counts and stored size; ``data`` is the loaded DataBundle of this
    recipe's dataset and subset, if any."""
    if data is not None:
        return RunCounts(data.num_train, data.num_test, tuple(data.image_size))
    dataset = dataset_for(recipe.dataset)
    if dataset is None:  # an image folder: counted when it is read
        return RunCounts(recipe.limit_train, recipe.limit_test, None)
    return RunCounts(min(recipe.limit_train or dataset.train_images, dataset.train_images),
                     min(recipe.limit_test or dataset.test_images, dataset.test_images),
                     (dataset.image_size, dataset.image_size))


def _side(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def image_size_text(stored: tuple[int, int] | None, input_size: tuple[int, int]) -> str:
    """"28×28 images resized to 96×96": the dataset's size and the network's input."""
    if input_size[0] != input_size[1]:  # a non-square input is not resized to (the engine's rule)
        shown = f"{_side(stored)} images" if stored else "Images"
        return f"{shown} as stored: the network's {_side(input_size)} input is not square"
    if stored is None:
        return f"Images resized to {_side(input_size)}, the network's input"
    if tuple(stored) == tuple(input_size):
        return f"{_side(stored)} images, the network's input size"
    return f"{_side(stored)} images resized to {_side(input_size)}, the network's input"


def epochs_text(seconds_per_epoch: float, epochs: int, describe: str) -> str:
    """"Estimated about 2 min per epoch on cpu (bf16), 8 min for 4 epochs"."""
    from resnet_gui.engine.estimate import format_duration

    text = f"Estimated {describe}"
    if epochs > 1:
        text += f", {format_duration(seconds_per_epoch * epochs)} for {epochs} epochs"
    return text


SLOW_ADVICE = ("Slow: a GPU (Device), a smaller input size (the Build tab's Input), a smaller "
               "network or fewer training images make it faster.")
