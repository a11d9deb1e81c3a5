"""Per-layer analysis: shapes as a real forward pass gives them, torch's own flop counts."""

from __future__ import annotations

import math
import random
import threading

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resnet_gui.engine import analysis as analysis_module
from resnet_gui.engine.analysis import analyse
from resnet_gui.engine.model import build_model
from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.model import (
    BLOCK_KINDS,
    POOL_KINDS,
    SHORTCUT_KINDS,
    Architecture,
    Head,
    Shortcut,
    Stage,
    Stem,
    validate,
)
from resnet_gui.arch.presets import build_preset

TABLE1 = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def real_shapes(model: nn.Module, input_shape) -> dict[str, tuple[int, ...]]:
    """Output shape of every non-identity module in a real CPU forward pass (batch of 2)."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        module.register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))
        )
        for name, module in model.named_modules()
        if name and not isinstance(module, nn.Identity)
    ]
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, *input_shape))
    for handle in handles:
        handle.remove()
    return shapes


@pytest.mark.parametrize("name", TABLE1)
def test_table1_presets_match_torchvision_params_and_macs(name):
    arch = build_preset(name, in_channels=3, num_classes=1000, input_size=224)
    result = analyse(arch)
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)()
    with FlopCounterMode(display=False) as counter:
        reference(torch.empty(1, 3, 224, 224, device="meta"))
    assert result.total_params == sum(p.numel() for p in reference.parameters())
    assert result.total_macs == counter.get_total_flops() // 2
    assert result.output_shape == (1000,)


def test_resnet50_rows_show_the_known_shapes_and_counts():
    result = analyse(build_preset("resnet50"))
    assert result.row("conv1").output_shape == (64, 112, 112)
    assert result.row("conv1").macs == 64 * 112 * 112 * 3 * 7 * 7
    assert result.row("layer1").type == "Stage"
    assert result.row("layer1.0").type == "Bottleneck"
    assert result.row("layer1.0.downsample.0").depth == 3
    assert [result.stage_output_shape(i) for i in range(4)] == [
        (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)
    ]
    assert result.stage_input_shape(0) == (64, 56, 56)
    assert [row.name for row in result.children("layer2")] == [f"layer2.{i}" for i in range(4)]
    assert result.warnings == ()


def test_rows_follow_the_built_module_tree_in_pre_order():
    arch = build_preset("preact-resnet18", input_size=64).replace(
        stem=Stem(kind="deep", width=32), head=Head(pool="max", dropout=0.2)
    )
    result = analyse(arch)
    model = build_model(arch, "meta")
    expected = [
        (name, sum(p.numel() for p in module.parameters()))
        for name, module in model.named_modules()
        if name and not isinstance(module, nn.Identity)
    ]
    assert [(row.name, row.params) for row in result.layers] == expected
    assert all(row.depth == row.name.count(".") for row in result.layers)
    assert "conv1.0" in [row.name for row in result.layers]  # the deep stem's first conv
    assert result.row("dropout").output_shape == (512,)


def test_group_rows_sum_their_children_and_leaves_sum_to_totals():
    result = analyse(build_preset("resnet34", input_size=64))
    for row in result.layers:
        if not row.is_leaf:
            kids = result.children(row.name)
            assert row.params == sum(k.params for k in kids)
            assert row.macs == sum(k.macs for k in kids)
    leaves = result.leaves
    assert sum(row.params for row in leaves) == result.total_params
    assert sum(row.macs for row in leaves) == result.total_macs
    assert result.activation_bytes == 4 * sum(math.prod(row.output_shape) for row in leaves)
    assert result.trainable_params == result.total_params


def test_input_channels_override_the_architecture():
    arch = build_preset("resnet18")
    gray = analyse(arch, (1, 32, 32))
    assert gray.input_shape == (1, 32, 32)
    assert gray.arch.in_channels == 1 and gray.arch.input_size == (32, 32)
    assert gray.row("conv1").params == 64 * 1 * 7 * 7
    assert analyse(arch).row("conv1").params == 64 * 3 * 7 * 7


def test_maps_reaching_1x1_early_warn_about_the_first_stage_that_no_longer_downsamples():
    result = analyse(build_preset("resnet50"), (3, 16, 16))
    assert result.warnings and result.warnings[0].startswith("layer4:")
    assert "1x1" in result.warnings[0]
    assert result.stage_output_shape(3) == (2048, 1, 1)


def test_avgpool_shortcut_on_1x1_maps_keeps_working():
    arch = build_preset("resnet18", input_size=8).replace(
        stages=tuple(
            Stage(blocks=("basic",), width=8, stride=2, shortcut=Shortcut("avgpool-projection"))
            for _ in range(4)
        ),
        stem=Stem(width=4),
    )
    result = analyse(arch)
    assert result.stage_output_shape(3) == (8, 1, 1)
    pool = result.row("layer4.0.downsample.0")
    assert (pool.type, pool.output_shape) == ("AvgPool2d", (8, 1, 1))


def test_kernel_larger_than_its_padded_input_names_the_layer():
    arch = build_preset("resnet18").replace(stem=Stem(kernel=7, padding=0))
    with pytest.raises(ArchitectureError) as caught:
        analyse(arch, (3, 5, 5))
    assert caught.value.path == "conv1"
    assert "5x5" in str(caught.value) and "7x7" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("shape", [(3, 0, 32), (3, 32), (0, 32, 32), (3, 32.5, 32), "3,32,32"])
def test_bad_input_shapes_are_refused(shape):
    with pytest.raises(ArchitectureError) as caught:
        analyse(build_preset("resnet18"), shape)
    assert caught.value.path == "input_shape"


def test_identical_blocks_are_analysed_once():
    analysis_module.clear_cache()
    analyse(build_preset("resnet152"))
    # Two distinct blocks per stage (the first, which changes shape, and the rest).
    assert analysis_module._block_part.cache_info().misses == 8
    before = analysis_module._block_part.cache_info().misses
    analyse(build_preset("resnet152", num_classes=10))  # an edit of the head only
    assert analysis_module._block_part.cache_info().misses == before


def test_analysis_in_worker_threads_matches_the_main_thread():
    archs = [build_preset(name, input_size=64) for name in ("resnet18", "resnet50", "resnet20")]
    expected = [analyse(arch) for arch in archs]
    analysis_module.clear_cache()
    results: dict[int, object] = {}

    def work(index):
        results[index] = analyse(archs[index % 3])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(6)] == expected * 2


# -- randomized: a few hundred random architectures --------------------------------------


def random_architecture(rng: random.Random) -> Architecture:
    stem_kind = rng.choice(("single", "single", "deep"))
    stem = Stem(
        kind=stem_kind,
        width=rng.randint(2, 6),
        kernel=rng.randint(1, 7),
        stride=rng.randint(1, 3),
        padding=rng.choice((None, None, 0, 1, 3)),
        bias=rng.random() < 0.3,
        batch_norm=rng.random() < 0.8,
        max_pool=rng.random() < 0.5,
    )
    stages = tuple(
        Stage(
            blocks=tuple(rng.choice(BLOCK_KINDS) for _ in range(rng.randint(1, 3))),
            width=rng.randint(1, 6),
            stride=rng.randint(1, 3),
            shortcut=Shortcut(
                kind=rng.choice(SHORTCUT_KINDS),
                batch_norm=rng.random() < 0.5,
                bias=rng.random() < 0.5,
            ),
            conv_bias=rng.random() < 0.3,
        )
        for _ in range(rng.randint(1, 4))
    )
    return Architecture(
        stages=stages,
        stem=stem,
        head=Head(pool=rng.choice(POOL_KINDS), dropout=rng.choice((0.0, 0.0, 0.5))),
        in_channels=rng.randint(1, 3),
        input_size=(rng.randint(1, 20), rng.randint(1, 20)),
        num_classes=rng.randint(1, 5),
    )


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine the thread pool's
    waiting makes each op 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_random_architectures_analyse_like_a_real_forward_pass_or_are_refused(one_thread):
    rng = random.Random(20240611)
    outcomes = {"analysed": 0, "invalid": 0, "too small": 0}
    for _ in range(300):
        arch = random_architecture(rng)
        input_shape = (arch.in_channels, *arch.input_size)
        try:
            validate(arch)
        except ArchitectureError:
            with pytest.raises(ArchitectureError):
                analyse(arch)
            outcomes["invalid"] += 1
            continue
        model = build_model(arch)
        try:
            result = analyse(arch)
        except ArchitectureError as error:
            # Refused for its size: then the real network cannot run on that input either.
            assert error.path and "\n" not in str(error)
            with pytest.raises(RuntimeError):
                real_shapes(model, input_shape)
            outcomes["too small"] += 1
            continue
        shapes = real_shapes(model, input_shape)
        assert {row.name: row.output_shape for row in result.layers} == shapes, arch
        assert result.total_params == sum(p.numel() for p in model.parameters())
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.randn(1, *input_shape))
        assert result.total_macs == counter.get_total_flops() // 2, arch
        outcomes["analysed"] += 1
    # The generator must exercise all three outcomes, mostly the first.
    assert outcomes["analysed"] > 150 and outcomes["invalid"] > 0 and outcomes["too small"] > 0, outcomes
