"""What every lab experiment shares: progress reports, the stop event, results as JSON, and
loading a trained checkpoint with the images it was tested on.

An experiment is a function ``run_X(..., progress=callback, stop=event) -> XResult``: it calls
``progress`` with a frozen :class:`Progress` (from its own thread; a Qt worker re-emits it as
a signal), checks ``stop`` between evaluations or training steps, and when stopped returns
what it has measured so far with ``stopped=True``. Results are plain dataclasses of numbers,
strings and lists; ``to_dict()`` is JSON-ready (non-finite numbers become ``None``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe
from resnet_gui.arch.serialize import atomic_write_bytes
from resnet_gui.errors import CheckpointError, UserError


@dataclass(frozen=True)
class Progress:
    """One step of an experiment: ``done`` of ``total`` units (training steps for the
    degradation experiment, evaluations for the others)."""

    experiment: str  # "degradation", "lesion", "landscape"
    done: int
    total: int
    message: str  # what is being done now, for a status line
    run: str | None = None  # degradation: the network being trained ("plain56")
    # What was just measured, for a live view (frozen dataclasses, no tensors): the trainer's
    # events of ``run`` (degradation), a GridPoint or SlicePoint (landscape), a BlockLesion,
    # DeleteK or Reordering (lesion); None for a report of progress only.
    event: Any = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


ProgressCallback = Callable[[Progress], None]
REPORTS_PER_SECOND = 30  # like the trainer's events: a view can follow without a backlog


class Reporter:
    """Counts work done against a plan, reports it, and answers whether to stop."""

    def __init__(self, experiment: str, total: int, callback: ProgressCallback | None,
                 stop: threading.Event | None) -> None:
        self.experiment, self.total, self.done = experiment, max(0, int(total)), 0
        self.callback = callback
        self.stop = stop if stop is not None else threading.Event()
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        self.last_report = float("-inf")

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def report(self, message: str, advance: int = 0, **extra: Any) -> None:
        """Count ``advance`` units done and tell the callback. Reports without an event come
        at most REPORTS_PER_SECOND times a second (and always for the last unit)."""
        self.done = min(self.total, self.done + advance) if self.total else self.done + advance
        if self.callback is None:
            return
        now = time.perf_counter()
        if (extra.get("event") is None and self.done < self.total
                and now - self.last_report < 1.0 / REPORTS_PER_SECOND):
            return
        self.last_report = now
        self.callback(Progress(self.experiment, self.done, self.total, message, **extra))

    def seconds(self) -> tuple[float, float]:
        """Wall-clock and CPU seconds (all threads of this process) since the start."""
        return time.perf_counter() - self.started, time.process_time() - self.cpu_started


def json_ready(value: Any) -> Any:
    """``value`` with dataclasses as dicts, tuples as lists, non-finite floats as None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: json_ready(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy and torch values
        return json_ready(value.tolist())
    return value


class LabResult:
    """Mixin of the result dataclasses: JSON out."""

    def to_dict(self) -> dict[str, Any]:
        return json_ready(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, indent=1)

    def save(self, path: str | os.PathLike) -> None:
        """Write the JSON atomically (a crash never leaves half a file)."""
        atomic_write_bytes(path, (self.to_json() + "\n").encode("utf-8"))


@dataclass(kw_only=True)
class EvaluationResult(LabResult):
    """What every experiment on a trained network records about how it ran."""

    device: str = "cpu"
    precision: str = "fp32"
    evaluations: int = 0  # passes over the test images
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # all threads of the process
    stopped: bool = False  # ended early by the stop event: the rest is missing (NaN)


# -- a trained network and its test images -----------------------------------------------------


@dataclass
class TrainedNetwork:
    """A checkpoint's network (weights loaded, on the CPU) and the recipe it was trained with."""

    path: str
    arch: Architecture
    recipe: Recipe
    model: Any  # resnet_gui.engine.model.ResNet
    epoch: int
    step: int


def load_trained(path: str | os.PathLike) -> TrainedNetwork:
    """The network saved in a checkpoint written by ``resnet-gui train --checkpoint``; a
    missing, damaged or foreign file is a :class:`CheckpointError` naming it."""
    from resnet_gui.engine.checkpoint import checkpoint_architecture, load_checkpoint, load_weights
    from resnet_gui.engine.model import build_model

    checkpoint = load_checkpoint(path)
    arch = checkpoint_architecture(checkpoint, str(path))
    try:
        recipe = Recipe.from_dict(checkpoint.get("recipe"))
    except (TypeError, UserError):
        raise CheckpointError(f"{path} holds no readable training recipe, so its test images "
                              "cannot be prepared as in training; use a checkpoint written by "
                              "resnet-gui train") from None
    model = build_model(arch)
    load_weights(model, path, checkpoint)
    model.eval()
    return TrainedNetwork(str(path), arch, recipe, model, int(checkpoint.get("epoch", 0) or 0),
                          int(checkpoint.get("step", 0) or 0))


def training_data_of(trained: TrainedNetwork, data_dir: str | None = None):
    """The dataset the network was trained on, normalised as in its training run (the same
    training subset gives the same statistics); ``data_dir`` overrides where it lives."""
    from resnet_gui.engine.data import load_data

    recipe = trained.recipe.replace(limit_test=None)
    if data_dir:
        recipe = recipe.replace(data_dir=str(Path(data_dir)))
    bundle = load_data(recipe)
    arch = trained.arch
    if bundle.num_classes != arch.num_classes or bundle.channels != arch.in_channels:
        raise UserError(
            f"{trained.path} predicts {trained.arch.num_classes} classes from "
            f"{trained.arch.in_channels}-channel images, but {bundle.name} has "
            f"{bundle.num_classes} classes of {bundle.channels}-channel images; give the data "
            "it was trained on with --data-dir")
    return bundle


def prepare_checkpoint(path: str | os.PathLike, data_dir: str | None = None,
                       images: int | None = None, device: str = "auto",
                       precision: str = "auto", seed: int = 0):
    """A checkpoint's network and ``images`` class-balanced test images of its dataset
    (all when None or more than there are), prepared once for many evaluations:
    ``(TrainedNetwork, EvalSet)``, ready for :func:`run_lesion` and :func:`run_landscape`."""
    from resnet_gui.engine.device import placement_for
    from resnet_gui.engine.inference import EvalSet

    if images is not None and (isinstance(images, bool) or not isinstance(images, int)
                               or images < 1):
        raise UserError(f"the number of test images must be a whole number >= 1, got {images!r}")
    trained = load_trained(path)
    bundle = training_data_of(trained, data_dir)
    placement = placement_for(device, precision)
    count = min(images, bundle.num_test) if images else None
    evalset = EvalSet.from_bundle(bundle, trained.recipe, placement, count, seed=seed,
                                  input_size=trained.arch.input_size)
    return trained, evalset
