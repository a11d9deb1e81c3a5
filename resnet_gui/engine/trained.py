"""A trained network outside the trainer: a checkpoint's architecture, weights, preprocessing
and class names, for ``predict``, ``export``, ``summary`` and ``grow``.

The trainer records in every checkpoint how images became the network's input (the dataset's
stored image size and channels, the resize, the per-channel mean and standard deviation) and
the class names, so that a network leaving the app sees an image exactly as training did.
Checkpoints written before that record existed get it from their dataset, read again.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.numbers import finite_or_none
from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.checkpoint import checkpoint_architecture, load_checkpoint, load_weights
from resnet_gui.engine.data import (
    BatchMaker,
    DataBundle,
    load_data,
    read_image,
    resize_and_normalise,
)
from resnet_gui.engine.inspect import eval_mode
from resnet_gui.engine.model import ResNet, build_model
from resnet_gui.engine.runs import CHECKPOINT_FILE, RUN_FILE, Run, RunLog, RunStore
from resnet_gui.engine.telemetry import TelemetryHistory
from resnet_gui.errors import CheckpointError, DataError, UserError

PREPROCESSING_KEY = "preprocessing"


@dataclass(frozen=True)
class Preprocessing:
    """How images become the network's input, as training fed it (without augmentation)."""

    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of pixels scaled to [0, 1]
    std: tuple[float, ...]
    image_size: tuple[int, int]  # (H, W) of the images as the dataset holds them
    resize: int | None = None  # the network's input side where it differs from image_size
    dataset: str = ""  # "Fashion-MNIST", "folder flowers", ...

    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.resize, self.resize) if self.resize else self.image_size

    @classmethod
    def from_bundle(cls, data: DataBundle, recipe: Recipe) -> "Preprocessing":
        return cls(tuple(data.class_names), tuple(map(float, data.mean)),
                   tuple(map(float, data.std)), data.image_size, recipe.resize, data.name)

    def to_dict(self) -> dict[str, Any]:
        return {"class_names": list(self.class_names), "mean": list(self.mean),
                "std": list(self.std), "image_size": list(self.image_size),
                "resize": self.resize, "dataset": self.dataset}

    @classmethod
    def from_dict(cls, data: Any) -> "Preprocessing":
        """Raises ValueError (or TypeError, KeyError) where the record is damaged."""
        mean, std = tuple(map(float, data["mean"])), tuple(map(float, data["std"]))
        size = tuple(int(side) for side in data["image_size"])
        resize = None if data.get("resize") is None else int(data["resize"])
        names = tuple(str(name) for name in data["class_names"])
        if (not mean or len(std) != len(mean) or len(size) != 2 or min(size) < 1
                or not all(math.isfinite(v) for v in mean + std) or min(std) <= 0
                or (resize is not None and resize < 1) or not names):
            raise ValueError("inconsistent preprocessing record")
        return cls(names, mean, std, size, resize, str(data.get("dataset", "")))

    def batch_maker(self, device: torch.device | str = "cpu") -> BatchMaker:
        """The trainer's test-time preparation of stored uint8 images."""
        return BatchMaker(self.mean, self.std, torch.device(device), self.resize,
                          augment=False, channels_last=False)

    def read(self, path: str | os.PathLike) -> torch.Tensor:
        """An image file as the dataset would hold it: uint8 (1, C, H, W), greyscale or RGB
        as the network expects, at the dataset's image size."""
        if self.channels not in (1, 3):
            raise UserError(f"this network takes {self.channels}-channel images; only "
                            "greyscale (1) and colour (3) networks classify image files")
        array = read_image(Path(path), self.image_size, grey=self.channels == 1,
                           fix="give an image file such as a PNG or JPEG")
        return torch.tensor(array)[None]  # a copy: PIL's pixels are read-only

    def module(self) -> "Preprocess":
        return Preprocess(self)


class Preprocess(nn.Module):
    """uint8 images (N, C, H, W) at the dataset's image size -> the network's input, with the
    very operations the trainer's batches go through (see ``resize_and_normalise``)."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        maker = preprocessing.batch_maker("cpu")
        self.resize = preprocessing.resize
        self.register_buffer("scale", maker._scale.clone())
        self.register_buffer("shift", maker._shift.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return resize_and_normalise(images.float(), self.resize, self.scale, self.shift)


class WithPreprocessing(nn.Module):
    """A trained network that takes the dataset's own images: uint8 in, logits out."""

    def __init__(self, network: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.preprocess = preprocessing.module()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocess(images))


@dataclass(frozen=True)
class Prediction:
    image: str
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image,
                "top": [{"class": name, "probability": p} for name, p in self.top]}


@dataclass
class TrainedNetwork:
    """A checkpoint's network with its weights (on the CPU, in eval mode)."""

    path: Path
    arch: Architecture
    model: ResNet
    preprocessing: Preprocessing
    checkpoint: dict[str, Any]

    @property
    def recipe(self) -> Recipe:
        return checkpoint_recipe(self.checkpoint, self.path)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for uint8 images (N, C, H, W) at the dataset's image size."""
        with torch.no_grad():
            return self.model.eval()(self.preprocessing.batch_maker()(images))

    def classify(self, paths: list[str], top: int = 5) -> list[Prediction]:
        return [Prediction(str(path), top_classes(self.model, self.preprocessing,
                                                  self.preprocessing.read(path), top))
                for path in paths]

    def with_preprocessing(self) -> WithPreprocessing:
        return WithPreprocessing(self.model, self.preprocessing).eval()


def top_classes(model: nn.Module, preprocessing: Preprocessing, images: torch.Tensor,
                top: int = 5) -> tuple[tuple[str, float], ...]:
    """The ``top`` most probable classes, with their probabilities, of one uint8 image
    (1, C, H, W) at the dataset's image size, prepared as training prepared its test images:
    what ``predict`` prints and the Inspect tab shows for an image file."""
    names = preprocessing.class_names
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    with torch.no_grad(), eval_mode(model):
        logits = model(preprocessing.batch_maker(device)(images))
    probabilities = logits.float().softmax(dim=1)[0].cpu()
    values, indices = probabilities.topk(min(max(1, top), len(names)))
    return tuple((names[int(i)], float(v)) for v, i in zip(values, indices))


def checkpoint_recipe(checkpoint: dict[str, Any], path: str | os.PathLike) -> Recipe:
    try:
        return Recipe.from_dict(checkpoint["recipe"])
    except (KeyError, TypeError, UserError):
        raise CheckpointError(f"{path} holds no readable training recipe; it cannot be "
                              "used") from None


def checkpoint_preprocessing(checkpoint: dict[str, Any], path: str | os.PathLike
                             ) -> Preprocessing:
    """The checkpoint's record of its preprocessing; for an older checkpoint without one,
    rebuilt from its dataset (the same statistics training computed)."""
    record = checkpoint.get(PREPROCESSING_KEY)
    if record is not None:
        try:
            return Preprocessing.from_dict(record)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CheckpointError(f"{path} is damaged: its record of the image preprocessing "
                                  "cannot be read; use the previous checkpoint") from None
    recipe = checkpoint_recipe(checkpoint, path)
    try:
        data = load_data(recipe, download=False)
        trained_on = int(checkpoint.get("num_train", data.num_train))
        if data.num_train != trained_on:  # another copy, or the bundled sample
            raise DataError(f"it now has {data.num_train:,} training images, not the "
                            f"{trained_on:,} of the run")
        return Preprocessing.from_bundle(data, recipe)
    except DataError as problem:
        raise CheckpointError(
            f"{path} was written before checkpoints recorded their preprocessing, and its "
            f"dataset {recipe.dataset} cannot be read to rebuild it ({problem}); set "
            "RESNET_GUI_DATA to the folder holding that dataset") from None


def load_trained(path: str | os.PathLike) -> TrainedNetwork:
    """The network a resnet-gui checkpoint holds, ready to classify and export."""
    path = Path(path)
    checkpoint = load_checkpoint(path)
    arch = checkpoint_architecture(checkpoint, str(path))
    preprocessing = checkpoint_preprocessing(checkpoint, path)
    if preprocessing.channels != arch.in_channels or len(preprocessing.class_names) != \
            arch.num_classes:
        raise CheckpointError(f"{path} is damaged: its preprocessing ({preprocessing.channels} "
                              f"channels, {len(preprocessing.class_names)} classes) does not "
                              f"fit its network ({arch.in_channels}, {arch.num_classes}); use "
                              "the previous checkpoint")
    model = build_model(arch)
    load_weights(model, path, checkpoint)
    return TrainedNetwork(path, arch, model.eval(), preprocessing, checkpoint)


def run_of_checkpoint(store: RunStore, trained: TrainedNetwork) -> Run:
    """The stored run this checkpoint belongs to: the run whose own checkpoint it is, or the
    run it was imported as before (same file, same step); else it is imported now as a new
    run with its architecture, recipe, results and the curves the checkpoint carries. The
    checkpoint stays where it is (deleting the run never deletes it)."""
    path = trained.path.resolve()
    if path.name == CHECKPOINT_FILE and path.parent.parent == store.root.resolve() and \
            (path.parent / RUN_FILE).is_file():
        return store.load(path.parent.name)
    checkpoint = trained.checkpoint
    step = _count(checkpoint.get("step"))
    for summary in store.list():
        if summary.checkpoint and Path(summary.checkpoint).resolve() == path and \
                summary.steps == step:
            return store.load(summary.run_id)
    recipe = trained.recipe
    log = RunLog.from_checkpoint(checkpoint.get("curves"), step)
    try:
        log.telemetry = TelemetryHistory.from_checkpoint(checkpoint.get("telemetry"), step)
    except (KeyError, TypeError, ValueError, AttributeError):
        pass  # telemetry is for showing: a damaged record leaves the heatmap empty
    run = store.create(trained.arch, recipe)
    summary = replace(run.summary, created=path.stat().st_mtime, **_results(checkpoint, recipe,
                                                                            log, step, path))
    run = replace(run, summary=summary, log=log)
    store.save(run)
    return run


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _number(value: Any) -> float | None:
    try:
        return finite_or_none(value)
    except (TypeError, ValueError):
        return None


def _results(checkpoint: dict[str, Any], recipe: Recipe, log: RunLog, step: int, path: Path
             ) -> dict[str, Any]:
    """The run-list fields of a checkpoint: how far it got and what it reached."""
    epochs = _count(checkpoint.get("epoch"))
    if epochs >= recipe.epochs:
        status = "completed"
    elif recipe.max_steps and step >= recipe.max_steps:
        status = "max_steps"
    else:
        status = "stopped"
    seconds = [value for value in log.epochs["seconds"] if value is not None]
    speeds = [value for value in log.epochs["examples_per_sec"] if value is not None]
    return {"status": status, "epochs_done": epochs, "steps": step,
            "test_accuracy": _number(checkpoint.get("last_test_accuracy")),
            "train_accuracy": _number(checkpoint.get("last_train_accuracy")),
            "seconds": float(sum(seconds)), "examples_per_sec": speeds[-1] if speeds else None,
            "message": f"opened from {path}", "checkpoint": str(path)}
