"""What an architecture *is*: frozen dataclasses, kinds as allowlists, and validation.

Standard library only. Nothing here knows about torch; ``resnet_gui.engine`` turns an
:class:`Architecture` into a module and analyses it.

Module names follow torchvision (``conv1``, ``layer2.0.downsample``, ``fc``) for every
architecture, so that the presets mirroring torchvision load its weights and users meet the
names they already know.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass, field

from resnet_gui.errors import ArchitectureError

# Block kinds and the channel expansion of their last layer.
BLOCK_EXPANSION: dict[str, int] = {
    "basic": 1,  # two 3x3 convs, post-activation (He et al. 2016, Fig. 2 left)
    "bottleneck": 4,  # 1x1 - 3x3 - 1x1, stride on the 3x3 (torchvision "v1.5")
    "preact-basic": 1,  # BN-ReLU-conv twice ("Identity Mappings", He et al. 2016b)
    "preact-bottleneck": 4,
    "plain": 1,  # the basic block's layers with no shortcut, for comparisons
    "plain-bottleneck": 4,
}
BLOCK_KINDS: tuple[str, ...] = tuple(BLOCK_EXPANSION)
BLOCK_DESCRIPTIONS: dict[str, str] = {
    "basic": "Basic block: two 3x3 convolutions with batch norm, added to the shortcut",
    "bottleneck": "Bottleneck: 1x1 reduce, 3x3, 1x1 expand (x4), added to the shortcut",
    "preact-basic": "Pre-activation basic: BN-ReLU-conv twice, clean identity path",
    "preact-bottleneck": "Pre-activation bottleneck: BN-ReLU before each of 1x1, 3x3, 1x1",
    "plain": "Plain: the basic block's layers without a shortcut (for comparison)",
    "plain-bottleneck": "Plain bottleneck: the bottleneck's layers without a shortcut",
}

# How a shortcut adapts the input when the block changes channels or resolution; where the
# shapes match, the shortcut is always the identity.
SHORTCUT_KINDS: tuple[str, ...] = ("projection", "zero-pad", "avgpool-projection")
SHORTCUT_DESCRIPTIONS: dict[str, str] = {
    "projection": "1x1 convolution with the block's stride (option B)",
    "zero-pad": "Subsample and pad new channels with zeros, no parameters (option A)",
    "avgpool-projection": "2x2 average pool, then 1x1 convolution (ResNet-D)",
}

STEM_KINDS: tuple[str, ...] = ("single", "deep")
STEM_DESCRIPTIONS: dict[str, str] = {
    "single": "One convolution (7x7 for ImageNet, 3x3 for CIFAR)",
    "deep": "Three 3x3 convolutions (ResNet-C)",
}

POOL_KINDS: tuple[str, ...] = ("avg", "max")

# Upper bounds keep a typo (width 640000) from asking the machine for terabytes.
MAX_WIDTH = 16384
MAX_BLOCKS_PER_STAGE = 512
MAX_STRIDE = 64
MAX_KERNEL = 64
MAX_INPUT_SIZE = 4096
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class Stem:
    kind: str = "single"
    width: int = 64
    kernel: int = 7  # of the single conv; a deep stem uses three 3x3 convs
    stride: int = 2
    padding: int | None = None  # None: kernel // 2 ("same"-style)
    bias: bool = False
    batch_norm: bool = True
    max_pool: bool = True  # 3x3, stride 2, padding 1

    @property
    def effective_padding(self) -> int:
        if self.kind == "deep":
            return 1
        return self.kernel // 2 if self.padding is None else self.padding


@dataclass(frozen=True)
class Shortcut:
    kind: str = "projection"
    batch_norm: bool = True
    bias: bool = False


@dataclass(frozen=True)
class Stage:
    blocks: tuple[str, ...]
    width: int
    stride: int = 1  # of the first block
    shortcut: Shortcut = field(default_factory=Shortcut)
    conv_bias: bool = False  # biases on the blocks' convolutions (the D2L chapter has them)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def block(self) -> str | None:
        """The stage's block kind when all its blocks share one, else None."""
        first = self.blocks[0] if self.blocks else None
        return first if all(kind == first for kind in self.blocks) else None

    @property
    def out_channels(self) -> int:
        return self.width * BLOCK_EXPANSION.get(self.blocks[-1], 1) if self.blocks else self.width


@dataclass(frozen=True)
class Head:
    pool: str = "avg"
    dropout: float = 0.0


@dataclass(frozen=True)
class Architecture:
    stages: tuple[Stage, ...]
    stem: Stem = field(default_factory=Stem)
    head: Head = field(default_factory=Head)
    in_channels: int = 3
    input_size: tuple[int, int] = (224, 224)
    num_classes: int = 1000
    name: str = "custom"

    def replace(self, **changes) -> "Architecture":
        return dataclasses.replace(self, **changes)

    def with_stage(self, index: int, stage: Stage) -> "Architecture":
        stages = list(self.stages)
        stages[index] = stage
        return self.replace(stages=tuple(stages))

    @property
    def final_preactivation(self) -> bool:
        """Pre-activation blocks leave their output un-normalised: the head adds BN-ReLU."""
        return bool(self.stages) and self.stages[-1].blocks[-1].startswith("preact")

    @property
    def num_blocks(self) -> int:
        return sum(stage.num_blocks for stage in self.stages)


def is_uniform_stage(stage: Stage) -> bool:
    return stage.block is not None


def stage_in_channels(arch: Architecture) -> list[int]:
    """Channels entering each stage, from the stem's width and the stages before it."""
    channels, result = arch.stem.width, []
    for stage in arch.stages:
        result.append(channels)
        channels = stage.out_channels
    return result


# -- validation ---------------------------------------------------------------------------


def _check_int(value, path: str, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchitectureError(f"must be a whole number, got {value!r}", path)
    if value < minimum:
        raise ArchitectureError(f"must be >= {minimum}, got {value}", path)
    if maximum is not None and value > maximum:
        raise ArchitectureError(f"must be <= {maximum}, got {value}", path)


def _check_bool(value, path: str) -> None:
    if not isinstance(value, bool):
        raise ArchitectureError(f"must be true or false, got {value!r}", path)


def _check_kind(value, allowed: tuple[str, ...], path: str, what: str) -> None:
    if value not in allowed:
        raise ArchitectureError(
            f"unknown {what} {value!r}; allowed: {', '.join(allowed)}", path
        )


def validate_shortcut(shortcut: Shortcut, path: str) -> None:
    _check_kind(shortcut.kind, SHORTCUT_KINDS, f"{path}.kind", "shortcut kind")
    _check_bool(shortcut.batch_norm, f"{path}.batch_norm")
    _check_bool(shortcut.bias, f"{path}.bias")


def validate(arch: Architecture) -> Architecture:
    """Raise :class:`ArchitectureError` naming the first bad field; return ``arch`` if sound.

    Checks what the data alone can tell. Whether the input is large enough for the network is
    the engine's analysis, which names the first layer whose output would be empty.
    """
    _check_int(arch.in_channels, "in_channels", 1, MAX_WIDTH)
    _check_int(arch.num_classes, "num_classes", 1, MAX_CLASSES)
    if not isinstance(arch.input_size, tuple) or len(arch.input_size) != 2:
        raise ArchitectureError(
            f"must be [height, width], got {arch.input_size!r}", "input_size"
        )
    for axis, value in zip(("height", "width"), arch.input_size):
        _check_int(value, f"input_size.{axis}", 1, MAX_INPUT_SIZE)

    stem = arch.stem
    _check_kind(stem.kind, STEM_KINDS, "stem.kind", "stem kind")
    _check_int(stem.width, "stem.width", 2 if stem.kind == "deep" else 1, MAX_WIDTH)
    _check_int(stem.kernel, "stem.kernel", 1, MAX_KERNEL)
    _check_int(stem.stride, "stem.stride", 1, MAX_STRIDE)
    if stem.padding is not None:
        _check_int(stem.padding, "stem.padding", 0, MAX_KERNEL)
    for name in ("bias", "batch_norm", "max_pool"):
        _check_bool(getattr(stem, name), f"stem.{name}")

    if not arch.stages:
        raise ArchitectureError("a network needs at least one stage; add one", "stages")
    for i, stage in enumerate(arch.stages):
        path = f"stages[{i}]"
        if not isinstance(stage.blocks, tuple):
            raise ArchitectureError(f"must be a list of block kinds, got {stage.blocks!r}",
                                    f"{path}.blocks")
        _check_int(len(stage.blocks), f"{path}.num_blocks", 1, MAX_BLOCKS_PER_STAGE)
        for j, kind in enumerate(stage.blocks):
            _check_kind(kind, BLOCK_KINDS, f"{path}.blocks[{j}]", "block kind")
        _check_int(stage.width, f"{path}.width", 1, MAX_WIDTH)
        _check_int(stage.stride, f"{path}.stride", 1, MAX_STRIDE)
        _check_bool(stage.conv_bias, f"{path}.conv_bias")
        validate_shortcut(stage.shortcut, f"{path}.shortcut")

    # Channel arithmetic only once every kind is known to be valid.
    for i, (stage, channels) in enumerate(zip(arch.stages, stage_in_channels(arch))):
        if stage.shortcut.kind != "zero-pad":
            continue
        for kind in stage.blocks:
            out = stage.width * BLOCK_EXPANSION[kind]
            if out < channels and not kind.startswith("plain"):
                raise ArchitectureError(
                    f"zero-padding cannot reduce channels from {channels} to {out}; "
                    "use a projection shortcut or widen the stage",
                    f"stages[{i}].shortcut.kind",
                )
            channels = out

    _check_kind(arch.head.pool, POOL_KINDS, "head.pool", "pooling kind")
    dropout = arch.head.dropout
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
        0.0 <= dropout < 1.0
    ):
        raise ArchitectureError(f"must be a number in [0, 1), got {dropout!r}", "head.dropout")
    if not isinstance(arch.name, str):
        raise ArchitectureError(f"must be text, got {arch.name!r}", "name")
    # Control characters (a line break, NUL) and lone surrogates cannot be printed or saved.
    bad = next((ch for ch in arch.name if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ArchitectureError(f"must be one line of printable text, but holds the control "
                                f"character U+{ord(bad):04X}; rename the network", "name")
    return arch
