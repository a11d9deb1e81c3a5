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
    """SGD or AdamW; weight decay applies to weights, not to biases and batch-norm scales."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


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
