"""Shared pieces of the training-window tests: a tiny dataset, a stand-in for the editor
window, the run store, and the guard that fails a test leaving a training thread running."""

from __future__ import annotations

import math
import threading
import time
import types

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QMainWindow, QTabWidget, QWidget

from resnet_gui.engine.events import Evaluation, EpochEnd, FeatureProbe, StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.runs import RunStore
from resnet_gui.qt.training import install_training_panels, running_training_threads
from resnet_gui.qt.training.worker import IDLE, stop_all_training
from resnet_gui.spec.presets import build_preset


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


def tiny_bundle(train: int = 40, test: int = 20):
    generator = torch.Generator().manual_seed(0)
    return types.SimpleNamespace(
        train_images=torch.randint(0, 256, (train, 1, 12, 12), dtype=torch.uint8,
                                   generator=generator),
        train_labels=torch.arange(train) % 10,
        test_images=torch.randint(0, 256, (test, 1, 12, 12), dtype=torch.uint8,
                                  generator=generator),
        test_labels=torch.arange(test) % 10,
        class_names=CLASSES,
    )


class FakeTrainer:
    """The engine's Trainer contract, with a sleep per batch instead of learning."""

    batch_seconds = 0.005

    def __init__(self, arch, recipe, callbacks=(), checkpoint_path=None, resume_from=None,
                 data=None):
        self.arch, self.recipe, self.callbacks, self.data = arch, recipe, callbacks, data
        self.checkpoint_path = checkpoint_path
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._probe = None
        self.model = torch.nn.Linear(1, 1)

    def request_stop(self):
        self._stop.set()

    def pause(self):
        self._running.clear()

    def resume(self):
        self._running.set()

    @property
    def paused(self):
        return not self._running.is_set()

    def set_probe(self, layer, image_index=0):
        self._probe = (layer, image_index)

    def _emit(self, hook, event):
        for callback in self.callbacks:
            getattr(callback, hook)(event)

    def run(self):
        recipe, data = self.recipe, self.data
        num_train = len(data.train_labels)
        steps = max(1, num_train // recipe.batch_size)
        self._emit("on_train_start", TrainStart(
            epochs=recipe.epochs, steps_per_epoch=steps, total_steps=steps * recipe.epochs,
            start_epoch=0, start_step=0, device="cpu", precision="fp32",
            batch_size=recipe.batch_size, num_train=num_train, num_test=len(data.test_labels),
            class_names=CLASSES, input_shape=(1, 12, 12)))
        step = 0
        for epoch in range(recipe.epochs):
            for batch in range(steps):
                while not self._running.wait(0.01):
                    pass
                if self._stop.is_set():
                    return self._end("stopped", epoch, step)
                time.sleep(self.batch_seconds)
                step += 1
                loss = float("nan") if recipe.lr >= 10 else 2.0 / step
                if not math.isfinite(loss):
                    end = self._end("diverged", epoch, step,
                                    f"the loss became NaN at epoch {epoch + 1}, batch "
                                    f"{batch + 1}; lower the learning rate")
                    return end
                self._emit("on_batch_end", StepEnd(
                    epoch=epoch, step=step, batch=batch + 1,
                    epoch_progress=epoch + (batch + 1) / steps, loss=loss, accuracy=0.5,
                    lr=recipe.lr, examples_per_sec=1000.0))
            labels = data.test_labels.numpy()
            predicted = (labels + (np.arange(len(labels)) % 3 == 0)) % 10
            confusion = np.zeros((10, 10), np.int64)
            np.add.at(confusion, (labels, predicted), 1)
            wrong = np.flatnonzero(predicted != labels)
            probe = None
            if self._probe:
                probe = FeatureProbe(self._probe[0], self._probe[1],
                                     np.zeros((1, 12, 12), np.float32),
                                     np.random.rand(16, 12, 12).astype(np.float32), 1, 1)
            self._emit("on_epoch_end", EpochEnd(
                epoch=epoch, step=step, train_loss=1.0, train_accuracy=0.5, test_loss=1.2,
                test_accuracy=float(np.trace(confusion)) / len(labels), lr=recipe.lr,
                seconds=0.1, examples_per_sec=1000.0,
                evaluation=Evaluation(
                    loss=1.2, accuracy=0.6, confusion=confusion,
                    per_class_accuracy=np.diag(confusion) / confusion.sum(1),
                    wrong_indices=wrong, wrong_predicted=predicted[wrong],
                    wrong_confidence=np.linspace(0.9, 0.5, len(wrong))),
                probe=probe, checkpoint=str(self.checkpoint_path)))
        return self._end("completed", recipe.epochs, step)

    def _end(self, reason, epoch, step, message=""):
        if self.checkpoint_path:
            self.checkpoint_path.write_bytes(b"checkpoint")
        end = TrainEnd(reason=reason, epoch=epoch, step=step, train_loss=1.0,
                       train_accuracy=0.5, test_accuracy=0.6, examples_per_sec=1000.0,
                       seconds=0.2, checkpoint=str(self.checkpoint_path), message=message)
        self._emit("on_train_end", end)
        return end


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
    """The editor window's contract: add_panel, document, set_locked."""

    def __init__(self, arch):
        super().__init__()
        self.tabs = QTabWidget()
        self.setCentralWidget(self.tabs)
        self.document = _Document(arch)
        self.locks = []

    def add_panel(self, widget, title):
        self.tabs.addTab(widget, title)

    def set_locked(self, locked, reason):
        self.locks.append((locked, reason))


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


@pytest.fixture
def window(qtbot, store):
    arch = build_preset("resnet20", in_channels=1, num_classes=10, input_size=12)
    host = HostWindow(arch)
    install_training_panels(host, store, trainer_factory=FakeTrainer,
                            data_loader=lambda recipe: tiny_bundle())
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


def set_quick_run(window, epochs=2, subset=40, batch=8):
    p = panel(window)
    window.findChild(QWidget, "epochsSpin").setValue(epochs)
    window.findChild(QWidget, "subsetSpin").setValue(subset)
    p.form.batch_spin.setValue(batch)
    return p


def wait_idle(qtbot, p, timeout=20_000):
    qtbot.waitUntil(lambda: not p.session.active and p.session.controller.state == IDLE,
                    timeout=timeout)


