"""Starting weights: torchvision's format (built locally with torchvision's own builder, no
network), torch hub's cache, resnet-gui checkpoints; fine-tuning: a new head, greyscale from
RGB, frozen stages with batch norms in eval mode, a lower rate for the pretrained part."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest
import torch
import torchvision

from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import Recipe, validate_recipe
from resnet_gui.engine import weights as weights_module
from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.engine.model import build_model
from resnet_gui.engine.trainer import Trainer, make_optimizer
from resnet_gui.engine.weights import (
    FrozenBatchNorm2d,
    imagenet_state_dict,
    load_starting_weights,
    parameter_groups,
    prepare_for_training,
    read_weights_file,
    torchvision_name,
)
from resnet_gui.errors import UserError, WeightsError
from tests.engine.test_trainer import TINY, Recorder, one_thread, recipe, tiny_data  # noqa: F401

RESNET18_FILE = "resnet18-f37072fd.pth"  # the name in torchvision's Weights enum url


@pytest.fixture(scope="module")
def torchvision_resnet18(tmp_path_factory):
    """torchvision's resnet18 with its own initialisation, its state dict saved as a file."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_the_torchvision_presets_are_recognised_whatever_their_channels_and_classes():
    assert torchvision_name(build_preset("resnet50", 1, 10, 96)) == "resnet50"
    assert torchvision_name(build_preset("resnet18").replace(name="mine")) == "resnet18"
    assert torchvision_name(build_preset("d2l-resnet18")) is None
    assert torchvision_name(build_preset("resnet20")) is None


def test_torchvision_weights_give_torchvision_outputs(torchvision_resnet18):
    theirs, path = torchvision_resnet18
    arch = build_preset("resnet18", input_size=64)
    ours = build_model(arch)
    notice = load_starting_weights(ours, arch, str(path))
    assert notice == f"started from {path}"  # nothing adapted, nothing left out
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs(x))


def test_a_greyscale_network_sums_conv1_over_colour_and_gets_a_new_head(torchvision_resnet18):
    theirs, path = torchvision_resnet18
    arch = build_preset("resnet18", in_channels=1, num_classes=10, input_size=64)
    ours = build_model(arch)
    fresh_head = ours.fc.weight.detach().clone()
    notice = load_starting_weights(ours, arch, str(path))
    assert notice == (f"started from {path}: conv1 summed over colour for greyscale input; a "
                      "new 10-class head")
    assert torch.equal(ours.fc.weight, fresh_head)  # the builder's head, not the file's
    torch.testing.assert_close(ours.conv1.weight, theirs.conv1.weight.sum(1, keepdim=True))
    # A grey image gives the features torchvision's network gives for it copied to R, G, B.
    grey = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval().forward_features(grey).mean((2, 3)),
                                   torch.nn.Sequential(*list(theirs.children())[:-1])(
                                       grey.expand(-1, 3, -1, -1)).flatten(1),
                                   atol=1e-4, rtol=1e-4)


def test_imagenet_weights_come_from_torch_hubs_cache(torchvision_resnet18, tmp_path,
                                                     monkeypatch):
    _, path = torchvision_resnet18
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / RESNET18_FILE).write_bytes(path.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(weights_module, "_download", lambda weights: pytest.fail("downloaded"))
    state, source = imagenet_state_dict(build_preset("resnet18", 1, 10))
    assert source == f"torchvision's ImageNet weights for resnet18 ({folder / RESNET18_FILE})"
    assert torch.equal(state["layer4.1.bn2.weight"], torch.load(path)["layer4.1.bn2.weight"])


def test_offline_with_no_cache_names_the_file_and_the_folder(tmp_path, monkeypatch):
    import torchvision.models._api as torchvision_api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision_api, "load_state_dict_from_url", offline)
    folder = tmp_path / "hub" / "checkpoints"
    with pytest.raises(WeightsError) as caught:
        imagenet_state_dict(build_preset("resnet18"))
    assert str(caught.value) == (
        f"torchvision's ImageNet weights for resnet18 are not in {folder} and could not be "
        "downloaded (no network); download https://download.pytorch.org/models/"
        f"{RESNET18_FILE} and put {RESNET18_FILE} in {folder} (or point TORCH_HOME at a "
        "folder whose hub/checkpoints holds it)")


def test_imagenet_weights_need_a_torchvision_network():
    with pytest.raises(WeightsError, match="needs one of torchvision's networks .* "
                       "'d2l-resnet18' differs"):
        imagenet_state_dict(build_preset("d2l-resnet18"))


def test_a_resnet_gui_checkpoint_is_a_weights_file(tmp_path):
    path = tmp_path / "run.pt"
    Trainer(TINY, recipe(epochs=1), data=tiny_data(), checkpoint_path=path).run()
    state = read_weights_file(path)
    assert state.keys() == load_checkpoint(path)["model"].keys()


def test_missing_and_unexpected_tensors_are_one_sentence(tmp_path):
    state = build_model(TINY).state_dict()
    del state["layer2.0.conv2.weight"]
    state["layer3.0.conv1.weight"] = torch.zeros(3)
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "partial.pth")
    notice = load_starting_weights(build_model(TINY), TINY, str(tmp_path / "partial.pth"))
    assert notice == (
        f"started from {tmp_path / 'partial.pth'}: 1 tensor of this network is not there "
        "(first layer2.0.conv2.weight); 1 tensor there has no place here (first "
        "layer3.0.conv1.weight)")


@pytest.mark.parametrize("content, message", [
    (b"not a torch file", "cannot be read as weights"),
    ({"epoch": 3}, "holds no state dict"),
])
def test_a_file_that_holds_no_weights_is_refused(tmp_path, content, message):
    path = tmp_path / "w.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        load_starting_weights(build_model(TINY), TINY, str(path))


def test_weights_of_another_network_are_refused_saying_what_differs(tmp_path):
    wide = TINY.with_stage(0, dataclasses.replace(TINY.stages[0], width=16))
    torch.save(build_model(wide).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(WeightsError, match=r"belong to another network: layer1\.0\.conv1\."
                       r"weight is 16x8x3x3 there but 8x8x3x3 here"):
        load_starting_weights(build_model(TINY), TINY, str(tmp_path / "wide.pth"))


def test_freeze_needs_weights_and_a_stage_that_exists():
    with pytest.raises(UserError, match="'freeze': freezes pretrained layers, but the network "
                       "starts from random weights; give --weights imagenet"):
        validate_recipe(Recipe(freeze="layer1"))
    with pytest.raises(UserError, match="'freeze': must be 'stem' or a stage such as layer2"):
        validate_recipe(Recipe(weights="w.pth", freeze="layer2.0"))
    with pytest.raises(WeightsError, match="--freeze layer3: the network has 2 stages "
                       r"\(layer1 to layer2\)"):
        prepare_for_training(build_model(TINY), TINY, Recipe(weights="x", freeze="layer3"),
                             load=False)


def test_frozen_batch_norms_stay_in_eval_mode_and_the_state_dict_is_unchanged():
    model = build_model(TINY)
    keys = model.state_dict().keys()
    notice = prepare_for_training(model, TINY, Recipe(weights="x", freeze="layer1"), load=False)
    assert notice == "the stem through layer1 stays fixed (1,272 parameters, batch norms in " \
                     "eval mode)"
    model.train()
    assert type(model.layer1[0].bn1) is FrozenBatchNorm2d and not model.layer1[0].bn1.training
    assert not model.bn1.training and model.layer2[0].bn1.training
    assert model.state_dict().keys() == keys
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())


def test_pretrained_layers_learn_at_a_lower_rate_and_the_head_at_the_full_one():
    model = build_model(TINY)
    groups = parameter_groups(model, Recipe(weights="x", pretrained_lr_scale=0.2))
    head = {id(p) for p in model.fc.parameters()}
    assert [g["lr_scale"] for g in groups] == [1.0, 1.0, 0.2, 0.2]
    assert {id(p) for g in groups[:2] for p in g["params"]} == head
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    plain = make_optimizer(model, Recipe())  # from random weights: one rate for all
    assert [g["lr_scale"] for g in plain.param_groups] == [1.0, 1.0]


def test_fine_tuning_keeps_the_frozen_part_and_trains_the_rest_at_its_rates(tmp_path):
    start = build_model(TINY)
    torch.save(start.state_dict(), tmp_path / "start.pth")
    path = tmp_path / "run.pt"
    recorder = Recorder()
    plan = recipe(epochs=1, max_steps=3, weights=str(tmp_path / "start.pth"), freeze="layer1",
                  pretrained_lr_scale=0.1, schedule="constant")
    Trainer(TINY, plan, callbacks=[recorder], data=tiny_data(), checkpoint_path=path).run()
    assert recorder.notices == [f"started from {tmp_path / 'start.pth'}; the stem through "
                                "layer1 stays fixed (1,272 parameters, batch norms in eval mode)"]
    saved = load_checkpoint(path)
    before = start.state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv2.weight",
                "layer1.0.bn1.running_var", "layer1.0.bn2.weight"):
        assert torch.equal(saved["model"][key], before[key]), key
    for key in ("layer2.0.conv1.weight", "layer2.0.bn1.running_mean", "fc.weight"):
        assert not torch.equal(saved["model"][key], before[key]), key
    rates = [group["lr"] for group in saved["optimizer"]["param_groups"]]
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01])
    # The frozen run resumes: its optimizer's groups are rebuilt the same, the weights file
    # is not read again.
    (tmp_path / "start.pth").unlink()
    end = Trainer(TINY, plan.replace(max_steps=None), data=tiny_data(), checkpoint_path=path,
                  resume_from=path).run()
    assert (end.reason, end.step) == ("completed", 6)
    assert torch.equal(load_checkpoint(path)["model"]["layer1.0.conv2.weight"],
                       before["layer1.0.conv2.weight"])
