"""The Train tab driven as a user would: Start to finished, pause, stop, errors, closing."""

from __future__ import annotations

import time

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    wait_idle,
    window,
)

from resnet_gui.engine.model import build_model
from resnet_gui.qt.shared.training_worker import PAUSED, running_training_threads
from resnet_gui.arch.recipe import CHAPTER_RECIPE

pytestmark = pytest.mark.timeout(60)
# The first run in a process imports torch's compiler stack (seconds on a busy 2-core machine).
START_TIMEOUT = 20_000


# -- tests ----------------------------------------------------------------------------------


def test_short_run_from_start_to_finished_fills_the_curves(qtbot, window, store):
    p = set_quick_run(window, epochs=2)
    steps = []
    p.session.step.connect(steps.append)
    qtbot.mouseClick(window.findChild(QWidget, "startButton"), Qt.MouseButton.LeftButton)
    assert not window.findChild(QWidget, "startButton").isEnabled()
    wait_idle(qtbot, p)

    curves = p.plots.curves()
    # The trainer reports at most ~30 times a second, and always an epoch's last step.
    assert 2 <= len(steps) <= 10 and steps[-1].step == 10
    assert len(curves["train_loss"].xData) == len(steps)
    assert len(curves["lr"].xData) == len(steps)
    assert list(curves["test_accuracy"].xData) == [1.0, 2.0]  # one point per epoch
    assert "Finished" in p.message
    assert window.findChild(QWidget, "startButton").isEnabled()
    assert not window.findChild(QWidget, "stopButton").isEnabled()
    assert window.locks == [(True, "a training run is live"), (False, "")]
    runs = store.list()
    assert len(runs) == 1 and runs[0].status == "completed" and runs[0].epochs_done == 2
    run_list = window.findChild(QWidget, "runList")
    assert run_list.topLevelItemCount() == 1
    assert run_list.topLevelItem(0).text(4) == "done"


def test_pause_holds_the_run_and_resume_continues_it(qtbot, window):
    p = set_quick_run(window, epochs=200)
    steps = []
    p.session.step.connect(steps.append)
    p.start_button.click()
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=START_TIMEOUT)
    qtbot.mouseClick(window.findChild(QWidget, "pauseButton"), Qt.MouseButton.LeftButton)
    assert p.session.controller.state == PAUSED and p.pause_button.text() == "Resume"
    # The batch in flight lands and reports (a step takes well under a second even on a busy
    # 2-core machine); after that nothing moves.
    last_change = [len(steps), time.monotonic()]

    def settled():
        if len(steps) != last_change[0]:
            last_change[:] = [len(steps), time.monotonic()]
        return time.monotonic() - last_change[1] > 1.0

    qtbot.waitUntil(settled, timeout=10_000)
    held = len(steps)
    qtbot.wait(1000)
    assert len(steps) == held
    p.pause_button.click()
    assert p.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(steps) > held + 3, timeout=START_TIMEOUT)
    p.stop_button.click()
    wait_idle(qtbot, p)


def test_stop_ends_the_run_and_keeps_the_checkpoint(qtbot, window, store):
    p = set_quick_run(window, epochs=500)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.plots.live.series["train_loss"].size >= 3, timeout=START_TIMEOUT)
    qtbot.mouseClick(window.findChild(QWidget, "stopButton"), Qt.MouseButton.LeftButton)
    wait_idle(qtbot, p)
    assert p.message.startswith("Stopped") and "checkpoint is kept" in p.message
    (summary,) = store.list()
    assert summary.status == "stopped"
    assert store.checkpoint_path(summary.run_id).exists()
    assert p.start_button.isEnabled() and not p.pause_button.isEnabled()


def test_missing_data_is_a_message_and_the_controls_return_to_idle(qtbot, window, store,
                                                                   tmp_path):
    p = panel(window)
    p.session.data_loader = None  # the engine's own loader
    p.form.dataset_combo.setCurrentIndex(p.form.dataset_combo.findData("folder"))
    p.form.folder_edit.setText(str(tmp_path / "no such folder"))
    p.start_button.click()
    wait_idle(qtbot, p)
    assert "no such folder" in p.message
    assert "b00020" in p.message_label.styleSheet()  # shown as an error
    assert p.start_button.isEnabled() and not p.stop_button.isEnabled()
    assert p.form.epochs_spin.isEnabled()
    assert window.locks[-1] == (False, "")
    assert store.list() == []  # a run that never started is not a run


def test_a_network_too_large_is_a_message_and_never_built(qtbot, window, monkeypatch):
    import threading

    from resnet_gui.engine import memory, trainer

    built_on = []
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 4096)
    monkeypatch.setattr(trainer, "build_model", lambda arch, device=None: built_on.append(
        threading.current_thread().name) or build_model(arch, device))
    p = set_quick_run(window)
    p.start_button.click()
    wait_idle(qtbot, p)
    assert "more than the 4.0 KiB of this computer's memory" in p.message
    assert p.start_button.isEnabled()
    assert built_on == []  # neither by the worker nor afterwards on the GUI thread
    assert p.session.controller.last_model is None


def test_divergence_is_a_message_and_the_controls_return_to_idle(qtbot, window, store,
                                                                  monkeypatch):
    from resnet_gui.engine import trainer

    def poisoned_model(arch, device=None):
        model = build_model(arch, device)
        torch.nn.init.constant_(model.fc.bias, float("nan"))  # every logit becomes NaN
        return model

    monkeypatch.setattr(trainer, "build_model", poisoned_model)
    p = set_quick_run(window, epochs=3)
    p.start_button.click()
    wait_idle(qtbot, p)
    assert "NaN" in p.message and "lower the learning rate" in p.message
    assert p.start_button.isEnabled()
    assert store.list()[0].status == "diverged"
    assert p.progress.text().startswith("diverged")  # never "done"


def test_closing_mid_run_asks_then_stops_and_waits(qtbot, window, store, monkeypatch):
    p = set_quick_run(window, epochs=500)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.plots.live.series["train_loss"].size >= 2, timeout=START_TIMEOUT)
    asked = []

    def answer(choice):
        def question(*args, **kwargs):
            asked.append(args[1])
            return choice
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert not window.close()
    assert window.isVisible() and p.session.active and asked == ["Training in progress"]

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert window.close()
    assert not window.isVisible()
    assert not p.session.active and not running_training_threads()
    (summary,) = store.list()
    assert summary.status == "stopped"
    assert store.checkpoint_path(summary.run_id).exists()


def test_chapter_recipe_button_sets_the_chapters_settings(qtbot, window):
    p = panel(window)
    p.form.subset_spin.setValue(500)
    p.form.chapter_button.click()
    recipe = p.form.recipe()
    assert (recipe.lr, recipe.batch_size, recipe.optimizer, recipe.momentum,
            recipe.init) == (0.05, 128, "sgd", 0.0, "xavier")
    assert recipe.schedule == "constant" and not recipe.augment and not recipe.precise_bn
    assert recipe.limit_train == 500  # the user's quick-try subset stays
    # The chapter's 96 px is the network's input (the Build tab's one number), not a
    # hidden resize of the Train tab's.
    assert recipe.resize is None
    assert window.document.arch.input_size == (96, 96)
    assert recipe == CHAPTER_RECIPE.replace(limit_train=500, device=recipe.device, resize=None)
    qtbot.waitUntil(lambda: "28×28 images resized to 96×96" in p.form.image_size_label.text())


def test_subset_zero_means_all_training_images(window):
    p = panel(window)
    p.form.subset_spin.setValue(0)
    assert p.form.recipe().limit_train is None
    assert p.form.subset_spin.text() == "all"
    p.form.subset_spin.setValue(2000)
    assert p.form.recipe().limit_train == 2000


def test_the_editor_and_the_train_tab_share_one_dataset_choice(window):
    p = panel(window)
    assert p.form.recipe().dataset == "fashion-mnist"
    window.set_dataset("CIFAR-10")  # the editor's toolbar
    assert p.form.recipe().dataset == "cifar10"
    p.form.dataset_combo.setCurrentIndex(p.form.dataset_combo.findData("mnist"))
    assert window.datasets_chosen[-1] == "MNIST"  # the network follows (channels, classes)
    assert p.form.recipe().dataset == "mnist"
