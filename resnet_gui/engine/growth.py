"""Grow a trained network without changing what it computes.

Net2DeeperNet (Chen, Goodfellow and Shlens, "Net2Net", 2016) with a residual block: a block
inserted into a stage, after a block of the same width, whose residual branch starts at zero
is exactly the identity, so the grown network computes what the trained one did, and training
goes on from there.

- Post-activation blocks (basic, bottleneck) end with ``relu(bn(conv(.)) + x)``. Their last
  batch norm starts at gamma = beta = 0, so the branch is 0 and the block gives
  ``relu(x) = x``: the block before it ended in a ReLU, so ``x >= 0``. Gamma's gradient is
  the normalised conv output, not 0, so the block wakes up at the first step.
- Pre-activation blocks end with ``conv(.) + x`` and no batch norm: their last convolution
  starts at 0, the only zero that keeps ``x`` as it is.
- Plain blocks have no shortcut and cannot start as the identity.

The grown checkpoint keeps the run's position and plan, drops the optimizer's state (its
moments belong to the old parameters) and records the growth under ``"grown"``; resuming it,
the trainer starts a fresh optimizer and warms the learning rate up again over
``warmup_epochs``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui.arch.model import BLOCK_EXPANSION, Architecture, validate
from resnet_gui.arch.recipe import Recipe, validate_recipe
from resnet_gui.arch.serialize import dumps
from resnet_gui.engine.checkpoint import save_checkpoint
from resnet_gui.engine.model import ResNet, build_model
from resnet_gui.engine.trained import PREPROCESSING_KEY, TrainedNetwork
from resnet_gui.errors import ArchitectureError, CheckpointError, UserError

GROWN_KEY = "grown"
DEFAULT_WARMUP_EPOCHS = 0.1
WARMUP_START = 0.01  # the learning rate right after growth, as a fraction of the plan's
# The layer whose weights start at zero, per kind that can start as the identity.
LAST_LAYER = {"basic": "bn2", "bottleneck": "bn3", "preact-basic": "conv2",
              "preact-bottleneck": "conv3"}
_RESIDUAL_OF = {"plain": "basic", "plain-bottleneck": "bottleneck"}
COMPARISON_INPUTS = 8


def parse_insertion(text: str, arch: Architecture) -> tuple[int, int]:
    """``"layer2:1"`` -> (stage 1, index 1): where the new block goes, in torchvision naming."""
    stage_name, _, index_text = text.partition(":")
    stages = [f"layer{i + 1}" for i in range(len(arch.stages))]
    if stage_name not in stages or not index_text.strip().isdigit():
        raise ArchitectureError(f"--insert {text}: give STAGE:INDEX with a stage of this "
                                f"network ({', '.join(stages)}), such as {stages[0]}:1")
    return stages.index(stage_name), int(index_text)


def deeper_architecture(arch: Architecture, stage: int, index: int, kind: str | None = None
                        ) -> tuple[Architecture, str]:
    """``arch`` with a block of ``kind`` (default: the kind of the block before it) at
    ``index`` of stage ``stage``; refuses a block that could not start as the identity."""
    blocks = arch.stages[stage].blocks
    where = f"layer{stage + 1}:{index}"
    if not 1 <= index <= len(blocks):
        raise ArchitectureError(
            f"--insert {where}: a block goes at index "
            f"{'1' if len(blocks) == 1 else f'1 to {len(blocks)}'} of layer{stage + 1} (after "
            "a block; the first block changes the resolution and channels)")
    before = blocks[index - 1]
    kind = kind or _RESIDUAL_OF.get(before, before)
    if kind not in LAST_LAYER:
        raise ArchitectureError(f"--kind {kind}: a {kind} block has no shortcut, so it cannot "
                                "start as the identity; choose basic, bottleneck, preact-basic "
                                "or preact-bottleneck")
    if BLOCK_EXPANSION[kind] != BLOCK_EXPANSION[before]:
        raise ArchitectureError(f"--kind {kind}: its output would have other channels than the "
                                f"{before} block before it; choose a {before} block")
    if kind.startswith("preact") != before.startswith("preact"):
        raise ArchitectureError(f"--kind {kind}: after a {before} block only a "
                                f"{'pre' if before.startswith('preact') else 'post'}-activation "
                                "block starts as the identity; choose "
                                f"{_RESIDUAL_OF.get(before, before)}")
    stage_spec = dataclasses.replace(arch.stages[stage],
                                     blocks=blocks[:index] + (kind,) + blocks[index:])
    grown = arch.with_stage(stage, stage_spec).replace(name=f"{arch.name}+layer{stage + 1}.{index}")
    return validate(grown), kind


def _shifted(key: str, stage_name: str, index: int) -> str:
    """A state-dict key of the old network, renamed for the block inserted at ``index``."""
    if not key.startswith(f"{stage_name}."):
        return key
    position, _, rest = key[len(stage_name) + 1:].partition(".")
    return f"{stage_name}.{int(position) + 1}.{rest}" if int(position) >= index else key


def deeper_network(model: nn.Module, arch: Architecture, stage: int, index: int,
                   kind: str | None = None, seed: int = 0) -> ResNet:
    """A new network with a block inserted that starts as the identity; every old layer keeps
    its weights and statistics. The new block's other weights are initialised as the builder
    does, from ``seed``."""
    grown_arch, kind = deeper_architecture(arch, stage, index, kind)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = build_model(grown_arch)
    state = grown.state_dict()
    stage_name = f"layer{stage + 1}"
    for key, value in model.state_dict().items():
        new_key = _shifted(key, stage_name, index)
        if new_key not in state or state[new_key].shape != value.shape:
            raise CheckpointError(f"the trained network's {key} has no place in the grown one; "
                                  "the checkpoint does not match its own architecture")
        state[new_key] = value
    grown.load_state_dict(state)
    last = getattr(getattr(grown, stage_name)[index], LAST_LAYER[kind])
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    return grown


def max_logit_change(before: nn.Module, after: nn.Module, arch: Architecture,
                     count: int = COMPARISON_INPUTS, seed: int = 0) -> float:
    """The largest |logit difference| of the two networks (eval mode) on random inputs."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(count, arch.in_channels, *arch.input_size, generator=generator)
    with torch.no_grad():
        return float((before.eval()(inputs) - after.eval()(inputs)).abs().max())


@dataclass(frozen=True)
class Growth:
    """A grown checkpoint's payload and what happened, for the user."""

    payload: dict[str, Any]
    arch: Architecture
    block: str  # "layer2.1"
    kind: str
    max_logit_change: float
    finished: bool  # the run had ended its plan: resuming trains nothing unless epochs grow


def grow_checkpoint(trained: TrainedNetwork, insert: str, kind: str | None = None,
                    epochs: int | None = None,
                    warmup_epochs: float = DEFAULT_WARMUP_EPOCHS) -> Growth:
    """The checkpoint of ``trained`` with a block inserted at ``insert`` (``layer2:1``)."""
    checkpoint = trained.checkpoint
    recipe = trained.recipe
    try:
        num_train = int(checkpoint["num_train"])
        progress = int(checkpoint["epoch"]) + int(checkpoint["position"]) / max(num_train, 1)
        step = int(checkpoint["step"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{trained.path} is damaged: its position in the run cannot be "
                              "read; use the previous checkpoint") from None
    if epochs is not None:
        if epochs <= progress:
            raise UserError(f"--epochs {epochs}: the run is already {progress:g} epochs in; give "
                            "more epochs than that")
        recipe = validate_recipe(recipe.replace(epochs=epochs))
    if not warmup_epochs > 0:
        raise UserError(f"--warmup-epochs must be > 0, got {warmup_epochs}")
    stage, index = parse_insertion(insert, trained.arch)
    grown = deeper_network(trained.model, trained.arch, stage, index, kind,
                           seed=recipe.seed + step)
    arch = grown.arch
    kind = arch.stages[stage].blocks[index]
    change = max_logit_change(trained.model, grown, trained.arch)
    event = {"step": step, "progress": progress, "block": f"layer{stage + 1}.{index}",
             "kind": kind, "warmup_epochs": float(warmup_epochs),
             "max_logit_change": change, "from": str(trained.path)}
    payload = {key: value for key, value in checkpoint.items()
               if key not in ("format", "version")}
    payload.update(architecture=dumps(arch), recipe=recipe.to_dict(), model=grown.state_dict(),
                   optimizer=None, scaler=None,
                   **{GROWN_KEY: growth_history(checkpoint) + [event],
                      PREPROCESSING_KEY: trained.preprocessing.to_dict()})
    return Growth(payload, arch, event["block"], kind, change, progress >= recipe.epochs)


def continued(growth: Growth, more_epochs: int) -> Growth:
    """``growth`` whose plan trains ``more_epochs`` epochs past the whole epoch it grew in
    (the window's Start after growing: the form's epochs, counted from there)."""
    if more_epochs < 1:
        raise UserError(f"train at least one epoch after growing, got {more_epochs}")
    progress = float(growth.payload[GROWN_KEY][-1]["progress"])
    recipe = validate_recipe(Recipe.from_dict(growth.payload["recipe"]).replace(
        epochs=math.ceil(progress) + more_epochs))
    return dataclasses.replace(growth, payload={**growth.payload, "recipe": recipe.to_dict()},
                               finished=False)


# -- resuming a grown run (used by the trainer) -----------------------------------------------


def growth_history(checkpoint: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every growth of the run, oldest first (empty for a run that never grew)."""
    history = (checkpoint or {}).get(GROWN_KEY) or []
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise ValueError("the growth record is not a list of events")
    return history


def warmup_after_growth(history: list[dict[str, Any]], progress: float) -> float:
    """The factor on the planned learning rate at ``progress`` (epochs): from WARMUP_START
    right after the last growth up to 1 over its warm-up, then 1."""
    if not history:
        return 1.0
    last = history[-1]
    done = (progress - float(last["progress"])) / float(last["warmup_epochs"])
    if not 0 <= done < 1:
        return 1.0
    return WARMUP_START + (1 - WARMUP_START) * done


def restore_optimizer(optimizer: torch.optim.Optimizer, checkpoint: dict[str, Any]) -> None:
    """Load the checkpoint's optimizer state; a grown network that has not trained since it
    grew has none, and starts a fresh optimizer. Raises KeyError or ValueError where the
    state is missing otherwise (the trainer calls the checkpoint damaged)."""
    state = checkpoint["optimizer"]
    if state is None:
        if not growth_history(checkpoint):
            raise ValueError("no optimizer state")
        return
    optimizer.load_state_dict(state)


def write_grown(growth: Growth, path: str | os.PathLike) -> Path:
    save_checkpoint(path, growth.payload)
    return Path(path)
