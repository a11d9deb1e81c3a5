"""Lesion study of a trained network (Veit, Wilber and Belongie 2016): residual networks
behave like ensembles of relatively shallow paths.

On a trained checkpoint, with no retraining, test accuracy:

- of the intact network;
- with each block's residual branch deleted: a block whose shapes match becomes y = x, a
  downsampling block keeps its shortcut only. A plain block has no shortcut: deleting one
  whose shapes match also gives y = x, and a downsampling plain block is replaced by the
  parameter-free stand-in of He et al.'s option A (subsample, pad channels with zeros);
- with k random blocks deleted, k = 1..n over the n blocks whose shapes match, mean and
  spread over draws;
- with blocks of the same shape swapped within their stage, against Kendall's tau between
  the original and the new order;
- the path-length distribution, Binomial(n, 1/2) over all n blocks, and the gradient each
  path length carries, measured as Veit et al. did (Fig. 6): forward a batch, then in the
  backward pass let the gradient through the branch of k random blocks and through the
  shortcut only of the others, so that it flows along one path of length k.

Deleting and reordering change no weights and rebuild nothing: a deleted block's ``forward``
is replaced on the instance (and restored after), and reordering swaps modules inside the
stage's ``nn.Sequential`` (and swaps them back).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet_gui.engine.inference import EvalSet, inference_copy
from resnet_gui.engine.lab.common import EvaluationResult, ProgressCallback, Reporter
from resnet_gui.engine.model import ResidualBlock, ResNet
from resnet_gui.errors import UserError

GRADIENT_SHARE = 0.9  # the path lengths that carry this share of the gradient are "effective"


@dataclass(frozen=True)
class BlockLesion:
    name: str  # "layer2.0"
    stage: str  # "layer2"
    downsampling: bool  # changes resolution or channels
    accuracy: float  # with this block's branch deleted
    loss: float
    stand_in: bool = False  # a plain downsampling block replaced by subsample-and-pad


@dataclass(frozen=True)
class DeleteK:
    k: int
    mean_accuracy: float
    std: float  # over the draws (population standard deviation)
    accuracies: list[float]  # one per draw


@dataclass(frozen=True)
class Reordering:
    swaps: int  # random swaps of two same-shaped blocks of a stage
    kendall_tau: float  # between the original and the corrupted order of all blocks
    accuracy: float


@dataclass
class PathLengths:
    n: int  # blocks with a shortcut, so 2**n paths
    lengths: list[int]  # 0..n
    paths: list[float]  # how many paths have each length: C(n, k)
    gradient_per_path: list[float]  # mean norm of the gradient along one path of each length
    gradient_total: list[float]  # paths x gradient per path: what each length carries in all
    effective: list[int]  # the shortest range of lengths carrying GRADIENT_SHARE of it
    samples: int  # paths sampled per length
    batch: int  # images per sample


@dataclass
class LesionResult(EvaluationResult):
    network: str
    plain: bool  # no block has a shortcut
    images: int
    draws: int
    seed: int
    chance: float  # 1 / classes
    baseline_accuracy: float
    baseline_loss: float
    blocks: list[BlockLesion]
    delete_k: list[DeleteK]
    reorder: list[Reordering]
    path_lengths: PathLengths | None


# -- deleting and reordering blocks ------------------------------------------------------------


def _last_conv(block: ResidualBlock) -> nn.Conv2d:
    return getattr(block, "conv3", None) or block.conv2


def _stride(block: ResidualBlock) -> int:
    return max(max(m.stride) for m in block.modules() if isinstance(m, nn.Conv2d))


def is_downsampling(block: ResidualBlock) -> bool:
    """True when the block changes its input's shape (resolution or channels)."""
    return _stride(block) > 1 or block.conv1.in_channels != _last_conv(block).out_channels


def subsample_and_pad(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """He et al.'s option A without parameters: every stride-th pixel, channels padded with
    zeros (or cut, when the block narrows)."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra > 0 else x[:, :out_channels]


def branchless_forward(block: ResidualBlock):
    """``block``'s forward with its residual branch deleted: the shortcut alone, through what
    follows the sum. A plain block's stand-in shortcut is subsample-and-pad."""
    if block.has_shortcut:
        return lambda x: block.join(None, _shortcut_of(block, x))
    out_channels, stride = _last_conv(block).out_channels, _stride(block)
    return lambda x: subsample_and_pad(x, out_channels, stride)


def _shortcut_of(block: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    """What ``block``'s shortcut makes of ``x`` (the pre-activated input in a pre-activation
    block, like its ``parts``, without running the branch)."""
    if block.downsample is None:
        return x
    if hasattr(block, "bn1") and block.kind.startswith("preact"):
        return block.downsample(torch.relu(block.bn1(x)))
    return block.downsample(x)


@contextlib.contextmanager
def deleted(blocks: Iterable[ResidualBlock]) -> Iterator[None]:
    """Delete the residual branch of ``blocks`` for the duration of the ``with``."""
    blocks = list(blocks)
    try:
        for block in blocks:
            block.forward = branchless_forward(block)
        yield
    finally:
        for block in blocks:
            block.__dict__.pop("forward", None)


@contextlib.contextmanager
def reordered(model: ResNet, order: dict[str, list[int]]) -> Iterator[None]:
    """Run each stage's blocks in the order given (``{"layer2": [0, 2, 1, ...]}``)."""
    originals = {stage: list(getattr(model, stage)) for stage in order}
    try:
        for stage, positions in order.items():
            sequential = getattr(model, stage)
            for slot, position in enumerate(positions):
                sequential[slot] = originals[stage][position]
        yield
    finally:
        for stage, blocks in originals.items():
            sequential = getattr(model, stage)
            for slot, block in enumerate(blocks):
                sequential[slot] = block


def kendall_tau(order: list[int]) -> float:
    """Kendall's rank correlation between positions 0..n-1 and ``order`` (no ties)."""
    n = len(order)
    if n < 2:
        return 1.0
    values = np.asarray(order)
    signs = np.sign(values[None, :] - values[:, None])[np.triu_indices(n, 1)]
    return float(signs.sum() / (n * (n - 1) / 2))


def swappable(model: ResNet) -> dict[str, list[int]]:
    """Per stage, the positions of blocks that keep their input's shape: any two of them can
    trade places. Stages with fewer than two are left out."""
    found: dict[str, list[int]] = {}
    for stage in model.stage_names:
        positions = [i for i, block in enumerate(getattr(model, stage))
                     if not is_downsampling(block)]
        if len(positions) >= 2:
            found[stage] = positions
    return found


@contextlib.contextmanager
def single_path(blocks: list[ResidualBlock], through_branch: set[int],
                inputs: list[torch.Tensor]) -> Iterator[None]:
    """Let the backward pass through the branch of the blocks in ``through_branch`` and
    through the shortcut only of the others (Veit et al.'s path of one length); the forward
    pass is unchanged. The first block's input, made a leaf, is appended to ``inputs``."""
    def path_forward(index: int, block: ResidualBlock):
        def forward(x: torch.Tensor) -> torch.Tensor:
            if index == 0:
                x = x.detach().requires_grad_(True)
                inputs.append(x)
            branch, shortcut = block.parts(x)
            if shortcut is None:  # a plain block: the only way is through its branch
                return block.join(branch, None)
            if index in through_branch:
                shortcut = shortcut.detach()
            else:
                branch = branch.detach()
            return block.join(branch, shortcut)
        return forward

    try:
        for index, block in enumerate(blocks):
            block.forward = path_forward(index, block)
        yield
    finally:
        for block in blocks:
            block.__dict__.pop("forward", None)


def path_gradient(model: nn.Module, blocks: list[ResidualBlock], through_branch: set[int],
                  images: torch.Tensor, labels: torch.Tensor) -> float:
    """Norm of the loss's gradient at the first block's input along one path."""
    inputs: list[torch.Tensor] = []
    with torch.enable_grad(), single_path(blocks, through_branch, inputs):
        loss = F.cross_entropy(model(images).float(), labels)
        (gradient,) = torch.autograd.grad(loss, inputs[0])
    return float(gradient.float().norm())


def effective_lengths(totals: list[float], share: float = GRADIENT_SHARE) -> list[int]:
    """The shortest range [lo, hi] of path lengths whose gradient adds up to ``share``."""
    values = np.nan_to_num(np.asarray(totals, dtype=np.float64))
    whole = values.sum()
    if whole <= 0:
        return []
    best = (0, len(values) - 1)
    for lo in range(len(values)):
        running = np.cumsum(values[lo:])
        reach = np.flatnonzero(running >= share * whole)
        if reach.size and reach[0] < best[1] - best[0]:
            best = (lo, lo + int(reach[0]))
    return [best[0], best[1]]


# -- the plan ----------------------------------------------------------------------------------


def plan_deletions(candidates: list[int], draws: int, rng: random.Random
                   ) -> dict[int, list[frozenset[int]]]:
    """For k = 1..n, the sets of k blocks to delete together: every set where there are at
    most ``draws`` of them (and every single block: those are measured anyway), else
    ``draws`` distinct random ones."""
    plan: dict[int, list[frozenset[int]]] = {}
    for k in range(1, len(candidates) + 1):
        if k == 1 or math.comb(len(candidates), k) <= draws:
            plan[k] = [frozenset(c) for c in itertools.combinations(candidates, k)]
            continue
        chosen: set[frozenset[int]] = set()
        while len(chosen) < draws:
            chosen.add(frozenset(rng.sample(candidates, k)))
        plan[k] = sorted(chosen, key=sorted)
    return plan


def plan_reorders(model: ResNet, draws: int, rng: random.Random
                  ) -> list[tuple[int, dict[str, list[int]], float]]:
    """Corrupted orders: (swaps, the order of every stage that changed, Kendall's tau of the
    whole network's block order). Swap counts run from 1 to the number of movable blocks,
    at most ten of them, spread geometrically; ``draws // 2`` corruptions each (at least 1).
    Swaps that cancel out, and orders already planned, are left out."""
    groups = swappable(model)
    movable = sum(len(positions) for positions in groups.values())
    if not groups:
        return []
    counts = sorted({int(round(c)) for c in np.geomspace(1, movable, min(movable, 10))})
    offsets, start = {}, 0
    for stage in model.stage_names:
        offsets[stage] = start
        start += len(getattr(model, stage))
    plan, seen = [], set()
    for swaps in counts:
        for _ in range(max(1, draws // 2)):
            order = {stage: list(range(len(getattr(model, stage)))) for stage in groups}
            for _ in range(swaps):
                stage = rng.choice(sorted(groups))
                a, b = rng.sample(groups[stage], 2)
                order[stage][a], order[stage][b] = order[stage][b], order[stage][a]
            whole = list(range(start))
            for stage, positions in order.items():
                for slot, position in enumerate(positions):
                    whole[offsets[stage] + slot] = offsets[stage] + position
            if whole != list(range(start)) and tuple(whole) not in seen:
                seen.add(tuple(whole))
                plan.append((swaps, order, kendall_tau(whole)))
    return plan


# -- the experiment ----------------------------------------------------------------------------


def run_lesion(model: nn.Module, evalset: EvalSet, draws: int = 10, seed: int = 0,
               network: str = "network", path_samples: int = 8, path_batch: int = 64,
               progress: ProgressCallback | None = None,
               stop: threading.Event | None = None) -> LesionResult:
    """The lesion study of a trained ``model`` (see the module docstring); ``model`` is not
    changed. ``draws`` random sets per k, ``path_samples`` paths of each length."""
    if not isinstance(model, ResNet) or not model.blocks():
        raise UserError("a lesion study needs a network built by resnet-gui with at least one "
                        "block; give a checkpoint written by resnet-gui train")
    for label, value in (("draws", draws), ("path samples", path_samples),
                         ("path batch", path_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"the number of {label} must be a whole number >= 1, got {value!r}")
    net, _ = inference_copy(model, evalset.placement)
    named = net.blocks()
    blocks = [block for _, block in named]
    candidates = [i for i, block in enumerate(blocks) if not is_downsampling(block)]
    rng = random.Random(seed)
    deletions = plan_deletions(candidates, draws, rng)
    reorders = plan_reorders(net, draws, rng)
    residual = any(block.has_shortcut for block in blocks)
    unique = ({frozenset()} | {frozenset([i]) for i in range(len(blocks))}
              | {subset for subsets in deletions.values() for subset in subsets})
    planned_paths = (sum(b.has_shortcut for b in blocks) + 1) * path_samples if residual else 0
    reporter = Reporter("lesion", len(unique) + len(reorders) + planned_paths, progress, stop)
    cache: dict[frozenset[int], tuple[float, float]] = {}

    def evaluate(subset: frozenset[int]) -> tuple[float, float]:
        if subset not in cache:
            with deleted(blocks[i] for i in subset):
                cache[subset] = evalset.evaluate(net)
            reporter.report(f"{len(subset)} block(s) deleted: accuracy "
                            f"{100 * cache[subset][1]:.1f} %", advance=1)
        return cache[subset]

    reporter.report(f"evaluating {network} intact on {evalset.count:,} images")
    baseline_loss, baseline_accuracy = evaluate(frozenset())
    lesions = _single_deletions(named, evaluate, reporter)
    delete_k = _deletions_by_k(deletions, evaluate, reporter)
    reordered_results = _reorderings(net, reorders, evalset, reporter)
    paths = (_path_lengths(model, evalset, path_samples, path_batch, seed, reporter)
             if residual else None)
    seconds, cpu_seconds = reporter.seconds()
    return LesionResult(
        network=network, plain=not residual, images=evalset.count, draws=draws, seed=seed,
        chance=1.0 / evalset.num_classes, baseline_accuracy=baseline_accuracy,
        baseline_loss=baseline_loss, blocks=lesions, delete_k=delete_k,
        reorder=reordered_results, path_lengths=paths, device=str(evalset.placement.device),
        precision=evalset.placement.precision, evaluations=len(cache) + len(reordered_results),
        seconds=seconds, cpu_seconds=cpu_seconds, stopped=reporter.stopped)


def _single_deletions(named, evaluate, reporter: Reporter) -> list[BlockLesion]:
    results = []
    for index, (name, block) in enumerate(named):
        if reporter.stopped:
            break
        loss, accuracy = evaluate(frozenset([index]))
        results.append(BlockLesion(name=name, stage=name.split(".")[0],
                                   downsampling=is_downsampling(block), accuracy=accuracy,
                                   loss=loss, stand_in=not block.has_shortcut
                                   and is_downsampling(block)))
        reporter.report(f"{name} deleted", event=results[-1])
    return results


def _deletions_by_k(plan, evaluate, reporter: Reporter) -> list[DeleteK]:
    results = []
    for k, subsets in plan.items():
        accuracies = []
        for subset in subsets:
            if reporter.stopped:
                break
            accuracies.append(evaluate(subset)[1])
        if len(accuracies) < len(subsets):
            break
        results.append(DeleteK(k=k, mean_accuracy=float(np.mean(accuracies)),
                               std=float(np.std(accuracies)), accuracies=accuracies))
        reporter.report(f"{k} blocks deleted", event=results[-1])
    return results


def _reorderings(net: ResNet, plan, evalset: EvalSet, reporter: Reporter) -> list[Reordering]:
    results = []
    for swaps, order, tau in plan:
        if reporter.stopped:
            break
        with reordered(net, order):
            accuracy = evalset.evaluate(net)[1]
        results.append(Reordering(swaps=swaps, kendall_tau=tau, accuracy=accuracy))
        reporter.report(f"{swaps} swap(s), Kendall's tau {tau:.2f}: accuracy "
                        f"{100 * accuracy:.1f} %", advance=1, event=results[-1])
    return results


def _path_lengths(model: nn.Module, evalset: EvalSet, samples: int, batch: int, seed: int,
                  reporter: Reporter) -> PathLengths | None:
    """Veit et al.'s Fig. 6: how much gradient the paths of each length carry (fp32)."""
    placement = replace(evalset.placement, precision="fp32")
    net, _ = inference_copy(model, placement)
    blocks = [block for _, block in net.blocks()]
    residual = [i for i, block in enumerate(blocks) if block.has_shortcut]
    n = len(residual)
    rng = random.Random(seed + 1)
    generator = torch.Generator().manual_seed(seed)
    per_path = []
    for k in range(n + 1):
        norms = []
        for _ in range(samples):
            if reporter.stopped:
                return None
            pick = torch.randperm(evalset.count, generator=generator)[:batch]
            pick = pick.to(evalset.images.device)
            norms.append(path_gradient(net, blocks, set(rng.sample(residual, k)),
                                       evalset.images[pick], evalset.labels[pick]))
            reporter.report(f"gradient along paths of length {k} of {n}", advance=1)
        per_path.append(float(np.mean(norms)))
    paths = [float(math.comb(n, k)) for k in range(n + 1)]
    totals = [count * value for count, value in zip(paths, per_path)]
    return PathLengths(n=n, lengths=list(range(n + 1)), paths=paths, gradient_per_path=per_path,
                       gradient_total=totals, effective=effective_lengths(totals),
                       samples=samples, batch=min(batch, evalset.count))
