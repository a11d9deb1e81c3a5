"""The stem's max-pool before its ReLU while training: the same outputs and gradients."""

from __future__ import annotations

import torch

from resnet_gui.arch.model import Architecture, Stage, Stem
from resnet_gui.engine.model import build_model
from resnet_gui.engine.stem_order import pool_before_relu

POOLED = Architecture(
    stages=(Stage(blocks=("basic",), width=8, stride=1),),
    stem=Stem(kind="single", width=6, kernel=3, stride=1, max_pool=True),
    in_channels=1, input_size=(12, 12), num_classes=3, name="pooled",
)


def outputs_and_gradients(model: torch.nn.Module, x: torch.Tensor):
    model.zero_grad()
    out = model(x)
    out.square().sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def test_training_gives_the_same_outputs_gradients_and_statistics_and_the_stem_is_back():
    torch.manual_seed(0)
    model = build_model(POOLED).double().train()
    x = torch.randn(8, 1, 12, 12, dtype=torch.float64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain, plain_grads = outputs_and_gradients(model, x)
    plain_stats = model.bn1.running_mean.clone()
    model.load_state_dict(before)
    with pool_before_relu(model) as reordered:
        fast, fast_grads = outputs_and_gradients(model, x)
    assert reordered
    torch.testing.assert_close(fast, plain)
    for mine, theirs in zip(fast_grads, plain_grads):
        torch.testing.assert_close(mine, theirs)
    torch.testing.assert_close(model.bn1.running_mean, plain_stats)
    assert "stem" not in vars(model)


def test_a_hook_on_the_relu_still_sees_the_full_map():
    model = build_model(POOLED).train()
    seen = []
    model.relu.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
    with pool_before_relu(model):
        model(torch.randn(2, 1, 12, 12))
    assert seen == [(2, 6, 12, 12)]


def test_a_stem_without_a_pool_is_left_alone():
    arch = Architecture(stages=POOLED.stages, stem=Stem(kind="single", width=6, kernel=3,
                                                        stride=1, max_pool=False),
                        in_channels=1, input_size=(12, 12), num_classes=3, name="unpooled")
    model = build_model(arch)
    with pool_before_relu(model) as reordered:
        assert not reordered
        assert "stem" not in vars(model)
