"""Inside a block and behind a prediction: the x / F(x) decomposition, receptive fields
(theoretical and effective) and Grad-CAM, on small networks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from resnet_gui.arch.presets import build_preset
from resnet_gui.cli import main
from resnet_gui.engine.analysis import analyse
from resnet_gui.engine.blocks import block_decomposition
from resnet_gui.engine.data import BatchMaker
from resnet_gui.engine.events import Callback
from resnet_gui.engine.explain import explain_test_image, grad_cam
from resnet_gui.engine.fields import effective_receptive_field, receptive_fields
from resnet_gui.engine.inspect import feature_maps
from resnet_gui.engine.model import build_model
from resnet_gui.engine.trainer import Trainer
from resnet_gui.errors import UserError
from tests.engine.test_telemetry import MIXED
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401

SMALL = MIXED  # identity and projection shortcuts and a plain block, on 10x10 images


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(SMALL)
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return model.train()


def untouched(model: torch.nn.Module) -> bool:
    """Still in training mode, without gradients on any parameter and without hooks."""
    return model.training and all(p.grad is None for p in model.parameters()) and all(
        not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# -- x / F(x) / x + F(x) / output --------------------------------------------------------


def test_the_decomposition_adds_up_and_matches_the_network():
    model = small_model()
    image = torch.randn(1, 1, 10, 10)
    for block, projected in (("layer1.0", False), ("layer2.0", True)):
        parts = block_decomposition(model, image, block)
        assert parts.projected is projected and parts.kind == "basic"
        assert np.array_equal(parts.sum, parts.shortcut + parts.branch)
        assert np.array_equal(parts.output, np.maximum(parts.sum, 0))  # after the final ReLU
        # The block's output is what the network computes there, and an identity shortcut
        # carries the block's input unchanged.
        assert np.allclose(parts.output, feature_maps(model, image, block)[0], atol=1e-6)
        for array, norm in zip((parts.shortcut, parts.branch, parts.sum, parts.output),
                               parts.norms):
            assert norm == pytest.approx(float(np.linalg.norm(array)), rel=1e-5)
        low, high = parts.levels()
        assert low == min(parts.shortcut.min(), parts.branch.min(), parts.sum.min())
        assert high == max(parts.shortcut.max(), parts.sum.max(), parts.output.max(),
                           parts.branch.max())
    identity = block_decomposition(model, image, "layer1.0")
    assert np.allclose(identity.shortcut, feature_maps(model, image, "relu")[0], atol=1e-6)
    assert identity.shortcut.shape == (8, 10, 10)
    assert block_decomposition(model, image, "layer2.0").shortcut.shape == (12, 5, 5)
    assert untouched(model)


def test_a_zero_initialised_branch_passes_the_shortcut_through():
    model = small_model()
    model.zero_init_last()
    model.layer1[0].bn2.bias.data.zero_()
    parts = block_decomposition(model, torch.randn(1, 1, 10, 10), "layer1.0")
    assert parts.norms[1] == 0.0 and np.array_equal(parts.sum, parts.shortcut)


def test_blocks_without_a_sum_are_one_clear_sentence():
    model, image = small_model(), torch.randn(1, 1, 10, 10)
    with pytest.raises(UserError, match="layer1.1 is a plain block"):
        block_decomposition(model, image, "layer1.1")
    with pytest.raises(UserError, match="not a residual block"):
        block_decomposition(model, image, "layer1.0.conv1")
    with pytest.raises(UserError, match="no layer named"):
        block_decomposition(model, image, "layer9.0")


def test_the_epoch_end_probe_of_a_block_carries_its_decomposition_and_cam():
    probes = []

    class Probes(Callback):
        def on_epoch_end(self, event):
            probes.append(event.probe)

    trainer = Trainer(TINY, recipe(epochs=2), callbacks=[Probes()], data=tiny_data())
    trainer.set_probe("layer2.0", 4)
    trainer.run()
    assert len(probes) == 2
    for probe in probes:
        parts, cam = probe.decomposition, probe.cam
        assert parts.block == "layer2.0" and np.allclose(parts.output, probe.maps, atol=1e-5)
        assert parts.predicted == probe.predicted == cam.predicted == cam.target_class
        assert cam.heatmap.shape == (10, 10) and cam.heatmap.max() <= 1
    assert not np.array_equal(probes[0].decomposition.branch, probes[1].decomposition.branch)
    trainer.set_probe("layer1.0.conv1", 0)  # not a block: feature maps and CAM only
    probe = trainer.compute_probe()
    assert probe.decomposition is None and probe.cam is not None


# -- receptive fields ----------------------------------------------------------------------


def stage_fields(rows_or_fields, names=("layer1", "layer2", "layer3", "layer4")):
    return [rows_or_fields[name] for name in names]


def test_resnet50_stage_fields_are_35_91_267_427_in_our_build_and_torchvision():
    analysis = analyse(build_preset("resnet50"))
    assert [analysis.row(n).receptive_field for n in ("layer1", "layer2", "layer3", "layer4")
            ] == [(35, 35), (91, 91), (267, 267), (427, 427)]
    assert [analysis.row(n).jump[0] for n in ("layer1", "layer2", "layer3", "layer4")] == [
        4, 8, 16, 32]
    with torch.device("meta"):
        theirs = receptive_fields(torchvision.models.resnet50(), (3, 224, 224))
    assert [field.size[0] for field in stage_fields(theirs)] == [35, 91, 267, 427]


def test_the_original_stride_in_1x1_resnet50_gives_35_99_291_483():
    """The architecture data has no stride-in-1x1 bottleneck (ours strides the 3x3, as
    torchvision does), so the test moves the stride on the built modules."""
    model = build_model(build_preset("resnet50"), device="meta")
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    fields = receptive_fields(model, (3, 224, 224))
    assert [field.size[0] for field in stage_fields(fields)] == [35, 99, 291, 483]


def test_every_summary_row_has_its_field_and_jump(capsys):
    assert main(["summary", "resnet50", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    last_of_stage = {}
    for layer in layers:
        assert isinstance(layer["receptive_field"], int) and isinstance(layer["jump"], int)
        last_of_stage[layer["name"].split(".")[0]] = layer
    assert [last_of_stage[f"layer{i}"]["receptive_field"] for i in range(1, 5)] == [
        35, 91, 267, 427]
    assert main(["summary", "resnet18", "--input", "3,64,96", "--json"]) == 0
    fc = json.loads(capsys.readouterr().out)["layers"][-1]
    assert fc["name"] == "fc" and isinstance(fc["receptive_field"], list)  # [height, width]
    assert main(["summary", "resnet20"]) == 0
    table = capsys.readouterr().out.splitlines()
    header = next(line for line in table if line.startswith("Layer"))
    assert header.split()[-2:] == ["Field", "Jump"]
    assert next(line for line in table if line.startswith("layer3 ")).split()[-2:] == [
        "81", "4"]


def test_a_units_box_is_its_field_clipped_to_the_image():
    field = analyse(build_preset("resnet50")).row("layer1").field
    assert field.box(0, 0, 224, 224) == (0, 0, 17, 17)  # 35 pixels centred on (0, 0)
    assert field.box(10, 20, 224, 224) == (23, 63, 57, 97)  # centred 4 px per unit along
    assert field.box(55, 55, 224, 224) == (203, 203, 223, 223)


def test_the_effective_field_lies_inside_the_theoretical_one():
    model = small_model()
    image = torch.randn(1, 1, 10, 10)
    field = analyse(SMALL).row("layer1.0").field  # 3x3 stem + two 3x3: 7 pixels
    assert field.size == (7, 7)
    heat = effective_receptive_field(model, image, "layer1.0", 5, 6)
    top, left, bottom, right = field.box(5, 6, 10, 10)
    inside = np.zeros_like(heat, dtype=bool)
    inside[top:bottom + 1, left:right + 1] = True
    assert heat.shape == (10, 10) and heat.max() == 1.0
    assert np.all(heat[~inside] == 0) and heat[5, 6] > 0
    corner = effective_receptive_field(model, image, "layer2.0", 0, 0)
    assert corner[:3, :3].max() > 0 and corner[-1, -1] == 0
    assert untouched(model)
    with pytest.raises(UserError, match="pick a unit inside"):
        effective_receptive_field(model, image, "layer2.0", 5, 0)
    with pytest.raises(UserError, match="12 channels"):
        effective_receptive_field(model, image, "layer2.0", 0, 0, channel=12)


# -- Grad-CAM ------------------------------------------------------------------------------


def textbook_grad_cam(model, image, layer, target):
    """Selvaraju et al. by hand: ReLU of the maps weighted by their mean gradient."""
    module = dict(model.named_modules())[layer]
    kept = []

    def keep(_module, _inputs, output):
        output = output.clone()  # the block's in-place ReLU must not write over it
        output.retain_grad()
        kept.append(output)
        return output

    handle = module.register_forward_hook(keep)
    try:
        logits = model.eval()(image)
    finally:
        handle.remove()
    logits[0, target].backward()
    maps, grads = kept[0].detach()[0], kept[0].grad[0]
    cam = torch.relu((grads.mean(dim=(1, 2))[:, None, None] * maps).sum(0))
    cam = torch.nn.functional.interpolate(cam[None, None], size=image.shape[2:],
                                          mode="bilinear")[0, 0]
    return (cam / cam.max()).numpy() if cam.max() > 0 else cam.numpy()


def test_grad_cam_is_the_textbook_map_and_leaves_the_network_as_it_was():
    model = small_model()
    image = torch.randn(1, 1, 10, 10)
    probabilities = model.eval()(image).detach().softmax(1)[0]
    model.train()
    peaks = []
    for target in range(3):
        cam = grad_cam(model, image, "layer2.0", target_class=target)
        assert untouched(model)
        assert cam.heatmap.shape == (10, 10) and cam.target_class == target
        assert cam.predicted == int(probabilities.argmax())
        assert cam.score == pytest.approx(float(probabilities[target]), rel=1e-5)
        expected = textbook_grad_cam(small_model(), image, "layer2.0", target)
        assert np.allclose(cam.heatmap, expected, atol=1e-5)
        assert cam.heatmap.min() >= 0
        peaks.append(cam.heatmap.max())
    assert max(peaks) == pytest.approx(1.0)  # scaled to 1 (a class nothing supports is 0)
    assert grad_cam(model, image, "layer2.0").target_class == int(probabilities.argmax())


def test_grad_cam_points_at_the_band_that_decides_the_class():
    """Each class of the tiny data is a bright band of rows; after training, the CAM of the
    predicted class lies more on that band than off it."""
    data = tiny_data()
    trainer = Trainer(TINY, recipe(epochs=4), data=data)
    trainer.run()
    maker = BatchMaker.for_bundle(data, trainer.recipe, torch.device("cpu"))
    labels = data.test_labels.numpy()
    hits = 0
    for index in range(12):
        label = int(labels[index])
        cam = explain_test_image(trainer.model, data.test_images, index, label, maker,
                                 layer="layer1.0")
        band = np.zeros(10, bool)
        band[3 * label:3 * label + 4] = True
        hits += cam.heatmap[band].mean() > cam.heatmap[~band].mean()
    assert hits >= 9


def test_explaining_a_wrong_prediction_names_bad_input_in_one_sentence():
    data = tiny_data()
    model = build_model(TINY.replace(input_size=(10, 10)))
    maker = BatchMaker.for_bundle(data, recipe(), torch.device("cpu"))
    cam = explain_test_image(model, data.test_images, 3, 1, maker)  # default: last stage
    assert cam.layer == "layer2" and cam.heatmap.shape == (10, 10)
    with pytest.raises(UserError, match="test image #30 does not exist"):
        explain_test_image(model, data.test_images, 30, 1, maker)
    with pytest.raises(UserError, match="class 3 does not exist"):
        explain_test_image(model, data.test_images, 0, 3, maker)
    with pytest.raises(UserError, match="gives a vector"):
        explain_test_image(model, data.test_images, 0, 1, maker, layer="fc")
