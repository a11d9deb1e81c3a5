"""Plain twins: He et al.'s plain networks are the residual ones without any shortcut."""

from __future__ import annotations

import pytest

from resnet_gui.arch.presets import build_preset, preset_names
from resnet_gui.arch.twin import is_plain, plain_twin, residual_twin, twin_name
from resnet_gui.errors import ArchitectureError

PLAIN_PRESETS = ["plain18", "plain34", "plain20", "plain32", "plain44", "plain56", "plain110"]


def test_the_papers_plain_networks_are_presets():
    assert set(PLAIN_PRESETS) <= set(preset_names())


@pytest.mark.parametrize("plain", PLAIN_PRESETS)
def test_each_plain_preset_is_the_twin_of_its_resnet(plain):
    residual = build_preset(plain.replace("plain", "resnet"), in_channels=1, num_classes=10)
    twin = plain_twin(residual)
    assert twin == build_preset(plain, in_channels=1, num_classes=10)
    assert is_plain(twin) and not is_plain(residual)
    assert residual_twin(twin) == residual


def test_bottleneck_networks_get_plain_bottlenecks_and_keep_everything_else():
    residual = build_preset("resnet50")
    twin = plain_twin(residual)
    assert {kind for stage in twin.stages for kind in stage.blocks} == {"plain-bottleneck"}
    assert [(s.width, s.stride, len(s.blocks)) for s in twin.stages] == [
        (s.width, s.stride, len(s.blocks)) for s in residual.stages]
    assert (twin.stem, twin.head, twin.input_size) == (residual.stem, residual.head,
                                                       residual.input_size)
    assert twin.name == "plain50"


def test_names_of_twins():
    assert twin_name("resnet56", plain=True) == "plain56"
    assert twin_name("d2l-resnet18", plain=True) == "d2l-plain18"
    assert twin_name("my net", plain=True) == "my net-plain"
    assert twin_name("my net-plain", plain=False) == "my net"
    assert twin_name("plain20", plain=False) == "resnet20"


def test_pre_activation_networks_have_no_plain_twin():
    with pytest.raises(ArchitectureError, match="no plain twin"):
        plain_twin(build_preset("preact-resnet18"))
