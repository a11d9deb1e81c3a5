"""The Train tab's "Start from": random, ImageNet weights (torchvision's networks only), or a
file; "Freeze up to" and the pretrained rate, mapped to the recipe and remembered."""

from __future__ import annotations

import json

import pytest
import torch
from PySide6.QtCore import QSettings
from training_support import (  # noqa: F401 (fixtures)
    HostWindow,
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    tiny_architecture,
    tiny_bundle,
    wait_idle,
)

from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import IMAGENET_WEIGHTS
from resnet_gui.engine import weights as weights_module
from resnet_gui.engine.events import Callback
from resnet_gui.engine.model import build_model
from resnet_gui.engine.trainer import Trainer
from resnet_gui.qt.train.start_from import FILE, NOT_TORCHVISION_TIP
from resnet_gui.qt.training_tabs import RECIPE_SETTING, install_training_panels

pytestmark = pytest.mark.timeout(60)
RESNET18_FILE = "resnet18-f37072fd.pth"


class FirstWeights(Callback):
    """Keeps a copy of the network's weights as the run starts (before its first step)."""

    def __init__(self) -> None:
        self.trainer = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_start(self, event) -> None:
        self.state = {k: v.detach().clone() for k, v in self.trainer.model.state_dict().items()}


def make_host(qtbot, store, arch, settings=None):
    first = FirstWeights()

    def factory(**kwargs):
        trainer = Trainer(**{**kwargs, "callbacks": (*kwargs["callbacks"], first)})
        first.trainer = trainer
        return trainer

    host = HostWindow(arch)
    if settings is not None:
        host.settings = settings
    bundle = tiny_bundle()
    install_training_panels(host, store, trainer_factory=factory,
                            data_loader=lambda recipe: bundle)
    host.show()
    host.first_weights = first
    return host


@pytest.fixture
def host(qtbot, store):
    window = make_host(qtbot, store, tiny_architecture())
    yield window
    panel(window).session.shutdown()
    window.close()


@pytest.fixture
def weights_file(tmp_path):
    """A state dict of the tiny network (one grey channel, ten classes), as torch.save
    writes it: torchvision's format."""
    torch.manual_seed(123)
    model = build_model(tiny_architecture())
    path = tmp_path / "tiny-weights.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def choose_file(p, path):
    p.form.start_from.ask_file = lambda start: str(path)
    p.form.start_from.start_combo.setCurrentIndex(p.form.start_from.start_combo.findData(FILE))


def test_start_from_a_file_starts_the_run_from_its_weights(qtbot, host, weights_file):
    path, saved = weights_file
    p = set_quick_run(host, epochs=1)
    choose_file(p, path)
    assert p.form.recipe().weights == str(path)
    assert p.form.start_from.file_row.isVisibleTo(p.form)
    p.start_button.click()
    wait_idle(qtbot, p)
    first = host.first_weights.state
    assert first is not None, p.message
    for key, value in saved.items():
        assert torch.equal(first[key], value), key


def test_freezing_keeps_the_frozen_stage_as_the_file_had_it(qtbot, host, weights_file):
    path, saved = weights_file
    p = set_quick_run(host, epochs=1)
    choose_file(p, path)
    form = p.form.start_from
    assert form.freeze_combo.isEnabled() and form.rate_spin.isEnabled()
    form.freeze_combo.setCurrentIndex(form.freeze_combo.findData("layer1"))
    assert p.form.recipe().freeze == "layer1"
    p.start_button.click()
    wait_idle(qtbot, p)
    trained = {k: v.detach().cpu() for k, v in p.session.controller.last_model.state_dict().items()}
    frozen = [k for k in saved if k.split(".")[0] in ("conv1", "bn1", "layer1")]
    assert frozen and all(torch.equal(trained[k], saved[k]) for k in frozen)
    assert not torch.equal(trained["layer2.0.conv1.weight"], saved["layer2.0.conv1.weight"])


def test_random_start_offers_no_freezing(host):
    form = panel(host).form
    fields = form.start_from
    fields.start_combo.setCurrentIndex(fields.start_combo.findData(None))
    assert not fields.freeze_combo.isEnabled() and not fields.rate_spin.isEnabled()
    assert "start from ImageNet weights or a file" in fields.freeze_combo.toolTip()
    recipe = form.recipe()
    assert recipe.weights is None and recipe.freeze is None


def test_imagenet_is_offered_only_for_torchvision_networks(qtbot, store):
    tiny = make_host(qtbot, store, tiny_architecture())
    fields = panel(tiny).form.start_from
    assert not fields.imagenet_enabled
    item = fields.start_combo.model().item(fields.start_combo.findData(IMAGENET_WEIGHTS))
    assert item.toolTip() == NOT_TORCHVISION_TIP
    tiny.document.apply(build_preset("resnet34", 1, 10, (32, 32)), "preset")
    assert fields.imagenet_enabled
    assert [fields.freeze_combo.itemData(i) for i in range(fields.freeze_combo.count())] == \
        [None, "stem", "layer1", "layer2", "layer3", "layer4"]
    panel(tiny).session.shutdown()
    tiny.close()


def test_imagenet_offline_without_the_file_says_which_file_and_where(qtbot, store, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights_module, "_download", lambda weights: "no network in tests")
    window = make_host(qtbot, store, build_preset("resnet18", 1, 10, (32, 32)))
    p = set_quick_run(window, epochs=1)
    fields = p.form.start_from
    assert fields.imagenet_enabled
    fields.start_combo.setCurrentIndex(fields.start_combo.findData(IMAGENET_WEIGHTS))
    p.start_button.click()
    wait_idle(qtbot, p)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    message = p.message
    assert f"put {RESNET18_FILE} in {folder}" in message
    assert message.count(". ") == 0  # one sentence
    assert window.first_weights.state is None  # it never started training
    p.session.shutdown()
    window.close()


def test_the_start_settings_come_back_at_the_next_launch(qtbot, store, weights_file,
                                                        isolated_settings):
    path, _saved = weights_file
    first = make_host(qtbot, store, tiny_architecture(), settings=isolated_settings)
    p = panel(first)
    choose_file(p, path)
    p.form.start_from.freeze_combo.setCurrentIndex(2)  # layer1
    p.form.start_from.rate_spin.setValue(0.25)
    stored = json.loads(isolated_settings.value(RECIPE_SETTING, "", str))
    assert (stored["weights"], stored["freeze"], stored["pretrained_lr_scale"]) == \
        (str(path), "layer1", 0.25)
    p.session.shutdown()
    first.close()
    second = make_host(qtbot, store, tiny_architecture(), settings=QSettings(
        isolated_settings.fileName(), QSettings.Format.IniFormat))
    recipe = panel(second).form.recipe()
    assert (recipe.weights, recipe.freeze, recipe.pretrained_lr_scale) == \
        (str(path), "layer1", 0.25)
    assert panel(second).form.start_from.file_edit.text() == str(path)
    panel(second).session.shutdown()
    second.close()
