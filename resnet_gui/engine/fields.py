"""Receptive fields: which input pixels a unit of a feature map can see.

Theoretical (exact, from the architecture): :class:`FieldTracker` follows every tensor
through the ops a network runs (a ``TorchDispatchMode``, on the ``meta`` device in the
analysis) and gives each its :class:`Field`: the input rows and columns unit (0, 0) sees and
the jump (stride in input pixels) between neighbouring units. A convolution or pooling
window of kernel k, stride s, padding p and dilation d turns (lo, hi, jump) into
(lo - p jump, hi + (d (k - 1) - p) jump, s jump); a sum of two paths (a residual block's
branch and shortcut) sees the union of both fields; an op that mixes every position (global
pooling, flattening) sees its whole input. Fields count padding: the often-quoted sizes
(35, 91, 267, 427 pixels at the stages of torchvision's resnet50) are these, unclipped;
:meth:`Field.box` clips a unit's field to the image.

Effective (Luo et al. 2016): :func:`effective_receptive_field` is |dy/dx| of one unit over
the input image at the current weights, which concentrates in the middle of the theoretical
field and grows more slowly than it with depth.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from resnet_gui.engine.inspect import eval_mode, named_layer, unwrap_compiled
from resnet_gui.errors import UserError

aten = torch.ops.aten


@dataclass(frozen=True)
class Span:
    """Along one axis: unit 0 sees input pixels ``lo`` to ``hi`` (inclusive; beyond the image
    where padding is), and unit i sees them shifted by ``i * jump``."""

    lo: int
    hi: int
    jump: int

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def window(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> Span:
        return Span(self.lo - padding * self.jump,
                    self.hi + (dilation * (kernel - 1) - padding) * self.jump,
                    self.jump * stride)

    def within(self, outer: Span) -> Span:
        """This span, measured in the units of a map whose own span is ``outer``, in the
        pixels ``outer`` is measured in."""
        return Span(outer.lo + self.lo * outer.jump, outer.hi + self.hi * outer.jump,
                    outer.jump * self.jump)

    def union(self, other: Span) -> Span:
        return Span(min(self.lo, other.lo), max(self.hi, other.hi), max(self.jump, other.jump))


@dataclass(frozen=True)
class Field:
    """The receptive field of a map's units: one :class:`Span` per axis."""

    rows: Span
    cols: Span

    @property
    def size(self) -> tuple[int, int]:
        """Height and width of a unit's field in input pixels (padding included)."""
        return self.rows.size, self.cols.size

    @property
    def jump(self) -> tuple[int, int]:
        return self.rows.jump, self.cols.jump

    def within(self, outer: Field) -> Field:
        return Field(self.rows.within(outer.rows), self.cols.within(outer.cols))

    def union(self, other: Field) -> Field:
        return Field(self.rows.union(other.rows), self.cols.union(other.cols))

    def box(self, row: int, col: int, height: int, width: int
            ) -> tuple[int, int, int, int] | None:
        """The pixels unit (row, col) sees in a height x width input, clipped to it, as
        (top, left, bottom, right) inclusive; None if the field lies wholly in padding."""
        top, bottom = self.rows.lo + row * self.rows.jump, self.rows.hi + row * self.rows.jump
        left, right = self.cols.lo + col * self.cols.jump, self.cols.hi + col * self.cols.jump
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, height - 1), \
            min(right, width - 1)
        return None if top > bottom or left > right else (top, left, bottom, right)


INPUT_FIELD = Field(Span(0, 0, 1), Span(0, 0, 1))  # a pixel of the input sees itself


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return default, default
    if isinstance(value, int):
        return value, value
    return (int(value[0]), int(value[-1])) if len(value) else (default, default)


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


class FieldTracker:
    """The :class:`Field` of every tensor an op produced from tracked tensors; call
    :meth:`record` for each op (see :class:`TrackFields`) after tagging the input."""

    def __init__(self) -> None:
        self._fields: dict[int, tuple[torch.Tensor, Field]] = {}  # id -> (kept alive, field)

    def tag(self, tensor: torch.Tensor, field: Field) -> None:
        self._fields[id(tensor)] = (tensor, field)

    def of(self, tensor: Any) -> Field | None:
        entry = self._fields.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is tensor else None

    def record(self, func, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = [a for a in _flat(args) if self.of(a) is not None]
        if not tensors:
            return
        field = self._output_field(func._overloadpacket, args, kwargs, tensors, out)
        for result in _flat(out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(result, torch.Tensor) and result.is_floating_point():
                self.tag(result, field)

    def _output_field(self, packet, args: tuple, kwargs: dict, tensors: list[torch.Tensor],
                      out: Any) -> Field:
        source = self.of(args[0]) if self.of(args[0]) is not None else self.of(tensors[0])
        if packet is aten.convolution and not _argument(args, kwargs, 6, "transposed", False):
            kernel = tuple(args[1].shape[2:])
            return _window(source, kernel, _pair(args[3], 1), _pair(args[4], 0),
                           _pair(args[5], 1))
        if packet in (aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d):
            kernel = _pair(_argument(args, kwargs, 1, "kernel_size"), 1)
            stride = _pair(_argument(args, kwargs, 2, "stride"), 0)
            stride = kernel if stride == (0, 0) else stride
            dilation = (_pair(_argument(args, kwargs, 4, "dilation"), 1)
                        if packet is not aten.avg_pool2d else (1, 1))
            return _window(source, kernel, stride, _pair(_argument(args, kwargs, 3, "padding"),
                                                         0), dilation)
        if packet is aten.slice and args[0].ndim == 4:
            return _sliced(source, args, kwargs)
        if packet is aten.constant_pad_nd and args[0].ndim == 4:
            pad = list(args[1]) + [0] * 4
            return Field(_shifted(source.rows, -pad[2]), _shifted(source.cols, -pad[0]))
        return self._mixed(args[0] if self.of(args[0]) is not None else tensors[0], tensors,
                           out)

    def _mixed(self, first: torch.Tensor, tensors: list[torch.Tensor], out: Any) -> Field:
        """Any other op: elementwise ops see the union of their inputs' fields; an op that
        changes the map's size (global pooling, flattening) sees all of its input."""
        field = self.of(first)
        for tensor in tensors[1:]:
            field = field.union(self.of(tensor))
        result = out[0] if isinstance(out, (tuple, list)) else out
        if first.ndim != 4 or not isinstance(result, torch.Tensor):
            return field
        if result.ndim == 4 and tuple(result.shape[2:]) == tuple(first.shape[2:]):
            return field
        height, width = first.shape[2:]
        return _window(field, (height, width), (height, width), (0, 0), (1, 1))


def _flat(values) -> list:
    flat = []
    for value in values:
        if isinstance(value, (tuple, list)):
            flat.extend(_flat(value))
        else:
            flat.append(value)
    return flat


def _window(field: Field, kernel, stride, padding, dilation) -> Field:
    return Field(field.rows.window(kernel[0], stride[0], padding[0], dilation[0]),
                 field.cols.window(kernel[-1], stride[-1], padding[-1], dilation[-1]))


def _shifted(span: Span, units: int) -> Span:
    return Span(span.lo + units * span.jump, span.hi + units * span.jump, span.jump)


def _sliced(field: Field, args: tuple, kwargs: dict) -> Field:
    """``x[..., start::step]`` along a spatial axis: unit i is input unit start + i step."""
    dim = _argument(args, kwargs, 1, "dim", 0) % 4
    start = _argument(args, kwargs, 2, "start", 0) or 0
    step = _argument(args, kwargs, 4, "step", 1) or 1
    size = args[0].shape[dim]
    start = max(0, start + size if start < 0 else start)
    if dim < 2:
        return field
    span = field.rows if dim == 2 else field.cols
    span = Span(span.lo + start * span.jump, span.hi + start * span.jump, span.jump * step)
    return Field(span, field.cols) if dim == 2 else Field(field.rows, span)


class TrackFields(TorchDispatchMode):
    """Run a network under this mode (after ``tracker.tag(input, INPUT_FIELD)``) to give
    every tensor it computes its field."""

    def __init__(self, tracker: FieldTracker) -> None:
        super().__init__()
        self.tracker = tracker

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.tracker.record(func, args, kwargs, out)
        return out


def receptive_fields(model: nn.Module, input_shape: tuple[int, int, int]
                     ) -> dict[str, Field]:
    """The theoretical field of every module's output in ``model`` (any network of
    convolutions and pools, a torchvision model too), from a copy of it run on ``meta``."""
    model = unwrap_compiled(model)
    meta = model if all(p.is_meta for p in model.parameters()) else copy.deepcopy(model).to(
        "meta")
    tracker = FieldTracker()
    fields: dict[str, Field] = {}
    handles = [module.register_forward_hook(_keep_field(tracker, fields, name))
               for name, module in meta.named_modules() if name]
    image = torch.empty((1, *input_shape), device="meta")
    tracker.tag(image, INPUT_FIELD)
    try:
        with torch.no_grad(), eval_mode(meta), TrackFields(tracker):
            meta(image)
    finally:
        for handle in handles:
            handle.remove()
    return fields


def _keep_field(tracker: FieldTracker, fields: dict[str, Field], name: str):
    def hook(_module, _args, output) -> None:
        field = tracker.of(output[0] if isinstance(output, (tuple, list)) else output)
        if field is not None:
            fields[name] = field
    return hook


def effective_receptive_field(model: nn.Module, image: torch.Tensor, layer: str,
                              row: int, col: int, channel: int | None = None) -> np.ndarray:
    """|dy/dx| of unit (row, col) of ``layer``'s maps (one channel, or all summed) over the
    prepared input ``image`` (1, C, H, W), summed over the input's channels: an (H, W)
    float32 heatmap scaled to a maximum of 1 (all 0 if the unit does not depend on the input).

    Eval mode for the call (switched back after); gradients are taken with respect to the
    image only, so the parameters' ``.grad`` stay untouched. Pass an idle network, or call it
    from the thread training it.
    """
    model = unwrap_compiled(model)
    module = named_layer(model, layer)
    parameter = next(model.parameters(), None)
    image = image.detach().to(parameter.device if parameter is not None else image.device)
    image = image.float().requires_grad_(True)
    captured: list[torch.Tensor] = []

    def hook(_module, _args, output) -> None:
        captured.append(output)
        raise _Reached  # nothing after the layer is needed, and nothing may write over it

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad(), eval_mode(model):
            model(image)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not captured:
        raise UserError(f"layer {layer!r} is not used in the forward pass; pick another layer")
    return _unit_gradient(captured[0], image, layer, row, col, channel)


class _Reached(Exception):
    """Ends a forward pass at the layer whose output we wanted."""


def _unit_gradient(output: torch.Tensor, image: torch.Tensor, layer: str, row: int, col: int,
                   channel: int | None) -> np.ndarray:
    if output.ndim != 4:
        raise UserError(f"{layer} gives a vector, not maps; pick a convolution, block or stage")
    channels, height, width = output.shape[1:]
    if not (0 <= row < height and 0 <= col < width):
        raise UserError(f"{layer}'s maps are {height}x{width}; pick a unit inside them "
                        f"(got row {row}, column {col})")
    if channel is not None and not 0 <= channel < channels:
        raise UserError(f"{layer} has {channels} channels; pick one from 0 to {channels - 1}")
    unit = output[0, :, row, col] if channel is None else output[0, channel, row, col]
    if not unit.requires_grad:
        return np.zeros(tuple(image.shape[2:]), np.float32)
    (gradient,) = torch.autograd.grad(unit.sum(), image, allow_unused=True)
    if gradient is None:
        return np.zeros(tuple(image.shape[2:]), np.float32)
    heat = gradient[0].abs().sum(dim=0).float().cpu().numpy()
    peak = float(heat.max())
    return (heat / peak if peak > 0 else heat).astype(np.float32)
