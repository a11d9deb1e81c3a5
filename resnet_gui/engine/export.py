"""Export an architecture: JSON, a standalone PyTorch file, ONNX, or a ``torch.export`` program.

The Python export is meant to be read: the chapter's shape (a residual block class, a stage
builder, the network written out stage by stage) with only the pieces the architecture uses,
importing nothing but torch. Its ``build_model()`` has exactly our state-dict keys and shapes,
so weights move between the two with ``load_state_dict(strict=True)``.

Every file is written atomically (temp file, fsync, rename): a failed export never leaves
half a file or damages an earlier one.
"""

from __future__ import annotations

import importlib.util
import io
import os
import textwrap
from pathlib import Path

import torch
from torch import nn

from resnet_gui.errors import ExportError
from resnet_gui.arch.model import Architecture, stage_in_channels, validate
from resnet_gui.arch.serialize import atomic_write_bytes, dumps

FORMATS: dict[str, str] = {
    "json": "architecture file for resnet-gui (.json)",
    "py": "standalone PyTorch code (.py)",
    "onnx": "ONNX model with the current weights (.onnx)",
    "pt2": "torch.export program with the current weights (.pt2)",
}

# -- the standalone Python file -----------------------------------------------------------

_HEADER = '''\
"""{title}

Exported from resnet-gui. Standalone: needs only PyTorch.

    model = build_model()        # input {input_text}, {classes} classes
    model.load_state_dict(state_dict)   # resnet-gui's weights: the same names and shapes

Residual networks: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
(2016){preact_ref}.
"""

import torch
import torch.nn.functional as F
from torch import nn
'''

_ZERO_PAD = '''

class ZeroPadShortcut(nn.Module):
    """Option A of the paper: subsample by the stride, add zero channels. No parameters."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
'''

_SHORTCUT_HEAD = '''

def make_shortcut(in_channels, out_channels, stride, kind, batch_norm, bias):
    """None (identity) where the shapes match; otherwise adapt the input to the block's output."""
    if stride == 1 and in_channels == out_channels:
        return None
'''

_SHORTCUT_ZERO_PAD = '''\
    if kind == "zero-pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
'''

_SHORTCUT_CONV = '''\
    layers = []
    if kind == "avgpool-projection":  # ResNet-D: average first, so the 1x1 conv sees every pixel
        pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        layers += [pool if stride > 1 else nn.Identity(), nn.Conv2d(in_channels, out_channels, 1, bias=bias)]
    else:  # a 1x1 projection with the block's stride (option B)
        layers.append(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias))
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)
'''

_BLOCKS: dict[str, str] = {
    "basic": '''

class Residual(nn.Module):
    """Basic block: two 3x3 convolutions, added to the shortcut, then ReLU."""

    expansion = 1
    has_shortcut = True

    def __init__(self, in_channels, width, stride, shortcut, bias):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        if self.has_shortcut:
            self.downsample = make_shortcut(in_channels, width, stride, **shortcut)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.has_shortcut:
            y = y + (x if self.downsample is None else self.downsample(x))
        return F.relu(y)
''',
    "plain": '''

class Plain(Residual):
    """The basic block's layers without the shortcut, for comparison."""

    has_shortcut = False
''',
    "bottleneck": '''

class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4, added to the shortcut."""

    expansion = 4
    has_shortcut = True

    def __init__(self, in_channels, width, stride, shortcut, bias):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=bias)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if self.has_shortcut:
            self.downsample = make_shortcut(in_channels, out_channels, stride, **shortcut)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.has_shortcut:
            y = y + (x if self.downsample is None else self.downsample(x))
        return F.relu(y)
''',
    "plain-bottleneck": '''

class PlainBottleneck(Bottleneck):
    """The bottleneck's layers without the shortcut, for comparison."""

    has_shortcut = False
''',
    "preact-basic": '''

class PreActResidual(nn.Module):
    """Pre-activation basic block (He et al., Identity Mappings): BN-ReLU-conv twice.

    Where the shapes change, the shortcut takes the pre-activated input.
    """

    expansion = 1

    def __init__(self, in_channels, width, stride, shortcut, bias):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=bias)
        self.downsample = make_shortcut(in_channels, width, stride, **dict(shortcut, batch_norm=False))

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        y = self.conv1(pre)
        y = self.conv2(F.relu(self.bn2(y)))
        return y + shortcut
''',
    "preact-bottleneck": '''

class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: BN-ReLU before each of the 1x1, 3x3 and 1x1 convolutions."""

    expansion = 4

    def __init__(self, in_channels, width, stride, shortcut, bias):
        super().__init__()
        out_channels = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=bias)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=bias)
        self.downsample = make_shortcut(in_channels, out_channels, stride, **dict(shortcut, batch_norm=False))

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        y = self.conv1(pre)
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + shortcut
''',
}
_BLOCK_CLASS_NAMES = {
    "basic": "Residual",
    "plain": "Plain",
    "bottleneck": "Bottleneck",
    "plain-bottleneck": "PlainBottleneck",
    "preact-basic": "PreActResidual",
    "preact-bottleneck": "PreActBottleneck",
}

_STAGE_BUILDER = '''

def resnet_stage(in_channels, width, blocks, stride, shortcut, bias=False):
    """A stage of residual blocks; the first block takes the stride and changes the channels."""
    layers = []
    for i, block in enumerate(blocks):
        layers.append(block(in_channels, width, stride if i == 0 else 1, shortcut, bias))
        in_channels = width * block.expansion
    return nn.Sequential(*layers)
'''


def _blocks_expression(kinds: tuple[str, ...]) -> str:
    """``[Bottleneck] * 3`` for a uniform stage, else the list written out."""
    names = [_BLOCK_CLASS_NAMES[kind] for kind in kinds]
    if len(set(names)) == 1:
        return f"[{names[0]}] * {len(names)}"
    return "[" + ", ".join(names) + "]"


def _stem_lines(arch: Architecture) -> list[str]:
    stem, c = arch.stem, arch.in_channels
    if stem.kind == "deep":
        half = stem.width // 2
        lines = [
            "# Deep stem (ResNet-C): three 3x3 convolutions instead of one large one.",
            "self.conv1 = nn.Sequential(",
            f"    nn.Conv2d({c}, {half}, 3, stride={stem.stride}, padding=1, bias={stem.bias}),",
            f"    nn.BatchNorm2d({half}), nn.ReLU(),",
            f"    nn.Conv2d({half}, {half}, 3, padding=1, bias={stem.bias}),",
            f"    nn.BatchNorm2d({half}), nn.ReLU(),",
            f"    nn.Conv2d({half}, {stem.width}, 3, padding=1, bias={stem.bias}),",
            ")",
        ]
    else:
        lines = [
            f"self.conv1 = nn.Conv2d({c}, {stem.width}, kernel_size={stem.kernel}, "
            f"stride={stem.stride}, padding={stem.effective_padding}, bias={stem.bias})"
        ]
    if stem.batch_norm:
        lines.append(f"self.bn1 = nn.BatchNorm2d({stem.width})")
    if stem.max_pool:
        lines.append("self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)")
    return lines


def _docstring_text(text: str) -> str:
    """``text`` for inside a triple-quoted docstring: quotes and backslashes cannot end it or
    start an escape (validation has already refused control characters)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_python_source(arch: Architecture) -> str:
    """A readable, standalone PyTorch file whose ``build_model()`` matches our state dict."""
    validate(arch)
    kinds = {kind for stage in arch.stages for kind in stage.blocks}
    shortcut_kinds = {stage.shortcut.kind for stage in arch.stages}
    preact = any(kind.startswith("preact") for kind in kinds)
    in_channels = stage_in_channels(arch)
    out_channels = arch.stages[-1].out_channels

    parts = [
        _HEADER.format(
            title=f"{_docstring_text(arch.name)}: a residual network with "
            f"{arch.num_blocks} blocks in {len(arch.stages)} stages",
            input_text=f"{arch.in_channels}x{arch.input_size[0]}x{arch.input_size[1]}",
            classes=arch.num_classes,
            preact_ref=(
                ' and "Identity Mappings in Deep Residual Networks" (2016)' if preact else ""
            ),
        )
    ]
    if "zero-pad" in shortcut_kinds:
        parts.append(_ZERO_PAD)
    parts.append(_SHORTCUT_HEAD)
    if "zero-pad" in shortcut_kinds:
        parts.append(_SHORTCUT_ZERO_PAD)
    if shortcut_kinds - {"zero-pad"}:
        parts.append(_SHORTCUT_CONV)
    else:
        parts.append('    raise ValueError(f"unknown shortcut kind {kind!r}")\n')
    # Base classes first: the plain blocks subclass their residual counterparts.
    for kind in ("basic", "bottleneck", "preact-basic", "preact-bottleneck"):
        if kind in kinds or f"plain-{kind}" in kinds or (kind == "basic" and "plain" in kinds):
            parts.append(_BLOCKS[kind])
    for kind in ("plain", "plain-bottleneck"):
        if kind in kinds:
            parts.append(_BLOCKS[kind])
    parts.append(_STAGE_BUILDER)

    def shortcut_text(shortcut) -> str:
        return (f"dict(kind={shortcut.kind!r}, batch_norm={shortcut.batch_norm}, "
                f"bias={shortcut.bias})")

    init = _stem_lines(arch)
    shared_shortcut = len({stage.shortcut for stage in arch.stages}) == 1
    if shared_shortcut:
        init.append(f"shortcut = {shortcut_text(arch.stages[0].shortcut)}")
    for index, (stage, channels) in enumerate(zip(arch.stages, in_channels)):
        shortcut = "shortcut" if shared_shortcut else shortcut_text(stage.shortcut)
        bias = f", bias={stage.conv_bias}" if stage.conv_bias else ""
        init.append(
            f"self.layer{index + 1} = resnet_stage({channels}, {stage.width}, "
            f"{_blocks_expression(stage.blocks)}, stride={stage.stride}, "
            f"shortcut={shortcut}{bias})"
        )
    if arch.final_preactivation:
        init.append("# Pre-activation blocks end un-normalised: BN-ReLU before pooling.")
        init.append(f"self.final_bn = nn.BatchNorm2d({out_channels})")
    pool = "AdaptiveAvgPool2d" if arch.head.pool == "avg" else "AdaptiveMaxPool2d"
    init.append(f"self.global_pool = nn.{pool}(1)")
    if arch.head.dropout > 0:
        init.append(f"self.dropout = nn.Dropout({arch.head.dropout})")
    init.append(f"self.fc = nn.Linear({out_channels}, {arch.num_classes})")

    stem_expr = "self.conv1(x)"
    if arch.stem.batch_norm:
        stem_expr = f"self.bn1({stem_expr})"
    stem_expr = f"F.relu({stem_expr})"
    if arch.stem.max_pool:
        stem_expr = f"self.maxpool({stem_expr})"
    forward = [f"x = {stem_expr}"]
    forward += [f"x = self.layer{i + 1}(x)" for i in range(len(arch.stages))]
    if arch.final_preactivation:
        forward.append("x = F.relu(self.final_bn(x))")
    forward.append("x = torch.flatten(self.global_pool(x), 1)")
    if arch.head.dropout > 0:
        forward.append("x = self.dropout(x)")
    forward.append("return self.fc(x)")

    body = textwrap.indent("\n".join(init), " " * 8)
    steps = textwrap.indent("\n".join(forward), " " * 8)
    c, (h, w) = arch.in_channels, arch.input_size
    parts.append(
        f'''

class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
{body}

    def forward(self, x):
{steps}


def build_model():
    return ResNet()


if __name__ == "__main__":
    model = build_model().eval()
    print(model(torch.randn(1, {c}, {h}, {w})).shape)  # torch.Size([1, {arch.num_classes}])
'''
    )
    return "".join(parts)


# -- exporting files ----------------------------------------------------------------------


def _example_input(arch: Architecture, model: nn.Module) -> torch.Tensor:
    # A batch of 2: torch.export specialises a batch of 1 to a constant.
    from resnet_gui.engine.memory import EXPORT_EXAMPLE_BATCH

    device = next(model.parameters()).device
    return torch.randn(EXPORT_EXAMPLE_BATCH, arch.in_channels, *arch.input_size, device=device)


def _require(*packages: str, purpose: str) -> None:
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"{purpose} needs the {' and '.join(missing)} package"
            f"{'s' if len(missing) > 1 else ''}; install with: pip install {' '.join(missing)}"
        )


def _traced_bytes(arch: Architecture, model: nn.Module | None, to_bytes) -> bytes:
    """Run ``to_bytes`` on the model in eval mode, leaving a caller's model as it was."""
    if model is None:
        from resnet_gui.engine.analysis import analyse
        from resnet_gui.engine.memory import bytes_to_export, require_memory
        from resnet_gui.engine.model import build_model

        analysis = analyse(arch)
        require_memory(bytes_to_export(analysis), "export it with weights", analysis)
        model = build_model(arch)
    was_training = model.training
    model.eval()
    try:
        return to_bytes(arch, model)
    finally:
        model.train(was_training)


def _onnx_bytes(arch: Architecture, model: nn.Module) -> bytes:
    _require("onnx", "onnxscript", purpose="ONNX export")
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.onnx.export(
            model, (_example_input(arch, model),), dynamo=True, dynamic_shapes=({0: batch},),
            input_names=["images"], output_names=["logits"], verbose=False,
        )
    except ImportError as error:
        raise ExportError(f"ONNX export needs a package that is missing ({error}); "
                          "install with: pip install onnx onnxscript") from None
    return program.model_proto.SerializeToString()


def _pt2_bytes(arch: Architecture, model: nn.Module) -> bytes:
    if not hasattr(torch, "export") or not hasattr(torch.export, "save"):
        raise ExportError(
            f"pt2 export needs torch.export (PyTorch 2.1 or newer, this is {torch.__version__}); "
            "upgrade torch"
        )
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(model, (_example_input(arch, model),), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def export(
    arch: Architecture,
    fmt: str,
    path: str | os.PathLike,
    model: nn.Module | None = None,
) -> Path:
    """Write ``arch`` as ``fmt`` (json, py, onnx, pt2) to ``path``; return the path.

    ONNX and pt2 carry weights: those of ``model`` when given (a trained network; it must be
    built from ``arch``), else of a freshly initialised one.
    """
    validate(arch)
    path = Path(path)
    if fmt == "json":
        data = dumps(arch).encode("utf-8")
    elif fmt == "py":
        data = to_python_source(arch).encode("utf-8")
    elif fmt == "onnx":
        data = _traced_bytes(arch, model, _onnx_bytes)
    elif fmt == "pt2":
        data = _traced_bytes(arch, model, _pt2_bytes)
    else:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    atomic_write_bytes(path, data)
    return path

