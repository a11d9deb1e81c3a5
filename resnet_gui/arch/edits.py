"""Edits of an architecture as pure functions: each takes an :class:`Architecture` and returns
a new one, so the document can keep every version for undo and redo.

Standard library only. A part of the network is addressed by a :class:`Part` (the stem, a
stage, a run of blocks in a stage, or the head); the window's selection, its drag and drop and
its Delete / Duplicate commands all speak in parts.

The edits keep the architecture structurally whole (at least one stage, at least one block per
stage), but they do not refuse values that merely make the network unusable, such as a stride
that shrinks the image to nothing: those are shown where they happen and undone by the user.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import (
    BLOCK_EXPANSION,
    BLOCK_KINDS,
    POOL_KINDS,
    SHORTCUT_KINDS,
    STEM_KINDS,
    Architecture,
    Shortcut,
    Stage,
    Stem,
    stage_in_channels,
)

STEM, STAGE, BLOCK, HEAD = "stem", "stage", "block", "head"


@dataclass(frozen=True)
class Part:
    """One selectable part: ``Part.stem()``, ``Part.stage(i)``, ``Part.blocks(i, j, count)``,
    ``Part.head()``. A run of ``count`` blocks is how a folded card (``xN``) is selected."""

    kind: str
    stage_index: int = -1
    block_index: int = -1
    count: int = 1

    @staticmethod
    def stem() -> "Part":
        return Part(STEM)

    @staticmethod
    def head() -> "Part":
        return Part(HEAD)

    @staticmethod
    def stage(index: int) -> "Part":
        return Part(STAGE, index)

    @staticmethod
    def blocks(stage_index: int, block_index: int, count: int = 1) -> "Part":
        return Part(BLOCK, stage_index, block_index, count)

    @property
    def block_range(self) -> range:
        return range(self.block_index, self.block_index + self.count)

    def layer_name(self) -> str:
        """The name of this part's row in the layer table (torchvision naming)."""
        if self.kind == STAGE:
            return f"layer{self.stage_index + 1}"
        if self.kind == BLOCK:
            return f"layer{self.stage_index + 1}.{self.block_index}"
        return ""

    def contains_layer(self, name: str) -> bool:
        """Whether the layer table row ``name`` belongs to this part."""
        first = name.split(".")[0]
        if self.kind == STEM:
            return first in STEM_LAYERS
        if self.kind == HEAD:
            return first in HEAD_LAYERS
        if first != f"layer{self.stage_index + 1}":
            return False
        if self.kind == STAGE:
            return True
        pieces = name.split(".")
        return len(pieces) > 1 and pieces[1].isdigit() and int(pieces[1]) in self.block_range

    def describe(self, arch: Architecture) -> str:
        if self.kind == STEM:
            return "the stem"
        if self.kind == HEAD:
            return "the head"
        name = f"layer{self.stage_index + 1}"
        if self.kind == STAGE:
            return f"stage {name}"
        if self.count == 1:
            return f"block {name}.{self.block_index}"
        return f"blocks {name}.{self.block_index}-{self.block_index + self.count - 1}"


# Top-level module names of the builder (resnet_gui.engine.model), by the part they belong to.
STEM_LAYERS = frozenset({"conv1", "bn1", "relu", "maxpool"})
HEAD_LAYERS = frozenset({"final_bn", "final_relu", "global_pool", "flatten", "dropout", "fc"})


def part_for_path(path: str, arch: Architecture) -> Part | None:
    """The part an error path points at: a field path (``stages[2].width``, ``stem.kernel``)
    from validation or a layer name (``layer3.0.conv1``, ``maxpool``) from the analysis."""
    if not path:
        return None
    if path.startswith("stages[") and "]" in path:
        digits = path[len("stages["): path.index("]")]
        if digits.isdigit() and int(digits) < len(arch.stages):
            index = int(digits)
            rest = path[path.index("]") + 1:]
            if rest.startswith(".blocks[") and "]" in rest:
                block = rest[len(".blocks["): rest.index("]")]
                if block.isdigit():
                    return Part.blocks(index, int(block))
            return Part.stage(index)
        return None
    first = path.split(".")[0]
    if first.startswith("layer") and first[5:].isdigit():
        index = int(first[5:]) - 1
        if not 0 <= index < len(arch.stages):
            return None
        pieces = path.split(".")
        if len(pieces) > 1 and pieces[1].isdigit() and int(pieces[1]) < arch.stages[index].num_blocks:
            return Part.blocks(index, int(pieces[1]))
        return Part.stage(index)
    if first == "stem" or first in STEM_LAYERS or first in ("input_size", "in_channels"):
        return Part.stem()
    if first == "head" or first in HEAD_LAYERS or first == "num_classes":
        return Part.head()
    return None


# -- helpers --------------------------------------------------------------------------------


def _check_stage_index(arch: Architecture, index: int, allow_end: bool = False) -> None:
    limit = len(arch.stages) + (1 if allow_end else 0)
    if not 0 <= index < limit:
        raise ArchitectureError(
            f"there is no stage {index + 1}; the network has {len(arch.stages)}", "stages"
        )


def _check_block_index(stage: Stage, stage_index: int, index: int, allow_end: bool = False) -> None:
    limit = stage.num_blocks + (1 if allow_end else 0)
    if not 0 <= index < limit:
        raise ArchitectureError(
            f"there is no block {index} in layer{stage_index + 1}; it has {stage.num_blocks}",
            f"stages[{stage_index}].blocks",
        )


def _check_kind(value: str, allowed: tuple[str, ...], what: str, path: str) -> None:
    if value not in allowed:
        raise ArchitectureError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}", path)


def _with_stages(arch: Architecture, stages: list[Stage]) -> Architecture:
    return arch.replace(stages=tuple(stages))


def _only_stage_error() -> ArchitectureError:
    return ArchitectureError(
        "a network needs at least one stage; add another stage before removing this one",
        "stages",
    )


# -- stages ---------------------------------------------------------------------------------


def new_stage(arch: Architecture, index: int, block: str | None = None) -> Stage:
    """A sensible stage to insert at ``index``: it continues from the stage before it.

    At the end it doubles the width and halves the resolution, like every stage of the paper
    after the first; in the middle it keeps the width and resolution of the stage before it,
    so the stages after it see the same input as before.
    """
    before = arch.stages[index - 1] if index > 0 else None
    after = arch.stages[index] if index < len(arch.stages) else None
    neighbour = before or after
    kind = block or (neighbour.block if neighbour and neighbour.block else "basic")
    shortcut = neighbour.shortcut if neighbour else Shortcut()
    conv_bias = neighbour.conv_bias if neighbour else False
    if before is None:
        width, stride = (after.width if after else arch.stem.width), 1
    elif after is None:
        width, stride = min(before.width * 2, 16384), 2
    else:
        width, stride = before.width, 1
    return Stage(blocks=(kind,) * 2, width=width, stride=stride, shortcut=shortcut,
                 conv_bias=conv_bias)


def insert_stage(
    arch: Architecture, index: int, stage: Stage | None = None, block: str | None = None
) -> Architecture:
    _check_stage_index(arch, index, allow_end=True)
    if block is not None:
        _check_kind(block, BLOCK_KINDS, "block kind", "block")
    stages = list(arch.stages)
    stages.insert(index, stage if stage is not None else new_stage(arch, index, block))
    return _with_stages(arch, stages)


def remove_stage(arch: Architecture, index: int) -> Architecture:
    _check_stage_index(arch, index)
    if len(arch.stages) == 1:
        raise _only_stage_error()
    stages = list(arch.stages)
    del stages[index]
    return _with_stages(arch, stages)


def move_stage(arch: Architecture, source: int, target: int) -> Architecture:
    """Move stage ``source`` so that it ends up at index ``target`` (of the result)."""
    _check_stage_index(arch, source)
    _check_stage_index(arch, target)
    stages = list(arch.stages)
    stages.insert(target, stages.pop(source))
    return _with_stages(arch, stages)


def duplicate_stage(arch: Architecture, index: int) -> Architecture:
    """Insert a copy of stage ``index`` after it; the copy keeps the resolution (stride 1)."""
    _check_stage_index(arch, index)
    copy = dataclasses.replace(arch.stages[index], stride=1)
    return insert_stage(arch, index + 1, copy)


def set_stage(arch: Architecture, index: int, **changes) -> Architecture:
    """Change fields of a stage: ``width``, ``stride``, ``conv_bias``, ``num_blocks``,
    ``block`` (morphs every block), ``shortcut`` (a Shortcut) or ``shortcut_kind``,
    ``shortcut_batch_norm``, ``shortcut_bias``."""
    _check_stage_index(arch, index)
    stage = arch.stages[index]
    if "block" in changes:
        stage = _morph(stage, changes.pop("block"), index)
    if "num_blocks" in changes:
        stage = _resize(stage, changes.pop("num_blocks"), index)
    shortcut_changes = {
        name[len("shortcut_"):]: changes.pop(name)
        for name in list(changes)
        if name.startswith("shortcut_")
    }
    if "kind" in shortcut_changes:
        _check_kind(shortcut_changes["kind"], SHORTCUT_KINDS, "shortcut kind",
                    f"stages[{index}].shortcut.kind")
    if shortcut_changes:
        changes["shortcut"] = dataclasses.replace(
            changes.get("shortcut", stage.shortcut), **shortcut_changes
        )
    unknown = set(changes) - {"width", "stride", "conv_bias", "shortcut"}
    if unknown:
        raise ArchitectureError(f"a stage has no field {sorted(unknown)[0]!r}", f"stages[{index}]")
    return arch.with_stage(index, dataclasses.replace(stage, **changes))


def _morph(stage: Stage, kind: str, index: int) -> Stage:
    _check_kind(kind, BLOCK_KINDS, "block kind", f"stages[{index}].block")
    return dataclasses.replace(stage, blocks=(kind,) * stage.num_blocks)


def _resize(stage: Stage, count: int, index: int) -> Stage:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ArchitectureError(f"must be at least 1, got {count!r}", f"stages[{index}].num_blocks")
    if count <= stage.num_blocks:
        return dataclasses.replace(stage, blocks=stage.blocks[:count])
    extra = (stage.blocks[-1],) * (count - stage.num_blocks)
    return dataclasses.replace(stage, blocks=stage.blocks + extra)


def morph_stage(arch: Architecture, index: int, kind: str) -> Architecture:
    """Make every block of stage ``index`` a ``kind`` block (basic, bottleneck, pre-act...)."""
    return set_stage(arch, index, block=kind)


def set_stage_count(arch: Architecture, index: int, count: int) -> Architecture:
    return set_stage(arch, index, num_blocks=count)


# -- blocks ---------------------------------------------------------------------------------


def insert_block(arch: Architecture, stage_index: int, position: int, kind: str) -> Architecture:
    _check_stage_index(arch, stage_index)
    stage = arch.stages[stage_index]
    _check_block_index(stage, stage_index, position, allow_end=True)
    _check_kind(kind, BLOCK_KINDS, "block kind", f"stages[{stage_index}].blocks[{position}]")
    blocks = list(stage.blocks)
    blocks.insert(position, kind)
    return arch.with_stage(stage_index, dataclasses.replace(stage, blocks=tuple(blocks)))


def remove_blocks(arch: Architecture, stage_index: int, position: int, count: int = 1) -> Architecture:
    """Remove ``count`` blocks; a stage left with no block is removed with them."""
    _check_stage_index(arch, stage_index)
    stage = arch.stages[stage_index]
    _check_block_index(stage, stage_index, position)
    _check_block_index(stage, stage_index, position + count - 1)
    blocks = stage.blocks[:position] + stage.blocks[position + count:]
    if not blocks:
        return remove_stage(arch, stage_index)
    return arch.with_stage(stage_index, dataclasses.replace(stage, blocks=blocks))


def duplicate_block(arch: Architecture, stage_index: int, position: int) -> Architecture:
    """Insert a copy of block ``position`` right after it (one more block of that kind)."""
    _check_stage_index(arch, stage_index)
    stage = arch.stages[stage_index]
    _check_block_index(stage, stage_index, position)
    return insert_block(arch, stage_index, position + 1, stage.blocks[position])


def set_block_kind(arch: Architecture, stage_index: int, position: int, kind: str) -> Architecture:
    _check_stage_index(arch, stage_index)
    stage = arch.stages[stage_index]
    _check_block_index(stage, stage_index, position)
    _check_kind(kind, BLOCK_KINDS, "block kind", f"stages[{stage_index}].blocks[{position}]")
    blocks = list(stage.blocks)
    blocks[position] = kind
    return arch.with_stage(stage_index, dataclasses.replace(stage, blocks=tuple(blocks)))


def move_block(
    arch: Architecture, source_stage: int, source_position: int, target_stage: int,
    target_position: int,
) -> tuple[Architecture, Part]:
    """Move one block to ``target_position`` of ``target_stage`` (indices as in ``arch``:
    the position is where it would be inserted before the move).

    Returns the new architecture and the block's new address. A stage the block leaves empty
    is removed.
    """
    _check_stage_index(arch, source_stage)
    _check_stage_index(arch, target_stage)
    source = arch.stages[source_stage]
    _check_block_index(source, source_stage, source_position)
    _check_block_index(arch.stages[target_stage], target_stage, target_position, allow_end=True)
    kind = source.blocks[source_position]
    if source_stage == target_stage:
        blocks = list(source.blocks)
        del blocks[source_position]
        if target_position > source_position:
            target_position -= 1
        blocks.insert(target_position, kind)
        result = arch.with_stage(source_stage, dataclasses.replace(source, blocks=tuple(blocks)))
        return result, Part.blocks(target_stage, target_position)
    result = insert_block(arch, target_stage, target_position, kind)
    if source.num_blocks == 1:
        result = remove_stage(result, source_stage)
        if source_stage < target_stage:
            target_stage -= 1
    else:
        result = remove_blocks(result, source_stage, source_position)
    return result, Part.blocks(target_stage, target_position)


# -- stem, head and input -------------------------------------------------------------------

STEM_FIELDS = ("kind", "width", "kernel", "stride", "padding", "bias", "batch_norm", "max_pool")
HEAD_FIELDS = ("pool", "dropout")

# The stems the palette offers; each replaces the whole stem but keeps its width.
STEM_PRESETS: dict[str, Stem] = {
    "imagenet": Stem(kind="single", kernel=7, stride=2, max_pool=True),
    "cifar": Stem(kind="single", kernel=3, stride=1, max_pool=False),
    "deep": Stem(kind="deep", kernel=3, stride=2, max_pool=True),
}
STEM_PRESET_DESCRIPTIONS: dict[str, str] = {
    "imagenet": "7x7 convolution, stride 2, then 3x3 max pool: the paper's ImageNet stem",
    "cifar": "3x3 convolution, stride 1, no pooling: for small images (CIFAR, MNIST)",
    "deep": "Three 3x3 convolutions, then max pool (ResNet-C)",
}


def set_stem(arch: Architecture, **changes) -> Architecture:
    unknown = set(changes) - set(STEM_FIELDS)
    if unknown:
        raise ArchitectureError(f"the stem has no field {sorted(unknown)[0]!r}", "stem")
    if "kind" in changes:
        _check_kind(changes["kind"], STEM_KINDS, "stem kind", "stem.kind")
    return arch.replace(stem=dataclasses.replace(arch.stem, **changes))


def replace_stem(arch: Architecture, preset: str) -> Architecture:
    """Swap in one of :data:`STEM_PRESETS`, keeping the stem's width and bias."""
    if preset not in STEM_PRESETS:
        raise ArchitectureError(
            f"unknown stem {preset!r}; allowed: {', '.join(STEM_PRESETS)}", "stem"
        )
    stem = dataclasses.replace(STEM_PRESETS[preset], width=arch.stem.width, bias=arch.stem.bias,
                               batch_norm=arch.stem.batch_norm)
    return arch.replace(stem=stem)


def set_head(arch: Architecture, **changes) -> Architecture:
    unknown = set(changes) - set(HEAD_FIELDS)
    if unknown:
        raise ArchitectureError(f"the head has no field {sorted(unknown)[0]!r}", "head")
    if "pool" in changes:
        _check_kind(changes["pool"], POOL_KINDS, "pooling kind", "head.pool")
    return arch.replace(head=dataclasses.replace(arch.head, **changes))


def set_input(
    arch: Architecture,
    in_channels: int | None = None,
    num_classes: int | None = None,
    input_size: tuple[int, int] | int | None = None,
) -> Architecture:
    changes: dict = {}
    if in_channels is not None:
        changes["in_channels"] = in_channels
    if num_classes is not None:
        changes["num_classes"] = num_classes
    if input_size is not None:
        changes["input_size"] = (
            (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        )
    return arch.replace(**changes)


def set_name(arch: Architecture, name: str) -> Architecture:
    return arch.replace(name=name)


def set_all_shortcuts(arch: Architecture, kind: str) -> Architecture:
    _check_kind(kind, SHORTCUT_KINDS, "shortcut kind", "shortcut.kind")
    return _with_stages(arch, [
        dataclasses.replace(stage, shortcut=dataclasses.replace(stage.shortcut, kind=kind))
        for stage in arch.stages
    ])


# -- parts ----------------------------------------------------------------------------------


def part_exists(arch: Architecture, part: Part | None) -> bool:
    if part is None:
        return False
    if part.kind in (STEM, HEAD):
        return True
    if not 0 <= part.stage_index < len(arch.stages):
        return False
    if part.kind == STAGE:
        return True
    stage = arch.stages[part.stage_index]
    return part.count >= 1 and 0 <= part.block_index and part.block_index + part.count <= stage.num_blocks


def delete_part(arch: Architecture, part: Part) -> tuple[Architecture, Part | None]:
    """Remove a stage or a run of blocks; returns the result and what to select next."""
    if part.kind == STEM:
        raise ArchitectureError(
            "the stem cannot be removed; change it in the inspector or drop another stem on it",
            "stem",
        )
    if part.kind == HEAD:
        raise ArchitectureError(
            "the head cannot be removed; every network ends in pooling and a classifier",
            "head",
        )
    if part.kind == STAGE:
        result = remove_stage(arch, part.stage_index)
        return result, Part.stage(min(part.stage_index, len(result.stages) - 1))
    result = remove_blocks(arch, part.stage_index, part.block_index, part.count)
    if len(result.stages) < len(arch.stages):  # the stage went with its last block
        return result, Part.stage(min(part.stage_index, len(result.stages) - 1))
    remaining = result.stages[part.stage_index].num_blocks
    return result, Part.blocks(part.stage_index, min(part.block_index, remaining - 1))


def duplicate_part(arch: Architecture, part: Part) -> tuple[Architecture, Part]:
    """Duplicate a stage (inserted after it), or add one more block like the selected ones.

    A folded run of identical blocks (``x3``) gains one block (``x4``): that is what the
    user means by "another one of these" far more often than doubling the run.
    """
    if part.kind in (STEM, HEAD):
        raise ArchitectureError(
            f"a network has one {part.kind}; duplicate a stage or a block instead", part.kind
        )
    if part.kind == STAGE:
        return duplicate_stage(arch, part.stage_index), Part.stage(part.stage_index + 1)
    last = part.block_index + part.count - 1
    result = duplicate_block(arch, part.stage_index, last)
    if part.count == 1:
        return result, Part.blocks(part.stage_index, last + 1)
    return result, Part.blocks(part.stage_index, part.block_index, part.count + 1)


# -- what the views draw --------------------------------------------------------------------

IDENTITY = "identity"


def block_shortcut(arch: Architecture, stage_index: int, position: int) -> str | None:
    """How block ``position`` of a stage adds its input back: ``"identity"`` where the shapes
    match, the stage's shortcut kind where they change, None for a plain block (no shortcut).

    Mirrors :func:`resnet_gui.engine.model.make_shortcut`.
    """
    stage = arch.stages[stage_index]
    kind = stage.blocks[position]
    if kind.startswith("plain"):
        return None
    channels = stage_in_channels(arch)[stage_index]
    for earlier in stage.blocks[:position]:
        channels = stage.width * BLOCK_EXPANSION[earlier]
    stride = stage.stride if position == 0 else 1
    if stride == 1 and channels == stage.width * BLOCK_EXPANSION[kind]:
        return IDENTITY
    return stage.shortcut.kind


def block_in_channels(arch: Architecture, stage_index: int, position: int) -> int:
    stage = arch.stages[stage_index]
    channels = stage_in_channels(arch)[stage_index]
    for earlier in stage.blocks[:position]:
        channels = stage.width * BLOCK_EXPANSION[earlier]
    return channels


def fold_groups(arch: Architecture, stage_index: int) -> list[tuple[int, int]]:
    """Runs of identical blocks in a stage as ``(first, count)``: the same kind, the same
    shortcut, the same input and output shape. A stage of ``bottleneck x 4`` whose first
    block projects gives ``[(0, 1), (1, 3)]``."""
    stage = arch.stages[stage_index]
    groups: list[tuple[int, int]] = []
    previous = None
    for position, kind in enumerate(stage.blocks):
        signature = (
            kind,
            block_shortcut(arch, stage_index, position),
            block_in_channels(arch, stage_index, position),
            stage.stride if position == 0 else 1,
        )
        if groups and signature == previous:
            first, count = groups[-1]
            groups[-1] = (first, count + 1)
        else:
            groups.append((position, 1))
        previous = signature
    return groups


def set_blocks_kind(arch: Architecture, stage_index: int, first: int, count: int,
                    kind: str) -> Architecture:
    """Change the kind of ``count`` blocks starting at ``first`` (a folded run, or one)."""
    for position in range(first, first + count):
        arch = set_block_kind(arch, stage_index, position, kind)
    return arch
