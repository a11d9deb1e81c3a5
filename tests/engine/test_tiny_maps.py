"""3x3 convolutions over tiny maps as a matrix product: the same function, a faster kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_gui.arch.model import Architecture, Stage, Stem
from resnet_gui.engine import tiny_maps
from resnet_gui.engine.model import build_model
from resnet_gui.engine.tiny_maps import conv3x3_as_matmul, matmul_for_tiny_maps
from resnet_gui.engine.trainer import Trainer
from tests.engine.test_trainer import one_thread, recipe, tiny_data  # noqa: F401


@pytest.mark.parametrize("side, stride", [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2),
                                          (7, 2), (8, 2)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("convolution", [conv3x3_as_matmul,
                                         tiny_maps.conv3x3_with_matmul_weight_gradient])
def test_the_matrix_product_is_the_convolution_with_its_gradients(side, stride, bias,
                                                                  channels_last, convolution):
    """Both paths: the whole convolution as a matrix product, and only its weight gradient."""
    torch.manual_seed(side)
    x = torch.randn(5, 6, side, side, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.randn(7, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, requires_grad=True) if bias else None
    expected = F.conv2d(x, weight, b, stride=stride, padding=1)
    got = convolution(x, weight, b, stride)
    torch.testing.assert_close(got, expected)
    upstream = torch.randn_like(expected)
    wanted = torch.autograd.grad(expected, [x, weight] + ([b] if bias else []), upstream)
    gradients = torch.autograd.grad(got, [x, weight] + ([b] if bias else []), upstream)
    for mine, theirs in zip(gradients, wanted):
        torch.testing.assert_close(mine, theirs)


SMALL = Architecture(
    stages=(Stage(blocks=("basic",), width=8, stride=1),
            Stage(blocks=("basic", "basic"), width=12, stride=2)),
    stem=Stem(kind="single", width=8, kernel=3, stride=2, max_pool=False),
    in_channels=1, input_size=(10, 10), num_classes=3, name="small",
)  # 10 -> 5x5 -> 3x3: the second stage works on tiny maps


def test_a_network_computes_the_same_inside_and_its_own_forward_is_back_after():
    model = build_model(SMALL).eval()
    x = torch.randn(4, 1, 10, 10)
    with torch.no_grad():
        plain = model(x)
        with matmul_for_tiny_maps(model) as count:
            fast = model(x)
    assert count == sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
                        for m in model.modules())
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    assert all("forward" not in vars(module) for module in model.modules())


def test_training_on_the_cpu_takes_the_matrix_product_for_tiny_maps(monkeypatch):
    calls = []
    original = tiny_maps.conv3x3_as_matmul
    monkeypatch.setattr(tiny_maps, "conv3x3_as_matmul",
                        lambda *args: calls.append(args[0].shape[-1]) or original(*args))
    trainer = Trainer(SMALL, recipe(epochs=1), data=tiny_data())
    end = trainer.run()
    assert end.reason == "completed" and calls and set(calls) == {3, 5}  # strided from 5x5
    assert all("forward" not in vars(module) for module in trainer.model.modules())


def test_under_autocast_it_computes_in_bf16_as_the_convolution_does():
    torch.manual_seed(0)
    x = torch.randn(16, 32, 4, 4, requires_grad=True)
    weight = torch.randn(32, 32, 3, 3, requires_grad=True)
    results = []
    for conv in (lambda: F.conv2d(x, weight, None, 1, 1),
                 lambda: tiny_maps.conv3x3_with_matmul_weight_gradient(x, weight, None)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv()
        results.append((out, *torch.autograd.grad(out.float().sum(), [x, weight])))
    (plain, *plain_grads), (ours, *our_grads) = results
    assert ours.dtype == plain.dtype == torch.bfloat16
    assert [grad.dtype for grad in our_grads] == [torch.float32, torch.float32]
    torch.testing.assert_close(ours, plain)
    for mine, theirs in zip(our_grads, plain_grads):  # sums of 256 bf16 products: 1 % apart
        torch.testing.assert_close(mine, theirs, rtol=1e-2, atol=1e-2 * theirs.abs().max().item())


FOUR_BY_FOUR = Architecture(
    stages=(Stage(blocks=("basic",), width=8, stride=2),),
    stem=Stem(kind="single", width=8, kernel=3, stride=2, max_pool=False),
    in_channels=1, input_size=(16, 16), num_classes=3, name="four",
)  # 16 -> 8x8 -> 4x4: the stage's convolutions output 4x4 maps


def test_training_on_the_cpu_takes_the_matrix_weight_gradient_for_4x4_outputs(monkeypatch):
    calls = []
    original = tiny_maps.conv3x3_with_matmul_weight_gradient
    monkeypatch.setattr(tiny_maps, "conv3x3_with_matmul_weight_gradient",
                        lambda *args: calls.append(args[0].shape[-1]) or original(*args))
    trainer = Trainer(FOUR_BY_FOUR, recipe(epochs=1).replace(resize=16), data=tiny_data())
    end = trainer.run()
    assert end.reason == "completed" and calls and set(calls) == {8, 4}  # strided from 8x8
    assert all("forward" not in vars(module) for module in trainer.model.modules())
