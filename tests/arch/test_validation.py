"""validate(): one ArchitectureError naming the field path and what is wrong."""

from __future__ import annotations

import pytest

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import (
    BLOCK_KINDS,
    Architecture,
    Head,
    Shortcut,
    Stage,
    Stem,
    stage_in_channels,
    validate,
)
from resnet_gui.arch.presets import build_preset

BASE = build_preset("resnet20")


def stage(**changes) -> Stage:
    return Stage(**{"blocks": ("basic",), "width": 16, **changes})


@pytest.mark.parametrize(
    "arch, path, words",
    [
        (BASE.replace(stages=()), "stages", "at least one stage"),
        (BASE.with_stage(0, stage(blocks=())), "stages[0].num_blocks", ">= 1, got 0"),
        (BASE.with_stage(1, stage(blocks=("basic", "resnext"))), "stages[1].blocks[1]",
         "unknown block kind 'resnext'; allowed: " + ", ".join(BLOCK_KINDS)),
        (BASE.with_stage(0, stage(width=0)), "stages[0].width", ">= 1, got 0"),
        (BASE.with_stage(0, stage(width=-3)), "stages[0].width", ">= 1, got -3"),
        (BASE.with_stage(2, stage(stride=0)), "stages[2].stride", ">= 1, got 0"),
        (BASE.with_stage(0, stage(width=2.5)), "stages[0].width", "whole number"),
        (BASE.with_stage(0, stage(shortcut=Shortcut("dense"))), "stages[0].shortcut.kind",
         "allowed: projection, zero-pad, avgpool-projection"),
        (BASE.replace(head=Head(pool="median")), "head.pool", "allowed: avg, max"),
        (BASE.replace(head=Head(dropout=1.0)), "head.dropout", "[0, 1)"),
        (BASE.replace(stem=Stem(kind="tiny")), "stem.kind", "allowed: single, deep"),
        (BASE.replace(stem=Stem(width=0)), "stem.width", ">= 1"),
        (BASE.replace(stem=Stem(max_pool="yes")), "stem.max_pool", "true or false"),
        (BASE.replace(num_classes=0), "num_classes", ">= 1, got 0"),
        (BASE.replace(in_channels=0), "in_channels", ">= 1, got 0"),
        (BASE.replace(input_size=(32, 0)), "input_size.width", ">= 1, got 0"),
        (BASE.replace(stages=(stage(width=16), stage(width=8, shortcut=Shortcut("zero-pad")))),
         "stages[1].shortcut.kind",
         "zero-padding cannot reduce channels from 16 to 8"),
    ],
)
def test_each_bad_field_is_named(arch, path, words):
    with pytest.raises(ArchitectureError) as caught:
        validate(arch)
    assert caught.value.path == path
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.exit_code == 2


def test_a_sound_architecture_is_returned_unchanged():
    assert validate(BASE) is BASE


def test_zero_padding_may_keep_or_grow_channels_and_plain_blocks_need_no_shortcut():
    zero_pad = Shortcut("zero-pad", batch_norm=False)
    arch = BASE.replace(stages=(
        stage(width=16, shortcut=zero_pad),
        stage(width=32, shortcut=zero_pad),
        stage(blocks=("plain",), width=8, shortcut=zero_pad),
    ))
    assert validate(arch) is arch


def test_channels_entering_each_stage():
    arch = build_preset("resnet50")
    assert stage_in_channels(arch) == [64, 256, 512, 1024]
    assert arch.stages[-1].out_channels == 2048


def test_architectures_are_immutable_values():
    arch = build_preset("resnet18")
    edited = arch.with_stage(0, arch.stages[0].__class__(blocks=("basic",), width=32))
    assert arch.stages[0].width == 64 and edited.stages[0].width == 32
    assert hash(arch) == hash(build_preset("resnet18")) and arch == build_preset("resnet18")
    with pytest.raises(AttributeError):
        arch.num_classes = 3
    assert isinstance(Architecture(stages=(stage(),)), Architecture)
