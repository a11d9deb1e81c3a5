"""What an architecture *does*: build the ``nn.Module`` from an :class:`Architecture`.

Module and parameter names follow torchvision (``conv1``, ``bn1``, ``layer2.0.downsample.0``,
``fc``), so the presets that mirror torchvision have its exact state-dict keys and load its
weights with ``strict=True``. Activations get one module per use (``relu1``, ``relu2``) so
that every row of the layer table and every feature map is one distinct tensor; ReLUs have no
parameters, so the state dict is unaffected.

Blocks own their behaviour: their channel ``expansion``, how they build their shortcut, and
which layer to zero for ``zero_init_last``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnet_gui.arch.model import BLOCK_EXPANSION, Architecture, Head, Shortcut, Stem, validate


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=bias)


class ZeroPadShortcut(nn.Module):
    """Option A of He et al.: subsample by the stride and append zero channels. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra > 0 else x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def make_shortcut(
    spec: Shortcut, in_channels: int, out_channels: int, stride: int, normalise: bool = True
) -> nn.Module | None:
    """The shortcut's module where shapes differ, or None for the identity.

    ``normalise`` is False for pre-activation blocks, whose shortcut sees an input that is
    already batch-normalised (the paper's projection there is a bare convolution).
    """
    if stride == 1 and in_channels == out_channels:
        return None
    if spec.kind == "zero-pad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    layers: list[nn.Module] = []
    if spec.kind == "avgpool-projection":
        # ResNet-D: pool first so the 1x1 conv sees every pixel; ceil_mode keeps odd sizes
        # in step with the strided 3x3 of the main branch (7 -> 4).
        pool = (
            nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        layers += [pool, conv1x1(in_channels, out_channels, 1, bias=spec.bias)]
    else:
        layers.append(conv1x1(in_channels, out_channels, stride, bias=spec.bias))
    if spec.batch_norm and normalise:
        layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Base for every block: a residual branch F plus an optional shortcut, y = F(x) + s(x)
    (then an activation, except in pre-activation blocks).

    ``forward(x)`` is ``join(*parts(x))``: ``parts`` gives the branch's output and the
    shortcut's (None in a plain block), ``join`` adds them and applies what follows the sum.
    The lab's lesion and path experiments take a block apart through these two.

    ``branch_end`` names the branch's last module, whose output is F(x), and ``downsample``
    is the shortcut's module (None: the identity); the inspection tools hook these two to see
    both paths of the sum (see :mod:`resnet_gui.engine.blocks`).
    """

    expansion = 1
    has_shortcut = True
    kind = ""
    branch_end = ""

    def __init__(self) -> None:
        super().__init__()
        self.downsample: nn.Module | None = None

    def branch_end_module(self) -> nn.Module:
        return getattr(self, self.branch_end)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def join(self, branch: torch.Tensor | None, shortcut: torch.Tensor | None) -> torch.Tensor:
        """The block's output from its branch and shortcut; either may be None (left out)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.join(*self.parts(x))

    def zero_init_last(self) -> None:
        """Make the residual branch start at zero so that the block starts as the identity."""
        if self.has_shortcut:
            nn.init.zeros_(self.branch_end_module().weight)


def _sum(branch: torch.Tensor | None, shortcut: torch.Tensor | None) -> torch.Tensor:
    if branch is None:
        return shortcut
    return branch if shortcut is None else branch + shortcut


class PostActivationBlock(ResidualBlock):
    """Blocks whose sum passes through a final ReLU (``last_relu``, a property of each)."""

    def shortcut(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.has_shortcut:
            return None
        return x if self.downsample is None else self.downsample(x)

    def join(self, branch: torch.Tensor | None, shortcut: torch.Tensor | None) -> torch.Tensor:
        total = _sum(branch, shortcut)
        # In place only on a tensor made here: a bare shortcut may be the block's own input.
        return self.last_relu(total) if branch is not None else torch.relu(total)


class BasicBlock(PostActivationBlock):
    kind = "basic"
    branch_end = "bn2"

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: Shortcut, bias: bool) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = conv3x3(in_ch, width, stride, bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, out_ch, 1, bias)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if self.has_shortcut:
            self.downsample = make_shortcut(shortcut, in_ch, out_ch, stride)
        self.relu2 = nn.ReLU(inplace=True)

    @property
    def last_relu(self) -> nn.Module:
        return self.relu2

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))), self.shortcut(x)



class PlainBlock(BasicBlock):
    kind = "plain"
    has_shortcut = False


class Bottleneck(PostActivationBlock):
    kind = "bottleneck"
    expansion = 4
    branch_end = "bn3"

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: Shortcut, bias: bool) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = conv1x1(in_ch, width, 1, bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, stride, bias)  # stride on the 3x3 ("v1.5")
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = conv1x1(width, out_ch, 1, bias)
        self.bn3 = nn.BatchNorm2d(out_ch)
        if self.has_shortcut:
            self.downsample = make_shortcut(shortcut, in_ch, out_ch, stride)
        self.relu3 = nn.ReLU(inplace=True)

    @property
    def last_relu(self) -> nn.Module:
        return self.relu3

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out)), self.shortcut(x)



class PlainBottleneck(Bottleneck):
    kind = "plain-bottleneck"
    has_shortcut = False


class PreActBasicBlock(ResidualBlock):
    """BN-ReLU-conv twice; where shapes change the shortcut takes the pre-activated input."""

    kind = "preact-basic"
    branch_end = "conv2"

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: Shortcut, bias: bool) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(in_ch, width, stride, bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, out_ch, 1, bias)
        self.downsample = make_shortcut(shortcut, in_ch, out_ch, stride, normalise=False)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = self.relu1(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        return self.conv2(self.relu2(self.bn2(self.conv1(pre)))), shortcut

    def join(self, branch: torch.Tensor | None, shortcut: torch.Tensor | None) -> torch.Tensor:
        return _sum(branch, shortcut)



class PreActBottleneck(ResidualBlock):
    kind = "preact-bottleneck"
    expansion = 4
    branch_end = "conv3"

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: Shortcut, bias: bool) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(in_ch, width, 1, bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, stride, bias)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv3 = conv1x1(width, out_ch, 1, bias)
        self.downsample = make_shortcut(shortcut, in_ch, out_ch, stride, normalise=False)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = self.relu1(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu2(self.bn2(out)))
        return self.conv3(self.relu3(self.bn3(out))), shortcut

    def join(self, branch: torch.Tensor | None, shortcut: torch.Tensor | None) -> torch.Tensor:
        return _sum(branch, shortcut)



BLOCK_CLASSES: dict[str, type[ResidualBlock]] = {
    cls.kind: cls
    for cls in (BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, PlainBlock, PlainBottleneck)
}
assert all(BLOCK_CLASSES[k].expansion == e for k, e in BLOCK_EXPANSION.items())


def build_stem(stem: Stem, in_channels: int) -> dict[str, nn.Module]:
    """The stem's modules, keyed by their torchvision names."""
    if stem.kind == "deep":
        half = stem.width // 2
        conv: nn.Module = nn.Sequential(
            conv3x3(in_channels, half, stem.stride, stem.bias),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            conv3x3(half, half, 1, stem.bias),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            conv3x3(half, stem.width, 1, stem.bias),
        )
    else:
        conv = nn.Conv2d(
            in_channels,
            stem.width,
            kernel_size=stem.kernel,
            stride=stem.stride,
            padding=stem.effective_padding,
            bias=stem.bias,
        )
    return {
        "conv1": conv,
        "bn1": nn.BatchNorm2d(stem.width) if stem.batch_norm else nn.Identity(),
        "relu": nn.ReLU(inplace=True),
        "maxpool": nn.MaxPool2d(3, 2, 1) if stem.max_pool else nn.Identity(),
    }


def build_head(
    head: Head, channels: int, num_classes: int, final_preactivation: bool
) -> dict[str, nn.Module]:
    """The modules after the last stage, keyed by their names, in the order they run.

    Pre-activation blocks leave their output un-normalised, so the head then starts with
    BN-ReLU (``final_bn``, ``final_relu``); absent parts are ``nn.Identity``.
    """
    return {
        "final_bn": nn.BatchNorm2d(channels) if final_preactivation else nn.Identity(),
        "final_relu": nn.ReLU(inplace=True) if final_preactivation else nn.Identity(),
        "global_pool": nn.AdaptiveAvgPool2d(1) if head.pool == "avg" else nn.AdaptiveMaxPool2d(1),
        "flatten": nn.Flatten(1),
        "dropout": nn.Dropout(head.dropout) if head.dropout > 0 else nn.Identity(),
        "fc": nn.Linear(channels, num_classes),
    }


class ResNet(nn.Module):
    """A residual network built from an :class:`Architecture` (kept as ``self.arch``)."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = validate(arch)
        for name, module in build_stem(arch.stem, arch.in_channels).items():
            self.add_module(name, module)
        channels = arch.stem.width
        self.stage_names: list[str] = []
        for index, stage in enumerate(arch.stages):
            blocks = []
            for position, kind in enumerate(stage.blocks):
                block = BLOCK_CLASSES[kind](
                    channels,
                    stage.width,
                    stage.stride if position == 0 else 1,
                    stage.shortcut,
                    stage.conv_bias,
                )
                blocks.append(block)
                channels = stage.width * block.expansion
            name = f"layer{index + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
        for name, module in build_head(arch.head, channels, arch.num_classes,
                                       arch.final_preactivation).items():
            self.add_module(name, module)
        self.num_features = channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation: Kaiming (fan-out) convs, BN at (1, 0)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def blocks(self) -> list[tuple[str, ResidualBlock]]:
        return [
            (f"{stage}.{i}", block)
            for stage in self.stage_names
            for i, block in enumerate(getattr(self, stage))
        ]

    def zero_init_last(self) -> None:
        for _, block in self.blocks():
            block.zero_init_last()

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.final_relu(self.final_bn(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.global_pool(self.forward_features(x)))
        return self.fc(self.dropout(x))


def build_model(arch: Architecture, device: torch.device | str | None = None) -> ResNet:
    """Build the module; ``device="meta"`` allocates nothing (for analysis)."""
    if device is None:
        return ResNet(arch)
    with torch.device(device):
        return ResNet(arch)
