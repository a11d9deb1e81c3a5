"""The training panels in the real main window: tabs beside Build, the editor locked while a
run trains, one dataset choice, and closing the window mid-run."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox, QTabWidget, QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    set_quick_run,
    store,
    tiny_architecture,
    tiny_bundle,
    wait_idle,
)

from resnet_gui.qt.shared.training_worker import running_training_threads
from resnet_gui.qt.train.panel import TrainingPanel

pytestmark = pytest.mark.timeout(60)
START_TIMEOUT = 20_000


@pytest.fixture
def main_window(make_window, store):
    bundle = tiny_bundle()
    window = make_window(run_store=store, data_loader=lambda recipe: bundle)
    window.document.reset(tiny_architecture())
    yield window
    left = running_training_threads()
    window.findChild(TrainingPanel).session.shutdown()
    assert not left, "the test left a training thread running"


def test_train_and_inspect_tabs_sit_beside_build(main_window):
    tabs = main_window.findChild(QTabWidget, "mainTabs")
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Build", "Train", "Inspect",
                                                              "Lab"]
    assert main_window.findChild(QWidget, "trainingPanel") is not None
    assert main_window.findChild(QWidget, "featureMapView") is not None


def test_the_editor_is_locked_while_a_run_trains(qtbot, main_window):
    panel = set_quick_run(main_window, epochs=300)
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.plots.live.series["train_loss"].size >= 1,
                    timeout=START_TIMEOUT)
    assert main_window.document.locked
    assert "training run is live" in main_window.document.locked_reason
    assert not main_window.lock_banner.isHidden()
    assert "locked" in panel.lock_label.text()
    panel.stop_button.click()
    wait_idle(qtbot, panel)
    assert not main_window.document.locked and main_window.lock_banner.isHidden()
    assert main_window.document.arch.name == "tiny"  # the run did not edit the document


def test_one_dataset_choice_for_the_editor_and_the_train_tab(main_window):
    panel = main_window.findChild(TrainingPanel)
    main_window.set_dataset("CIFAR-10")
    assert panel.form.recipe().dataset == "cifar10"
    assert main_window.document.arch.in_channels == 3
    panel.form.dataset_combo.setCurrentIndex(panel.form.dataset_combo.findData("mnist"))
    assert main_window.dataset.name == "MNIST" and main_window.document.arch.in_channels == 1


def test_closing_the_main_window_mid_run_stops_waits_and_keeps_the_checkpoint(
        qtbot, main_window, store, monkeypatch):
    panel = set_quick_run(main_window, epochs=300)
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.plots.live.series["train_loss"].size >= 2,
                    timeout=START_TIMEOUT)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    assert main_window.close()
    assert not main_window.isVisible()
    assert not running_training_threads()
    (summary,) = store.list()
    assert summary.status == "stopped" and store.checkpoint_path(summary.run_id).exists()
