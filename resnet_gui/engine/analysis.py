"""Analyse an architecture layer by layer: output shapes, parameters, multiply-adds.

Shapes come from running the real modules on the ``meta`` device (nothing is allocated), so
they are what PyTorch itself computes. Multiply-adds come from the formulas of
``torch.utils.flop_counter`` (the ones ``FlopCounterMode`` uses; one multiply-add = 2 flops),
attributed to the innermost module running, so each leaf layer is counted once and a group's
count is the sum of its layers.

Speed: meta kernels run in Python and cost about a millisecond per op, so running every block
of a deep network would be slow. A block's rows depend only on its kind, channels, stride,
shortcut, bias and input size, so each distinct block is analysed once and kept in an LRU
cache shared across calls: resnet152 analyses 8 distinct blocks instead of 50, and the window
re-analyses after an edit by running only the blocks the edit changed.

Thread safety: the caches are ``functools.lru_cache`` (internally locked) over pure
functions returning immutable tuples; the flop-counting dispatch mode, the ``meta`` device
context and ``no_grad`` are thread-local, and hooks go only on modules built for the call.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import (
    MAX_INPUT_SIZE,
    MAX_WIDTH,
    Architecture,
    Head,
    Shortcut,
    Stem,
    validate,
)
from resnet_gui.engine.fields import INPUT_FIELD, Field, FieldTracker
from resnet_gui.engine.model import BLOCK_CLASSES, build_head, build_stem

FLOAT32_BYTES = 4
CACHE_SIZE = 512  # distinct blocks kept; a block's entry is a few rows of small tuples


@dataclass(frozen=True)
class LayerRow:
    name: str  # qualified module name: "layer2.0.conv1", "layer2.0", "layer2", "fc"
    type: str  # class name ("Conv2d", "BasicBlock"); stages show as "Stage"
    depth: int  # 0 top level, 1 blocks, 2 their layers, 3 inside a downsample
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int  # including children
    trainable_params: int
    macs: int  # including children; each leaf layer counted once
    is_leaf: bool
    # The input pixels a unit of the output sees (see engine/fields.py); None if unknown.
    field: Field | None = None

    @property
    def receptive_field(self) -> tuple[int, int] | None:
        """Height and width, in input pixels, of what one unit of the output sees."""
        return None if self.field is None else self.field.size

    @property
    def jump(self) -> tuple[int, int] | None:
        """Input pixels between the fields of neighbouring units (the stride so far)."""
        return None if self.field is None else self.field.jump


@dataclass(frozen=True)
class Analysis:
    arch: Architecture  # the architecture analysed, with in_channels/input_size of input_shape
    input_shape: tuple[int, int, int]
    layers: tuple[LayerRow, ...]  # pre-order: a group row, then its children; no nn.Identity
    total_params: int
    trainable_params: int
    total_macs: int
    activation_bytes: int  # float32 bytes of every leaf layer's output, for one example
    warnings: tuple[str, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape

    @property
    def leaves(self) -> tuple[LayerRow, ...]:
        return tuple(row for row in self.layers if row.is_leaf)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(f"layer{i + 1}" for i in range(len(self.arch.stages)))

    def row(self, name: str) -> LayerRow:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    def children(self, name: str) -> tuple[LayerRow, ...]:
        """The rows directly under ``name`` (a stage's blocks, a block's layers)."""
        depth = name.count(".") + 1
        prefix = name + "."
        return tuple(r for r in self.layers if r.depth == depth and r.name.startswith(prefix))

    def stage_output_shape(self, index: int) -> tuple[int, ...]:
        return self.row(f"layer{index + 1}").output_shape

    def stage_input_shape(self, index: int) -> tuple[int, ...]:
        if index == 0:
            return self.stem_output_shape
        return self.stage_output_shape(index - 1)

    @property
    def stem_output_shape(self) -> tuple[int, ...]:
        first_stage = self.layers.index(self.row("layer1"))
        return self.layers[first_stage - 1].output_shape


# -- counting -----------------------------------------------------------------------------

# Queries about a tensor's layout that FlopCounterMode also passes straight through.
_METADATA_OPS = {
    torch.ops.aten.is_contiguous.default,
    torch.ops.aten.is_contiguous.memory_format,
    torch.ops.aten.is_strides_like_format.default,
    torch.ops.aten.is_non_overlapping_and_dense.default,
    torch.ops.aten.size.default,
    torch.ops.aten.sym_size.default,
    torch.ops.aten.stride.default,
    torch.ops.aten.sym_stride.default,
    torch.ops.aten.storage_offset.default,
    torch.ops.aten.sym_storage_offset.default,
    torch.ops.aten.numel.default,
    torch.ops.aten.sym_numel.default,
    torch.ops.aten.dim.default,
    torch.ops.prim.layout.default,
}


class _FlopCounter(TorchDispatchMode):
    """Adds torch's flop formula of each op to the module running it.

    The counting rule of ``FlopCounterMode`` (its formula registry), with two differences:
    - no module tracker: that one installs global module hooks, which would also fire on a
      model training in another thread; hooks on our own modules say who is running;
    - ops without a formula are not decomposed: for the layers resnet-gui builds (batch norm,
      pooling, padding, elementwise) no decomposition holds a counted op, and decomposing
      batch norm was most of the analysis time. The randomized test checks the totals
      against ``FlopCounterMode`` itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.running: list[str] = [""]  # module names, innermost last
        self.flops: dict[str, int] = {}
        self.fields = FieldTracker()  # receptive fields, relative to the part's input

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _METADATA_OPS:
            return NotImplemented
        out = func(*args, **kwargs)
        self.fields.record(func, args, kwargs, out)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            name = self.running[-1]
            self.flops[name] = self.flops.get(name, 0) + int(formula(*args, **kwargs, out_val=out))
        return out


@dataclass(frozen=True)
class _Row:
    """A row relative to the analysed part (``""`` is the part's root module)."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    is_leaf: bool
    field: Field | None  # relative to the part's input: its pixels are the units here


@dataclass(frozen=True)
class _Part:
    rows: tuple[_Row, ...]
    output_shape: tuple[int, ...]
    output_field: Field


class _TooSmall(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _too_small_message(module: nn.Module, in_shape: tuple[int, ...], error: Exception) -> str:
    kind = type(module).__name__
    maps = f"{_shape_text(in_shape[-2:])} maps" if len(in_shape) >= 2 else _shape_text(in_shape)
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, padding = _pair(module.kernel_size), _pair(module.padding)
        needed = tuple(max(1, k - 2 * p) for k, p in zip(kernel, padding))
        pad_text = str(padding[0]) if padding[0] == padding[1] else _shape_text(padding)
        return (
            f"this {kind} receives {maps}, but its {_shape_text(kernel)} kernel with padding "
            f"{pad_text} needs at least {_shape_text(needed)}; use a larger input, "
            "a smaller kernel or more padding"
        )
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"this {kind} cannot process {maps} ({reason}); use a larger input"


def _shape_preserving_batch_norm(module: nn.BatchNorm2d):
    """Batch norm keeps its input's shape and has no flop formula, but its meta kernel is a
    Python decomposition of some 25 ops: most of the analysis time. Check what it would
    check, and pass the input on."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != module.num_features:
            raise RuntimeError(
                f"expected a 4-D input with {module.num_features} channels, got {tuple(x.shape)}"
            )
        return x

    return forward


def _analyse_part(root: nn.Module, in_shape: tuple[int, ...]) -> _Part:
    """Run ``root`` (built on meta) on one example, recording every module's output."""
    named = [(name, module) for name, module in root.named_modules() if not isinstance(module, nn.Identity)]
    for _, module in named:
        if type(module) is nn.BatchNorm2d:  # modules built for this call only: safe to patch
            module.forward = _shape_preserving_batch_norm(module)
    counter = _FlopCounter()
    outputs: dict[str, tuple[int, ...]] = {}
    fields: dict[str, Field | None] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    handles = []

    def pre_hook(name):
        def hook(module, args):
            counter.running.append(name)
            inputs[name] = tuple(args[0].shape[1:])
        return hook

    def post_hook(name):
        def hook(module, args, output):
            counter.running.pop()
            outputs[name] = tuple(int(size) for size in output.shape[1:])
            fields[name] = counter.fields.of(output)
        return hook

    for name, module in named:
        if name:
            handles.append(module.register_forward_pre_hook(pre_hook(name)))
            handles.append(module.register_forward_hook(post_hook(name)))
    root.eval()  # batch norm on one example; eval also skips the running-stat updates
    image = torch.empty((1, *in_shape), device="meta")
    counter.fields.tag(image, INPUT_FIELD)
    try:
        with torch.no_grad(), counter:
            out = root(image)
    except Exception as error:  # a meta kernel refusing a shape: name the layer it ran in
        name = counter.running[-1]
        module = root.get_submodule(name) if name else root
        raise _TooSmall(name, _too_small_message(module, inputs.get(name, in_shape), error)) from None
    finally:
        for handle in handles:
            handle.remove()
    out_shape = tuple(int(size) for size in out.shape[1:])
    outputs[""] = out_shape
    for name, size in outputs.items():
        if 0 in size:  # some kernels return empty maps instead of refusing them
            module = root.get_submodule(name) if name else root
            raise _TooSmall(name, _too_small_message(module, inputs.get(name, in_shape), ValueError(
                f"its output would be {_shape_text(size)}")))

    rows = []
    own_params = {name: sum(p.numel() for p in module.parameters()) for name, module in named}
    for name, module in named:
        prefix = name + "." if name else ""
        macs = sum(
            flops for owner, flops in counter.flops.items()
            if owner == name or owner.startswith(prefix)
        ) // 2
        rows.append(
            _Row(
                name=name,
                type=type(module).__name__,
                output_shape=outputs.get(name, ()),
                params=own_params[name],
                macs=macs,
                is_leaf=not any(True for _ in module.children()),
                field=counter.fields.of(out) if not name else fields.get(name),
            )
        )
    return _Part(rows=tuple(rows), output_shape=out_shape,
                 output_field=counter.fields.of(out) or INPUT_FIELD)


def _on_meta(build):
    with torch.device("meta"):
        return build()


@functools.lru_cache(maxsize=CACHE_SIZE)
def _stem_part(stem: Stem, in_shape: tuple[int, int, int]) -> _Part:
    modules = _on_meta(lambda: nn.Sequential(OrderedDict(build_stem(stem, in_shape[0]))))
    return _analyse_part(modules, in_shape)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _block_part(
    kind: str,
    in_shape: tuple[int, int, int],
    width: int,
    stride: int,
    shortcut: Shortcut,
    conv_bias: bool,
) -> _Part:
    block = _on_meta(lambda: BLOCK_CLASSES[kind](in_shape[0], width, stride, shortcut, conv_bias))
    return _analyse_part(block, in_shape)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _head_part(
    head: Head, in_shape: tuple[int, int, int], num_classes: int, final_preactivation: bool
) -> _Part:
    modules = _on_meta(
        lambda: nn.Sequential(
            OrderedDict(build_head(head, in_shape[0], num_classes, final_preactivation))
        )
    )
    return _analyse_part(modules, in_shape)


def clear_cache() -> None:
    """Forget analysed parts (benchmarks measure a cold analysis with this)."""
    for cached in (_stem_part, _block_part, _head_part):
        cached.cache_clear()


# -- assembly -----------------------------------------------------------------------------


def _qualified(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _layer_rows(prefix: str, part: _Part, include_root: bool, input_field: Field
                ) -> list[LayerRow]:
    """The part's rows named in the whole network, their fields measured in its input."""
    rows = []
    for row in part.rows:
        if not row.name and not include_root:
            continue
        name = _qualified(prefix, row.name)
        rows.append(
            LayerRow(
                name=name,
                type=row.type,
                depth=name.count("."),
                output_shape=row.output_shape,
                params=row.params,
                trainable_params=row.params,  # a freshly built network trains every parameter
                macs=row.macs,
                is_leaf=row.is_leaf,
                field=None if row.field is None else row.field.within(input_field),
            )
        )
    return rows


def _run(part_function, path_prefix: str, *args) -> _Part:
    try:
        return part_function(*args)
    except _TooSmall as error:
        raise ArchitectureError(error.message, _qualified(path_prefix, error.name)) from None


def _check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ArchitectureError(
            f"must be channels, height, width (for example 3,224,224), got {input_shape!r}",
            "input_shape",
        )
    for axis, value, maximum in zip(
        ("channels", "height", "width"), input_shape, (MAX_WIDTH, MAX_INPUT_SIZE, MAX_INPUT_SIZE)
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            raise ArchitectureError(
                f"{axis} must be a whole number from 1 to {maximum}, got {value!r}", "input_shape"
            )
    return tuple(input_shape)


def analyse(arch: Architecture, input_shape: tuple[int, int, int] | None = None) -> Analysis:
    """Shapes, parameters and multiply-adds of every layer of ``arch`` for one example.

    ``input_shape`` (channels, height, width) defaults to the architecture's own; its channels
    override ``arch.in_channels``. Raises :class:`ArchitectureError` naming the field of an
    invalid architecture, or the first layer whose input is too small.
    """
    validate(arch)
    if input_shape is None:
        input_shape = (arch.in_channels, *arch.input_size)
    input_shape = _check_input_shape(input_shape)
    if (arch.in_channels, *arch.input_size) != input_shape:
        arch = arch.replace(in_channels=input_shape[0], input_size=tuple(input_shape[1:]))

    layers: list[LayerRow] = []
    warnings: list[str] = []
    part = _run(_stem_part, "", arch.stem, input_shape)
    layers += _layer_rows("", part, include_root=False, input_field=INPUT_FIELD)
    shape, field = part.output_shape, part.output_field
    for index, stage in enumerate(arch.stages):
        stage_name = f"layer{index + 1}"
        if stage.stride > 1 and shape[1:] == (1, 1):
            warnings.append(
                f"{stage_name}: the maps are already 1x1, so its stride {stage.stride} no longer "
                "downsamples; use a larger input or fewer strided stages"
            )
        stage_rows: list[LayerRow] = []
        for position, kind in enumerate(stage.blocks):
            block_name = f"{stage_name}.{position}"
            part = _run(
                _block_part, block_name, kind, shape, stage.width,
                stage.stride if position == 0 else 1, stage.shortcut, stage.conv_bias,
            )
            stage_rows += _layer_rows(block_name, part, include_root=True, input_field=field)
            shape, field = part.output_shape, part.output_field.within(field)
        blocks = [row for row in stage_rows if row.depth == 1]
        layers.append(
            LayerRow(
                name=stage_name,
                type="Stage",
                depth=0,
                output_shape=shape,
                params=sum(row.params for row in blocks),
                trainable_params=sum(row.trainable_params for row in blocks),
                macs=sum(row.macs for row in blocks),
                is_leaf=False,
                field=field,
            )
        )
        layers += stage_rows
    part = _run(_head_part, "", arch.head, shape, arch.num_classes, arch.final_preactivation)
    layers += _layer_rows("", part, include_root=False, input_field=field)

    leaves = [row for row in layers if row.is_leaf]
    return Analysis(
        arch=arch,
        input_shape=input_shape,
        layers=tuple(layers),
        total_params=sum(row.params for row in leaves),
        trainable_params=sum(row.trainable_params for row in leaves),
        total_macs=sum(row.macs for row in leaves),
        activation_bytes=FLOAT32_BYTES * sum(math.prod(row.output_shape) for row in leaves),
        warnings=tuple(warnings),
    )
