"""Shared pieces of the training-window tests: a tiny dataset, a stand-in for the editor
window, the run store, and the guard that fails a test leaving a training thread running."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMainWindow, QTabWidget, QWidget

from resnet_gui.engine.data import make_bundle
from resnet_gui.engine.runs import RunStore
from resnet_gui.qt.training_tabs import install_training_panels
from resnet_gui.qt.shared.training_worker import IDLE, running_training_threads, stop_all_training
from resnet_gui.arch.model import Architecture, Stage, Stem


@pytest.fixture(autouse=True)
def no_training_thread_left():
    """Fail a test that leaves a training thread running (Qt aborts on destroying one)."""
    yield
    left = running_training_threads()
    if left:
        stop_all_training()  # so that the next tests and the process survive
    assert not left, "the test left a training thread running"


# -- a tiny world ---------------------------------------------------------------------------

CLASSES = tuple(f"class {i}" for i in range(10))
TINY_WIDTHS = (6, 12)  # the two stages' widths: the feature-map tests count these tiles


def tiny_architecture() -> Architecture:
    """Two small stages on 12x12 images: a real ResNet that trains in milliseconds a step."""
    return Architecture(
        name="tiny",
        stem=Stem(width=6, kernel=3, stride=1, max_pool=False),
        stages=(Stage(blocks=("basic",), width=TINY_WIDTHS[0]),
                Stage(blocks=("basic",), width=TINY_WIDTHS[1], stride=2)),
        in_channels=1, num_classes=10, input_size=(12, 12))


def tiny_bundle(train: int = 40, test: int = 20, learnable: bool = True):
    """12x12 grey images, labels cycling through the ten classes. Learnable: each class has
    its own brightness (a short run learns it); otherwise the pixels are random (no run can
    do better than chance)."""
    generator = torch.Generator().manual_seed(0)

    def images(count: int):
        labels = np.arange(count) % 10
        if not learnable:
            return torch.randint(0, 256, (count, 1, 12, 12), dtype=torch.uint8,
                                 generator=generator), labels
        level = torch.from_numpy(labels * 25).to(torch.int16).view(count, 1, 1, 1)
        noise = torch.randint(0, 20, (count, 1, 12, 12), dtype=torch.int16, generator=generator)
        return (level + noise).clamp(0, 255).to(torch.uint8), labels

    return make_bundle(*images(train), *images(test), CLASSES, name="tiny")


class _Document:
    def __init__(self, arch):
        self.arch, self._listeners = arch, []

    def add_listener(self, listener):
        self._listeners.append(listener)

    def apply(self, arch, label):
        self.arch = arch
        for listener in self._listeners:
            listener(self, label)


class HostWindow(QMainWindow):
    """The editor window's contract: add_panel, document, set_locked, and its dataset
    choice (datasetChanged, dataset, set_dataset)."""

    datasetChanged = Signal(str)

    def __init__(self, arch):
        super().__init__()
        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        self.document = _Document(arch)
        self.locks = []
        self.dataset = types.SimpleNamespace(name="Fashion-MNIST")
        self.datasets_chosen = []

    def set_dataset(self, name):
        self.dataset = types.SimpleNamespace(name=name)
        self.datasets_chosen.append(name)
        self.datasetChanged.emit(name)

    def add_panel(self, widget, title):
        self.tabs.addTab(widget, title)

    def set_locked(self, locked, reason):
        self.locks.append((locked, reason))


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


@pytest.fixture
def window(qtbot, store):
    host = HostWindow(tiny_architecture())
    bundle = tiny_bundle()
    install_training_panels(host, store, data_loader=lambda recipe: bundle)
    host.resize(1400, 900)
    host.show()
    yield host
    # Not qtbot.addWidget: pytest-qt would close the window before this check, and closing
    # mid-run asks the user.
    left = running_training_threads()
    panel(host).session.shutdown()
    host.close()
    host.deleteLater()
    assert not left, "the test left a training thread running"


def panel(window):
    return window.findChild(QWidget, "trainingPanel")


def set_quick_run(window, epochs=2, subset=0, batch=8, lr=0.1):
    """A short fp32 run on the tiny data: 40 images / 8 = 5 steps an epoch, at a rate that
    learns the tiny data's brightness classes in two epochs."""
    p = panel(window)
    window.findChild(QWidget, "epochsSpin").setValue(epochs)
    window.findChild(QWidget, "subsetSpin").setValue(subset)
    p.form.batch_spin.setValue(batch)
    p.form.lr_spin.setValue(lr)
    p.form.precision_combo.setCurrentIndex(p.form.precision_combo.findData("fp32"))
    p.form.device_combo.setCurrentIndex(p.form.device_combo.findData("cpu"))
    return p


def wait_idle(qtbot, p, timeout=20_000):
    qtbot.waitUntil(lambda: not p.session.active and p.session.controller.state == IDLE,
                    timeout=timeout)


