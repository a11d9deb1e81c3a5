"""What each card lists: the layers of its branch, as the model builder makes them
(:mod:`resnet_gui.engine.model`). Plain data; the cards paint it."""

from __future__ import annotations

from dataclasses import dataclass

from resnet_gui.arch.model import BLOCK_EXPANSION, Architecture


@dataclass(frozen=True)
class Step:
    """One row of a card's branch: a chip (conv, pool, fc) or a tag line (BN · ReLU)."""

    text: str
    style: str  # "conv", "pool", "fc" or "tag"


def conv_text(kernel: int, channels: int, stride: int = 1) -> str:
    return f"{kernel}×{kernel} conv, {channels}" + (f", /{stride}" if stride > 1 else "")


def block_steps(kind: str, width: int, stride: int) -> list[Step]:
    """The branch of a block as the builder makes it (resnet_gui.engine.model)."""
    out = width * BLOCK_EXPANSION[kind]
    if kind in ("basic", "plain"):
        return [Step(conv_text(3, width, stride), "conv"), Step("BN · ReLU", "tag"),
                Step(conv_text(3, out), "conv"), Step("BN", "tag")]
    if kind in ("bottleneck", "plain-bottleneck"):
        return [Step(conv_text(1, width), "conv"), Step("BN · ReLU", "tag"),
                Step(conv_text(3, width, stride), "conv"), Step("BN · ReLU", "tag"),
                Step(conv_text(1, out), "conv"), Step("BN", "tag")]
    if kind == "preact-basic":
        return [Step("BN · ReLU", "tag"), Step(conv_text(3, width, stride), "conv"),
                Step("BN · ReLU", "tag"), Step(conv_text(3, out), "conv")]
    return [Step("BN · ReLU", "tag"), Step(conv_text(1, width), "conv"),
            Step("BN · ReLU", "tag"), Step(conv_text(3, width, stride), "conv"),
            Step("BN · ReLU", "tag"), Step(conv_text(1, out), "conv")]


def stem_steps(arch: Architecture) -> list[Step]:
    stem = arch.stem
    norm = "BN · ReLU" if stem.batch_norm else "ReLU"
    if stem.kind == "deep":
        half = stem.width // 2
        steps = [Step(conv_text(3, half, stem.stride), "conv"), Step("BN · ReLU", "tag"),
                 Step(conv_text(3, half), "conv"), Step("BN · ReLU", "tag"),
                 Step(conv_text(3, stem.width), "conv"), Step(norm, "tag")]
    else:
        steps = [Step(conv_text(stem.kernel, stem.width, stem.stride), "conv"), Step(norm, "tag")]
    if stem.max_pool:
        steps.append(Step("3×3 max pool, /2", "pool"))
    return steps


def head_steps(arch: Architecture) -> list[Step]:
    steps = []
    if arch.final_preactivation:
        steps.append(Step("BN · ReLU", "tag"))
    steps.append(Step(f"global {arch.head.pool} pool", "pool"))
    if arch.head.dropout > 0:
        steps.append(Step(f"dropout {arch.head.dropout:g}", "tag"))
    steps.append(Step(f"fc → {arch.num_classes}", "fc"))
    return steps
