"""Presets: the names users know, set up from the dataset, and forgiving about typos."""

from __future__ import annotations

import pytest

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.presets import PRESETS, build_preset, get_preset, preset_names

EXPECTED = [
    "d2l-resnet18", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "preact-resnet18", "preact-resnet50", "resnet20", "resnet32", "resnet44", "resnet56",
    "resnet110",
]


def test_the_issue_presets_are_all_there_with_descriptions():
    assert set(EXPECTED) <= set(preset_names())
    assert all(PRESETS[name].description and "\n" not in PRESETS[name].description
               for name in PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_input_channels_classes_and_size_are_parameters(name):
    arch = build_preset(name, in_channels=1, num_classes=47, input_size=(28, 36))
    assert (arch.in_channels, arch.num_classes, arch.input_size) == (1, 47, (28, 36))
    assert arch.name == name


def test_the_d2l_preset_keeps_the_chapters_quirks():
    arch = build_preset("d2l-resnet18")
    assert (arch.in_channels, arch.num_classes) == (1, 10)
    assert arch.stem.bias and arch.stem.kernel == 7 and arch.stem.max_pool
    assert all(stage.conv_bias for stage in arch.stages)
    assert all(s.shortcut.kind == "projection" and s.shortcut.bias and not s.shortcut.batch_norm
               for s in arch.stages)
    assert arch.head.pool == "max"


def test_cifar_presets_have_the_papers_shape():
    for name, n in (("resnet20", 3), ("resnet56", 9), ("resnet110", 18)):
        arch = build_preset(name)
        assert [s.num_blocks for s in arch.stages] == [n, n, n]
        assert [s.width for s in arch.stages] == [16, 32, 64]
        assert {s.shortcut.kind for s in arch.stages} == {"zero-pad"}
        assert not arch.stem.max_pool and arch.stem.kernel == 3


@pytest.mark.parametrize(
    "typed, meant",
    [("resnet5O", "resnet50"), ("ResNet-18", "resnet18"), ("preact_resnet18", "preact-resnet18"),
     ("resnet1O1", "resnet101"), ("d2l_resnet18", "d2l-resnet18")],
)
def test_unknown_presets_suggest_the_closest_name(typed, meant):
    with pytest.raises(ArchitectureError) as caught:
        get_preset(typed)
    assert f"did you mean {meant!r}?" in str(caught.value)


def test_hopeless_names_point_to_the_list():
    with pytest.raises(ArchitectureError, match="resnet-gui presets"):
        get_preset("transformer")
