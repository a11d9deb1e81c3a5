"""The canvas draws each block's branch in the order the builder runs it: a user reading the
card reads the network that trains."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_gui.engine.model import BLOCK_CLASSES
from resnet_gui.qt.build.card_steps import block_steps, conv_text
from resnet_gui.arch.model import BLOCK_KINDS, Shortcut


def steps_as_layers(steps) -> list[str]:
    layers = []
    for step in steps:
        if step.style == "conv":
            layers.append(step.text)
        else:
            layers += ["BN" if part == "BN" else "ReLU" for part in step.text.split(" · ")]
    return layers


def branch_as_run(kind: str, width: int, stride: int) -> list[str]:
    """Leaf layers of one block in the order its forward pass calls them, shortcut aside."""
    in_channels = 8
    block = BLOCK_CLASSES[kind](in_channels, width, stride, Shortcut(), False)
    called: list[str] = []

    def record(name):
        def hook(module, _inputs, _output):
            if name.startswith("downsample"):
                return
            if isinstance(module, nn.Conv2d):
                called.append(conv_text(module.kernel_size[0], module.out_channels,
                                        module.stride[0]))
            elif isinstance(module, nn.BatchNorm2d):
                called.append("BN")
            elif isinstance(module, nn.ReLU):
                called.append("ReLU")
        return hook

    for name, module in block.named_modules():
        if not list(module.children()):
            module.register_forward_hook(record(name))
    block(torch.randn(1, in_channels, 8, 8))
    return called


@pytest.mark.parametrize("kind", BLOCK_KINDS)
@pytest.mark.parametrize("stride", [1, 2])
def test_block_cards_list_the_layers_in_the_order_they_run(kind, stride):
    drawn = steps_as_layers(block_steps(kind, 16, stride))
    run = branch_as_run(kind, 16, stride)
    # Post-activation blocks end with a ReLU after the addition, drawn on the join, not in
    # the branch.
    if not kind.startswith("preact"):
        assert run[-1] == "ReLU"
        run = run[:-1]
    assert drawn == run
