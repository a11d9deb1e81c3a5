"""What a run's plan does at each moment: the optimizer, its parameter groups and the learning
rate as a function of progress in epochs.

The plan is a function of progress, not of a step count, so it survives a smaller batch after
running out of GPU memory, and a resume, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.weights import parameter_groups

ONECYCLE_START = 1 / 25  # one-cycle starts and ends at these fractions of the peak rate
ONECYCLE_END = 1 / 2500
WARMUP_START = 0.01


def initialise(model: nn.Module, init: str, zero_init_last: bool) -> None:
    """Xavier-uniform weights (the chapter's ``init_weights``) or the builder's Kaiming."""
    if init == "xavier":
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
    if zero_init_last and hasattr(model, "zero_init_last"):
        model.zero_init_last()


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD or AdamW over :func:`~resnet_gui.engine.weights.parameter_groups`: weight decay on
    weights only, and pretrained layers at their own rate."""
    groups = parameter_groups(model, recipe)
    lr = recipe.lr or 0.0  # a placeholder until the plan sets each step's rate
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The plan's rate, times each group's ``lr_scale`` (pretrained layers learn slower)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


@dataclass(frozen=True)
class LearningRatePlan:
    """The learning rate as a function of progress in epochs (0 .. epochs)."""

    recipe: Recipe

    def factor(self, progress: float) -> float:
        r = self.recipe
        epochs = float(r.epochs)
        progress = min(max(progress, 0.0), epochs)
        if r.schedule == "onecycle":
            return _one_cycle(progress, epochs, r.warmup_epochs)
        warm = min(r.warmup_epochs, epochs)
        if progress < warm:
            return WARMUP_START + (1 - WARMUP_START) * progress / warm
        if r.schedule == "constant":
            return 1.0
        if r.schedule == "step":
            return r.step_gamma ** int(progress // r.step_every)
        t = (progress - warm) / max(epochs - warm, 1e-12)  # cosine
        return 0.5 * (1 + math.cos(math.pi * t))

    def lr(self, progress: float) -> float:
        return self.recipe.lr * self.factor(progress)

    def state_dict(self, progress: float) -> dict[str, Any]:
        return {"schedule": self.recipe.schedule, "base_lr": float(self.recipe.lr),
                "progress": float(progress)}


def _one_cycle(progress: float, epochs: float, warmup_epochs: float) -> float:
    """Cosine up to the peak (at the warm-up's end, else a quarter of the run), cosine down."""
    peak = min(warmup_epochs if warmup_epochs > 0 else 0.25 * epochs, epochs)
    if progress < peak:
        t = progress / peak
        return ONECYCLE_START + (1 - ONECYCLE_START) * 0.5 * (1 - math.cos(math.pi * t))
    t = (progress - peak) / max(epochs - peak, 1e-12)
    return ONECYCLE_END + (1 - ONECYCLE_END) * 0.5 * (1 + math.cos(math.pi * t))


def steps_in_epoch(num_examples: int, batch_size: int, smallest_last: int = 2) -> int:
    """Batches per epoch; a last batch of fewer than ``smallest_last`` examples is dropped
    (batch norm cannot train on one example; several processes need one each)."""
    full, rest = divmod(num_examples, batch_size)
    return full + (1 if rest >= smallest_last or (rest > 0 and full == 0) else 0)
