"""Precise batch norm: the running statistics recomputed over training batches before an
evaluation.

Batch norm keeps an exponential average (momentum 0.1) of statistics from weights that no
longer exist. Early in a run, or in a short one, the weights move faster than the average
follows, and the test-time network normalises with the wrong numbers: test loss explodes while
training looks fine. Averaging the statistics of the current weights over a few thousand
training images fixes that (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; fvcore's
``update_bn_stats``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

PRECISE_BN_IMAGES = 2048  # enough for stable statistics, a fraction of an epoch's cost


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_statistics(model: nn.Module, batches: Iterator[torch.Tensor],
                         forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> int:
    """Replace every batch norm's running mean and variance by their average over
    ``batches`` (inputs ready for the network); the images seen. The model's train/eval mode,
    the global RNG (dropout draws from it) and the batch-norm momenta are left as they were."""
    norms = batch_norms(model)
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    seen = 0
    with torch.random.fork_rng(devices=[]):
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches below
        model.train()
        try:
            for inputs in batches:
                (forward or model)(inputs)
                seen += len(inputs)
        finally:
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum
            model.train(was_training)
    return seen


def training_batches(images: torch.Tensor, order: torch.Tensor,
                     make: Callable[[torch.Tensor], torch.Tensor], batch_size: int,
                     count: int = PRECISE_BN_IMAGES) -> Iterator[torch.Tensor]:
    """The images at the first ``count`` indices of ``order`` (a shuffled order: a folder's
    images are stored class by class) as network inputs, in batches of ``batch_size``; a lone
    last image is left out (batch norm needs two)."""
    index = order[:count].to(images.device)
    for start in range(0, len(index), batch_size):
        chunk = index[start:start + batch_size]
        if len(chunk) >= 2:
            yield make(images[chunk])
