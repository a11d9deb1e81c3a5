"""The loss landscape around a trained network (Li, Xu, Taylor, Studer and Goldstein 2018).

Loss and accuracy at theta* + a*delta + b*eta over a grid of (a, b), where delta and eta are
random Gaussian directions normalised filter by filter to the weights' filter norms
(d <- d / ||d|| * ||theta|| for each output filter of a convolution and each row of the
classifier), with the directions of biases and batch-norm parameters set to zero, as the
reference code does (github.com/tomgoldstein/loss-landscape, ``ignore='biasbn'``). The network
is evaluated in eval mode, so batch norm uses the running statistics of theta*.

Directions are drawn per parameter from a generator seeded by (seed, parameter name): a
residual network and its plain twin share the names of all their layers, so both are probed
along the same random draws, each scaled to its own filters.

Speed: one copy of the network with batch norm folded into the convolutions is evaluated at
every point, its weights overwritten in place (the folded weight of theta* + d is the folded
weight of theta* plus d times the batch norm's scale); the images are prepared once.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from resnet_gui.engine.data import derive_seed
from resnet_gui.engine.device import Placement
from resnet_gui.engine.inference import EvalSet, inference_copy
from resnet_gui.engine.lab.common import EvaluationResult, ProgressCallback, Reporter
from resnet_gui.errors import UserError

DIRECTION_PURPOSE = 7  # derive_seed's purpose for landscape directions (the data uses 1, 2)
MAX_GRID = 201


@dataclass(frozen=True)
class GridPoint:
    """Sent with each progress report of the grid, so that a view can fill it in live."""

    row: int  # index into alpha
    column: int  # index into beta
    loss: float
    accuracy: float


@dataclass(frozen=True)
class SlicePoint:
    index: int  # into slice_alpha
    loss: float
    accuracy: float


@dataclass
class LandscapeResult(EvaluationResult):
    network: str
    alpha: list[float]  # the grid's coordinates along delta ...
    beta: list[float]  # ... and along eta
    loss: list[list[float]]  # loss[i][j] at (alpha[i], beta[j]); NaN where not evaluated
    accuracy: list[list[float]]
    slice_alpha: list[float]  # the 1-D slice along delta (beta = 0), twice as fine
    slice_loss: list[float]
    slice_accuracy: list[float]
    centre_loss: float  # the grid's centre, theta* itself
    centre_accuracy: float
    checkpoint_loss: float  # the unmodified network on the same images, fp32, no folding
    checkpoint_accuracy: float
    images: int
    span: float
    seed: int
    directions: str = field(default="random Gaussian, filter-normalised, biases and batch "
                                    "norm zero")


def check_grid(grid: int, span: float) -> None:
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 3 or grid % 2 == 0:
        raise UserError(f"the grid must be an odd whole number of at least 3 points a side, so "
                        f"that the trained network is its centre; got {grid!r} (21 is usual)")
    if grid > MAX_GRID:
        raise UserError(f"a grid of {grid}x{grid} points would take {grid * grid:,} "
                        f"evaluations; use at most {MAX_GRID} a side")
    if not (isinstance(span, (int, float)) and not isinstance(span, bool)
            and np.isfinite(span) and span > 0):
        raise UserError(f"the span must be a number above 0 (the grid covers -span..span "
                        f"along each direction), got {span!r}; 1 is usual")


def parameter_seed(seed: int, name: str, direction: int) -> int:
    return derive_seed(seed, DIRECTION_PURPOSE + direction, zlib.crc32(name.encode("utf-8")))


def filter_normalised_direction(model: nn.Module, seed: int, direction: int
                                ) -> dict[str, torch.Tensor]:
    """A random direction for every weight of two or more dimensions (convolutions and the
    classifier), each filter (output channel or row) scaled to the norm of the same filter
    of the weights. Biases and batch norm have no entry: their direction is zero."""
    directions = {}
    for name, weight in model.named_parameters():
        if weight.ndim <= 1:
            continue
        generator = torch.Generator().manual_seed(parameter_seed(seed, name, direction))
        values = torch.randn(weight.shape, generator=generator, dtype=torch.float32)
        weight = weight.detach().float().cpu()
        filters = values.reshape(values.shape[0], -1)
        scale = weight.reshape(weight.shape[0], -1).norm(dim=1) / (filters.norm(dim=1) + 1e-10)
        directions[name] = (filters * scale[:, None]).reshape(weight.shape)
    return directions


class PerturbedNetwork:
    """An evaluation copy of a network whose weights are set to theta* + a*delta + b*eta in
    place; batch norm stays folded into the convolutions."""

    def __init__(self, model: nn.Module, evalset: EvalSet, seed: int) -> None:
        self.evalset = evalset
        self.copy, folded = inference_copy(model, evalset.placement)
        scales = {f"{item.name}.weight": item.scale for item in folded}
        delta = filter_normalised_direction(model, seed, 0)
        eta = filter_normalised_direction(model, seed, 1)
        params = dict(self.copy.named_parameters())
        # (weight of the copy, its value at theta*, delta, eta), in the copy's layout.
        self.moving: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for name, d in delta.items():
            target = params[name]
            scale = scales.get(name)
            e = eta[name]
            if scale is not None:
                d, e = d * scale, e * scale
            as_target = dict(device=target.device, dtype=target.dtype)
            self.moving.append((target, target.detach().clone(),
                                d.to(**as_target).contiguous(memory_format=_layout(target)),
                                e.to(**as_target).contiguous(memory_format=_layout(target))))

    @torch.no_grad()
    def move_to(self, a: float, b: float) -> None:
        for target, base, d, e in self.moving:
            torch.add(base, d, alpha=a, out=target)
            if b != 0.0:
                target.add_(e, alpha=b)

    def evaluate(self, a: float, b: float) -> tuple[float, float]:
        self.move_to(a, b)
        return self.evalset.evaluate(self.copy)


def _layout(tensor: torch.Tensor) -> torch.memory_format:
    if tensor.ndim == 4 and tensor.is_contiguous(memory_format=torch.channels_last) and not (
            tensor.is_contiguous()):
        return torch.channels_last
    return torch.contiguous_format


def exact_evaluation(model: nn.Module, evalset: EvalSet) -> tuple[float, float]:
    """Loss and accuracy of ``model`` itself on the images: fp32, batch norm not folded."""
    exact = replace(evalset, placement=Placement(evalset.placement.device, "fp32"))
    return exact.evaluate(inference_copy(model, exact.placement, fold=False)[0])


def run_landscape(model: nn.Module, evalset: EvalSet, grid: int = 21, span: float = 1.0,
                  seed: int = 0, network: str = "network",
                  progress: ProgressCallback | None = None,
                  stop: threading.Event | None = None) -> LandscapeResult:
    """Loss and accuracy of ``model`` over a ``grid`` x ``grid`` plane spanning -span..span
    along two seeded, filter-normalised random directions, plus a 1-D slice along the first.
    ``model`` is not changed."""
    check_grid(grid, span)
    coords = np.linspace(-span, span, grid)
    fine = np.linspace(-span, span, 2 * grid - 1)
    reporter = Reporter("landscape", 1 + grid * grid + grid - 1, progress, stop)
    reporter.report(f"evaluating {network} as trained on {evalset.count:,} images")
    checkpoint_loss, checkpoint_accuracy = exact_evaluation(model, evalset)
    surface = PerturbedNetwork(model, evalset, seed)
    loss = np.full((grid, grid), np.nan)
    accuracy = np.full((grid, grid), np.nan)
    slice_loss = np.full(fine.shape, np.nan)
    slice_accuracy = np.full(fine.shape, np.nan)
    reporter.report("probing the surface", advance=1)
    evaluations = 1
    # The centre first (the stopped result always holds it), then row by row.
    centre = grid // 2
    order = [(centre, centre)] + [(i, j) for i in range(grid) for j in range(grid)
                                  if (i, j) != (centre, centre)]
    for i, j in order:
        if reporter.stopped:
            break
        loss[i, j], accuracy[i, j] = surface.evaluate(float(coords[i]), float(coords[j]))
        evaluations += 1
        reporter.report(f"point ({coords[i]:+.2f}, {coords[j]:+.2f}): loss {loss[i, j]:.3g}",
                        advance=1, event=GridPoint(i, j, loss[i, j], accuracy[i, j]))
    slice_loss[::2], slice_accuracy[::2] = loss[:, centre], accuracy[:, centre]
    for index in range(1, len(fine), 2):
        if reporter.stopped:
            break
        slice_loss[index], slice_accuracy[index] = surface.evaluate(float(fine[index]), 0.0)
        evaluations += 1
        reporter.report(f"slice at {fine[index]:+.2f}: loss {slice_loss[index]:.3g}", advance=1,
                        event=SlicePoint(index, slice_loss[index], slice_accuracy[index]))
    seconds, cpu_seconds = reporter.seconds()
    return LandscapeResult(
        network=network, alpha=coords.tolist(), beta=coords.tolist(), loss=loss.tolist(),
        accuracy=accuracy.tolist(), slice_alpha=fine.tolist(), slice_loss=slice_loss.tolist(),
        slice_accuracy=slice_accuracy.tolist(), centre_loss=float(loss[centre, centre]),
        centre_accuracy=float(accuracy[centre, centre]), checkpoint_loss=checkpoint_loss,
        checkpoint_accuracy=checkpoint_accuracy, images=evalset.count, span=float(span),
        seed=seed, device=str(evalset.placement.device),
        precision=evalset.placement.precision, evaluations=evaluations, seconds=seconds,
        cpu_seconds=cpu_seconds, stopped=reporter.stopped)
