"""Built twins: the plain network has the residual one's parameters minus the projections',
and every layer keeps its output shape."""

from __future__ import annotations

import pytest
import torch

from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.twin import plain_twin
from resnet_gui.engine.analysis import analyse
from resnet_gui.engine.model import build_model


def parameters(model: torch.nn.Module, only_shortcuts: bool = False) -> int:
    return sum(p.numel() for name, p in model.named_parameters()
               if not only_shortcuts or ".downsample." in name)


@pytest.mark.parametrize("depth", [18, 34, 20, 32, 44, 56, 110])
def test_plain_has_the_residual_parameters_minus_the_projections(depth):
    residual = build_model(build_preset(f"resnet{depth}", in_channels=1, num_classes=10),
                           device="meta")
    plain = build_model(build_preset(f"plain{depth}", in_channels=1, num_classes=10),
                        device="meta")
    projections = parameters(residual, only_shortcuts=True)
    assert parameters(residual) - parameters(plain) == projections
    # CIFAR nets pad with zeros (no parameters); ImageNet nets project with conv + BN.
    assert (projections == 0) == (depth in (20, 32, 44, 56, 110))
    if depth == 18:
        # 1x1 convs 64->128, 128->256, 256->512 and their BN scales and shifts.
        assert projections == 64 * 128 + 128 * 256 + 256 * 512 + 2 * (128 + 256 + 512)


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "resnet50", "d2l-resnet18"])
def test_every_layer_of_the_twin_has_the_residual_layers_shape(name):
    residual = build_preset(name, in_channels=1, num_classes=10, input_size=64)
    twin = plain_twin(residual)
    shapes = {row.name: row.output_shape for row in analyse(residual).leaves
              if ".downsample" not in row.name}
    twin_shapes = {row.name: row.output_shape for row in analyse(twin).leaves}
    assert twin_shapes == shapes
    model = build_model(twin)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    assert all(block.downsample is None for _, block in model.blocks())
