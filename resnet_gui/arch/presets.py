"""Named architectures as data tables.

Each preset is one row: a description, the stem, the stage table (block kind, blocks per
stage, widths, strides), the shortcut, the head and a default input. Input channels and
classes are parameters of every preset, set from the dataset.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import Architecture, Head, Shortcut, Stage, Stem, validate


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    stem: Stem
    block: str
    blocks_per_stage: tuple[int, ...]
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    shortcut: Shortcut
    head: Head = Head()
    conv_bias: bool = False
    in_channels: int = 3
    num_classes: int = 1000
    input_size: int = 224

    def build(
        self,
        in_channels: int | None = None,
        num_classes: int | None = None,
        input_size: int | tuple[int, int] | None = None,
    ) -> Architecture:
        size = self.input_size if input_size is None else input_size
        if isinstance(size, int):
            size = (size, size)
        stages = tuple(
            Stage(
                blocks=(self.block,) * count,
                width=width,
                stride=stride,
                shortcut=self.shortcut,
                conv_bias=self.conv_bias,
            )
            for count, width, stride in zip(self.blocks_per_stage, self.widths, self.strides)
        )
        return validate(
            Architecture(
                name=self.name,
                in_channels=self.in_channels if in_channels is None else in_channels,
                num_classes=self.num_classes if num_classes is None else num_classes,
                input_size=tuple(size),
                stem=self.stem,
                stages=stages,
                head=self.head,
            )
        )


IMAGENET_STEM = Stem(kind="single", width=64, kernel=7, stride=2, bias=False, max_pool=True)
CIFAR_STEM = Stem(kind="single", width=16, kernel=3, stride=1, bias=False, max_pool=False)
TORCHVISION_SHORTCUT = Shortcut(kind="projection", batch_norm=True, bias=False)
IMAGENET_WIDTHS = (64, 128, 256, 512)
IMAGENET_STRIDES = (1, 2, 2, 2)


def _torchvision(name: str, block: str, counts: tuple[int, ...], layers: int) -> Preset:
    return Preset(
        name=name,
        description=f"ResNet-{layers} of He et al. Table 1, as torchvision builds it "
        f"({'bottleneck' if block == 'bottleneck' else 'basic'} blocks {'-'.join(map(str, counts))})",
        stem=IMAGENET_STEM,
        block=block,
        blocks_per_stage=counts,
        widths=IMAGENET_WIDTHS,
        strides=IMAGENET_STRIDES,
        shortcut=TORCHVISION_SHORTCUT,
    )


def _cifar(n: int) -> Preset:
    depth = 6 * n + 2
    return Preset(
        name=f"resnet{depth}",
        description=f"CIFAR ResNet-{depth} of He et al. section 4.2: 3x{n} basic blocks, "
        "widths 16/32/64, zero-padding shortcuts",
        stem=CIFAR_STEM,
        block="basic",
        blocks_per_stage=(n, n, n),
        widths=(16, 32, 64),
        strides=(1, 2, 2),
        shortcut=Shortcut(kind="zero-pad", batch_norm=False, bias=False),
        num_classes=10,
        input_size=32,
    )


_PRESET_LIST: list[Preset] = [
    Preset(
        name="d2l-resnet18",
        description="ResNet-18 exactly as the D2L chapter writes it (conv biases, "
        "1x1 shortcut convs without BN, max-pool head), for Fashion-MNIST",
        stem=Stem(kind="single", width=64, kernel=7, stride=2, bias=True, max_pool=True),
        block="basic",
        blocks_per_stage=(2, 2, 2, 2),
        widths=IMAGENET_WIDTHS,
        strides=IMAGENET_STRIDES,
        shortcut=Shortcut(kind="projection", batch_norm=False, bias=True),
        head=Head(pool="max"),
        conv_bias=True,
        in_channels=1,
        num_classes=10,
        input_size=96,
    ),
    _torchvision("resnet18", "basic", (2, 2, 2, 2), 18),
    _torchvision("resnet34", "basic", (3, 4, 6, 3), 34),
    _torchvision("resnet50", "bottleneck", (3, 4, 6, 3), 50),
    _torchvision("resnet101", "bottleneck", (3, 4, 23, 3), 101),
    _torchvision("resnet152", "bottleneck", (3, 8, 36, 3), 152),
    Preset(
        name="preact-resnet18",
        description="Pre-activation ResNet-18 (He et al., Identity Mappings): "
        "BN-ReLU-conv basic blocks 2-2-2-2",
        stem=IMAGENET_STEM,
        block="preact-basic",
        blocks_per_stage=(2, 2, 2, 2),
        widths=IMAGENET_WIDTHS,
        strides=IMAGENET_STRIDES,
        shortcut=Shortcut(kind="projection", batch_norm=False, bias=False),
    ),
    Preset(
        name="preact-resnet50",
        description="Pre-activation ResNet-50 (He et al., Identity Mappings): "
        "BN-ReLU-conv bottlenecks 3-4-6-3",
        stem=IMAGENET_STEM,
        block="preact-bottleneck",
        blocks_per_stage=(3, 4, 6, 3),
        widths=IMAGENET_WIDTHS,
        strides=IMAGENET_STRIDES,
        shortcut=Shortcut(kind="projection", batch_norm=False, bias=False),
    ),
    *(_cifar(n) for n in (3, 5, 7, 9, 18)),
    Preset(
        name="fmnist-fast",
        description="Small ResNet for Fashion-MNIST on a laptop CPU: 3x3 stem of 16 at 28x28, "
        "max-pool to 14x14, one basic block each of 64 (7x7) and 128 (4x4)",
        stem=Stem(kind="single", width=16, kernel=3, stride=1, bias=False, max_pool=True),
        block="basic",
        blocks_per_stage=(1, 1),
        widths=(64, 128),
        strides=(2, 2),
        shortcut=TORCHVISION_SHORTCUT,
        in_channels=1,
        num_classes=10,
        input_size=28,
    ),
]
# The same network for a longer plan (its recipe trains 10 epochs): a wider or deeper network
# reached less per unit of compute in a sweep (docs/benchmarks.md, section 2).
_PRESET_LIST.append(dataclasses.replace(
    next(preset for preset in _PRESET_LIST if preset.name == "fmnist-fast"), name="fmnist-94",
    description="fmnist-fast's network, trained 10 epochs: 93.9-94.3 % on Fashion-MNIST"))



def _plain(residual: Preset, layers: int) -> Preset:
    """He et al.'s plain network of ``layers`` layers: ``residual`` without any shortcut."""
    return dataclasses.replace(
        residual,
        name=f"plain{layers}",
        description=f"Plain-{layers} of He et al. (2015): the layers of {residual.name} with "
        "every shortcut removed, for the degradation experiment",
        block="plain",
    )


_BY_NAME = {preset.name: preset for preset in _PRESET_LIST}
_PRESET_LIST += [_plain(_BY_NAME[f"resnet{layers}"], layers)
                 for layers in (18, 34, 20, 32, 44, 56, 110)]

PRESETS: dict[str, Preset] = {preset.name: preset for preset in _PRESET_LIST}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        pass
    suggestion = closest_preset_name(name)
    hint = f"did you mean {suggestion!r}?" if suggestion else "run 'resnet-gui presets' to list them"
    raise ArchitectureError(f"unknown preset {name!r}; {hint}") from None


# Characters people mistype for digits ("resnet5O") and spellings of the same name.
_LOOKALIKES = str.maketrans({"o": "0", "l": "1", "i": "1", "_": "-", " ": "-"})


def _normalise(name: str) -> str:
    return name.lower().translate(_LOOKALIKES).replace("resnet-", "resnet")


def closest_preset_name(name: str) -> str | None:
    """The preset a mistyped name most likely meant, or None when nothing is close."""
    wanted = _normalise(name)
    by_normal = {_normalise(known): known for known in PRESETS}
    if wanted in by_normal:
        return by_normal[wanted]
    close = difflib.get_close_matches(wanted, by_normal, n=1, cutoff=0.6)
    return by_normal[close[0]] if close else None


def build_preset(
    name: str,
    in_channels: int | None = None,
    num_classes: int | None = None,
    input_size: int | tuple[int, int] | None = None,
) -> Architecture:
    return get_preset(name).build(in_channels, num_classes, input_size)
