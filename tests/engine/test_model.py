"""The builder: torchvision's networks exactly, the D2L chapter's network exactly, CIFAR counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from resnet_gui.engine.analysis import analyse
from resnet_gui.engine.model import build_model
from resnet_gui.arch.presets import build_preset

TABLE1 = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only add waiting on a busy machine
    yield
    torch.set_num_threads(threads)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", TABLE1)
def test_table1_state_dict_keys_and_shapes_equal_torchvision(name):
    ours = build_model(build_preset(name, in_channels=3, num_classes=1000, input_size=224), "meta")
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert param_count(ours) == param_count(theirs)


@pytest.mark.parametrize("name", ("resnet18", "resnet50"))
def test_torchvision_weights_load_strictly_and_give_the_same_output(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    ours = build_model(build_preset(name)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


# -- the D2L chapter's own code (../shared/reference/d2l-resnet-chapter.md), verbatim ------


class Residual(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def chapter_net() -> nn.Sequential:
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    return nn.Sequential(b1, b2, b3, b4, b5,
                         nn.AdaptiveMaxPool2d((1, 1)),
                         nn.Flatten(), nn.Linear(512, 10))


def test_d2l_resnet18_matches_the_chapter_parameters_and_stage_shapes():
    net = chapter_net()
    arch = build_preset("d2l-resnet18", in_channels=1, num_classes=10, input_size=224)
    assert param_count(build_model(arch)) == param_count(net)

    x = torch.rand(size=(1, 1, 224, 224))
    chapter_shapes = []
    with torch.no_grad():
        for layer in net:
            x = layer(x)
            chapter_shapes.append(tuple(x.shape[1:]))
    result = analyse(arch)
    assert result.total_params == param_count(net)
    ours = [result.stem_output_shape] + [result.stage_output_shape(i) for i in range(4)]
    assert ours == chapter_shapes[:5]
    assert result.output_shape == chapter_shapes[-1] == (10,)


def test_d2l_resnet18_computes_the_chapter_function_with_the_chapter_weights():
    torch.manual_seed(0)
    net = chapter_net().eval()
    ours = build_model(build_preset("d2l-resnet18")).eval()
    # The chapter's names -> ours: b1 is the stem, b2..b5 the stages, conv3 the shortcut.
    renamed = {}
    for key, value in net.state_dict().items():
        part, rest = key.split(".", 1)
        if part == "0":
            stem = {"0": "conv1", "1": "bn1"}[rest.split(".")[0]]
            renamed[f"{stem}.{rest.split('.', 1)[1]}"] = value
        elif part == "7":
            renamed[f"fc.{rest}"] = value
        else:
            renamed[f"layer{part}.{rest}".replace("conv3", "downsample.0")] = value
    ours.load_state_dict(renamed, strict=True)
    x = torch.rand(2, 1, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), net(x))


# -- CIFAR presets (He et al. section 4.2) --------------------------------------------------


def cifar_param_formula(n: int, classes: int = 10) -> int:
    """Option-A ResNet-(6n+2) counted by hand: convs without bias, BN weight+bias, no
    shortcut parameters."""
    total = 3 * 3 * 3 * 16 + 2 * 16  # stem conv + BN
    channels = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 9 * channels * width + 2 * width + 9 * width * width + 2 * width
            channels = width
    return total + 64 * classes + classes


@pytest.mark.parametrize(
    "name, n, paper_millions",
    [("resnet20", 3, 0.27), ("resnet32", 5, 0.46), ("resnet44", 7, 0.66),
     ("resnet56", 9, 0.85), ("resnet110", 18, 1.7)],
)
def test_cifar_presets_have_the_papers_parameter_counts(name, n, paper_millions):
    arch = build_preset(name)
    count = param_count(build_model(arch, "meta"))
    assert count == cifar_param_formula(n)
    assert round(count / 1e6, 2 if paper_millions < 1 else 1) == paper_millions
    result = analyse(arch)
    assert result.total_params == count
    assert result.stage_output_shape(2) == (64, 8, 8)  # 32x32 input, two stride-2 stages


def test_every_block_kind_runs_forward_and_backward():
    for name in ("preact-resnet18", "preact-resnet50", "resnet20"):
        model = build_model(build_preset(name, num_classes=3, input_size=16))
        model(torch.randn(2, 3, 16, 16)).sum().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_zero_init_last_makes_residual_blocks_start_as_the_identity_branch():
    model = build_model(build_preset("resnet50"))
    model.zero_init_last()
    assert all(not block.bn3.weight.detach().any() for _, block in model.blocks())
