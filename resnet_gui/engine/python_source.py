"""The standalone Python export: a readable PyTorch file for an architecture, and for a
trained network its class names, preprocessing and a ``load_model()``.

The file is meant to be read: the chapter's shape (a residual block class, a stage builder,
the network written out stage by stage) with only the pieces the architecture uses, importing
nothing but torch. Its ``build_model()`` has exactly our state-dict keys and shapes, so
weights move between the two with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from resnet_gui.arch.model import Architecture, stage_in_channels, validate

if TYPE_CHECKING:
    from resnet_gui.engine.trained import Preprocessing

_HEADER = '''\
"""{title}

Exported from resnet-gui. Standalone: needs only PyTorch.

{usage}
Residual networks: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
(2016){preact_ref}.
"""

{extra_imports}import torch
import torch.nn.functional as F
from torch import nn
'''

_ARCH_USAGE = """\
    model = build_model()        # input {input_text}, {classes} classes
    model.load_state_dict(state_dict)   # resnet-gui's weights: the same names and shapes
"""

_TRAINED_USAGE = """\
    model = load_model()         # the trained network, its weights read from beside this file
    probabilities = model(preprocess(images)).softmax(dim=1)  # uint8 images, as in training
    CLASS_NAMES[int(probabilities.argmax(dim=1)[0])]
"""

# {{ and }} are literal braces: the text goes through str.format.
_TRAINED = '''

# The classes, and how the training images became the network's input{dataset}: uint8 images
# of IMAGE_SIZE (height, width) with IMAGE_CHANNELS channels, resized to INPUT_SIZE, then
# normalised per channel with MEAN and STD (of pixels scaled to [0, 1]).
CLASS_NAMES = {class_names}
IMAGE_CHANNELS = {channels}
IMAGE_SIZE = {image_size}
INPUT_SIZE = {input_size}
MEAN = {mean}
STD = {std}
WEIGHTS_FILE = Path(__file__).with_name({weights_file})


def preprocess(images):
    """uint8 images (N, IMAGE_CHANNELS, *IMAGE_SIZE) -> the network's input, as in training."""
    x = images.float()
    if tuple(x.shape[-2:]) != INPUT_SIZE:
        x = F.interpolate(x, size=INPUT_SIZE, mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > INPUT_SIZE[1])
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return torch.addcmul(-mean / std, x, 1.0 / (255.0 * std))  # (x / 255 - mean) / std


def load_model():
    """The trained network in eval mode, with the weights saved beside this file."""
    model = build_model()
    model.load_state_dict(torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True))
    return model.eval()


if __name__ == "__main__":
    model = load_model()
    images = torch.zeros(1, IMAGE_CHANNELS, *IMAGE_SIZE, dtype=torch.uint8)  # a black image
    with torch.no_grad():
        probabilities = model(preprocess(images)).softmax(dim=1)[0]
    print({{name: round(float(p), 4) for name, p in zip(CLASS_NAMES, probabilities)}})
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


def _header(arch: Architecture, kinds: set[str], trained: bool) -> str:
    preact = any(kind.startswith("preact") for kind in kinds)
    usage = _TRAINED_USAGE if trained else _ARCH_USAGE
    return _HEADER.format(
        title=f"{_docstring_text(arch.name)}: a {'trained ' if trained else ''}residual network "
        f"with {arch.num_blocks} blocks in {len(arch.stages)} stages",
        usage=usage.format(input_text=f"{arch.in_channels}x{arch.input_size[0]}x"
                           f"{arch.input_size[1]}", classes=arch.num_classes),
        preact_ref=' and "Identity Mappings in Deep Residual Networks" (2016)' if preact else "",
        extra_imports="from pathlib import Path\n\n" if trained else "",
    )


def _shortcut_parts(shortcut_kinds: set[str]) -> list[str]:
    parts = [_ZERO_PAD] if "zero-pad" in shortcut_kinds else []
    parts.append(_SHORTCUT_HEAD)
    if "zero-pad" in shortcut_kinds:
        parts.append(_SHORTCUT_ZERO_PAD)
    if shortcut_kinds - {"zero-pad"}:
        parts.append(_SHORTCUT_CONV)
    else:
        parts.append('    raise ValueError(f"unknown shortcut kind {kind!r}")\n')
    return parts


def _block_parts(kinds: set[str]) -> list[str]:
    # Base classes first: the plain blocks subclass their residual counterparts.
    parts = [_BLOCKS[kind] for kind in ("basic", "bottleneck", "preact-basic", "preact-bottleneck")
             if kind in kinds or f"plain-{kind}" in kinds or (kind == "basic" and "plain" in kinds)]
    return parts + [_BLOCKS[kind] for kind in ("plain", "plain-bottleneck") if kind in kinds]


def _shortcut_text(shortcut) -> str:
    return f"dict(kind={shortcut.kind!r}, batch_norm={shortcut.batch_norm}, bias={shortcut.bias})"


def _init_lines(arch: Architecture) -> list[str]:
    """The body of ``ResNet.__init__``: the stem, the stages, the head."""
    init = _stem_lines(arch)
    shared_shortcut = len({stage.shortcut for stage in arch.stages}) == 1
    if shared_shortcut:
        init.append(f"shortcut = {_shortcut_text(arch.stages[0].shortcut)}")
    for index, (stage, channels) in enumerate(zip(arch.stages, stage_in_channels(arch))):
        shortcut = "shortcut" if shared_shortcut else _shortcut_text(stage.shortcut)
        bias = f", bias={stage.conv_bias}" if stage.conv_bias else ""
        init.append(
            f"self.layer{index + 1} = resnet_stage({channels}, {stage.width}, "
            f"{_blocks_expression(stage.blocks)}, stride={stage.stride}, "
            f"shortcut={shortcut}{bias})"
        )
    out_channels = arch.stages[-1].out_channels
    if arch.final_preactivation:
        init.append("# Pre-activation blocks end un-normalised: BN-ReLU before pooling.")
        init.append(f"self.final_bn = nn.BatchNorm2d({out_channels})")
    pool = "AdaptiveAvgPool2d" if arch.head.pool == "avg" else "AdaptiveMaxPool2d"
    init.append(f"self.global_pool = nn.{pool}(1)")
    if arch.head.dropout > 0:
        init.append(f"self.dropout = nn.Dropout({arch.head.dropout})")
    init.append(f"self.fc = nn.Linear({out_channels}, {arch.num_classes})")
    return init


def _forward_lines(arch: Architecture) -> list[str]:
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
    return forward


def _network_class(arch: Architecture) -> str:
    body = textwrap.indent("\n".join(_init_lines(arch)), " " * 8)
    steps = textwrap.indent("\n".join(_forward_lines(arch)), " " * 8)
    return f'''

class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
{body}

    def forward(self, x):
{steps}


def build_model():
    return ResNet()
'''


def _architecture_main(arch: Architecture) -> str:
    c, (h, w) = arch.in_channels, arch.input_size
    return f'''

if __name__ == "__main__":
    model = build_model().eval()
    print(model(torch.randn(1, {c}, {h}, {w})).shape)  # torch.Size([1, {arch.num_classes}])
'''


def _trained_part(preprocessing: Preprocessing, weights_file: str) -> str:
    """Class names, the preprocessing, ``load_model()`` and a main that classifies."""
    p = preprocessing
    return _TRAINED.format(
        class_names=repr(list(p.class_names)), channels=p.channels,
        image_size=tuple(p.image_size), input_size=tuple(p.input_size), mean=repr(p.mean),
        std=repr(p.std), weights_file=repr(weights_file),
        dataset=f" ({' '.join(p.dataset.split())})" if p.dataset else "")


def to_python_source(arch: Architecture, preprocessing: Preprocessing | None = None,
                     weights_file: str | None = None) -> str:
    """A readable, standalone PyTorch file whose ``build_model()`` matches our state dict.

    With ``preprocessing`` and ``weights_file`` (a trained network), the file also holds the
    class names, ``preprocess()`` (the training's resize and normalisation) and
    ``load_model()``, which loads the state dict saved beside it.
    """
    validate(arch)
    trained = preprocessing is not None and weights_file is not None
    kinds = {kind for stage in arch.stages for kind in stage.blocks}
    parts = [_header(arch, kinds, trained),
             *_shortcut_parts({stage.shortcut.kind for stage in arch.stages}),
             *_block_parts(kinds), _STAGE_BUILDER, _network_class(arch)]
    parts.append(_trained_part(preprocessing, weights_file) if trained
                 else _architecture_main(arch))
    return "".join(parts)
