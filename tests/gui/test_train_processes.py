"""The Train tab's "2 CPU processes": the same trainer through ``resnet-gui train --nproc 2`` in
a QProcess, on tiny Fashion-MNIST files written for the test. Its events fill the same plots,
run list and run store; Stop reaches both processes and keeps a checkpoint that resumes; a
failure is one sentence; the trained network comes back for Inspect."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox, QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    tiny_architecture,
    wait_idle,
    window,
)

from resnet_gui.cli import main
from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.runs import RunStore
from resnet_gui.qt.shared import process_worker
from resnet_gui.qt.shared.process_worker import TWO_CPU_PROCESSES, ProcessController, ProcessJob
from tests.engine.test_data import write_idx

# Two processes import torch, meet over loopback and train a few tiny steps: seconds on a
# quiet machine, more on a loaded 2-core one; no test may hang CI past these.
# one_thread: the resume in this process (--threads 1) leaves torch's setting as it was.
pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("one_thread")]
RUN_TIMEOUT = 150_000  # ms


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Fashion-MNIST files of 40 training and 20 test images whose classes differ in
    brightness: two short epochs learn them."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 40), ("t10k", 20)):
        labels = np.arange(count) % 10
        images = labels[:, None, None] * 25 + rng.integers(0, 20, (count, 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images.clip(0, 255))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return root




def on_two_processes(window, data_dir, epochs: int, **options):
    p = set_quick_run(window, epochs=epochs, **options)
    p.form.folder_edit.setText(str(data_dir))
    p.form.folder_edit.editingFinished.emit()
    combo = p.form.processes_combo
    combo.setCurrentIndex(combo.findText(TWO_CPU_PROCESSES.label))
    assert p.form.processes() == TWO_CPU_PROCESSES
    return p


def test_the_form_offers_this_process_first_and_two_cpu_processes(window):
    combo = panel(window).form.processes_combo
    labels = [combo.itemText(index) for index in range(combo.count())]
    assert labels[:2] == ["This process", "2 CPU processes"]
    assert combo.currentIndex() == 0
    assert not panel(window).form.processes().several


def test_a_two_process_run_streams_into_the_plots_and_run_list_and_completes(
        qtbot, window, store, data_dir):
    p = on_two_processes(window, data_dir, epochs=2)
    assert not p.form.device_combo.isEnabled()  # the processes' choice sets the device
    steps, epochs, started = [], [], []
    p.session.step.connect(steps.append)
    p.session.epoch.connect(epochs.append)
    p.session.run_started.connect(lambda event: started.append((event, p.message)))
    p.start_button.click()
    assert p.session.active and not p.start_button.isEnabled()
    wait_idle(qtbot, p, timeout=RUN_TIMEOUT)

    assert "Traceback" not in p.message
    ((start, said),) = started
    assert start.processes == 2 and start.device == "cpu"
    assert said.startswith("Training on 2 CPU processes"), said
    assert steps[-1].step == 10 and [event.epoch for event in epochs] == [0, 1]
    curves = p.plots.curves()
    assert len(curves["train_loss"].xData) == len(steps)
    assert list(curves["test_accuracy"].xData) == [1.0, 2.0]
    assert p.message.startswith("Finished"), p.message
    (summary,) = store.list()
    assert (summary.status, summary.epochs_done, summary.steps) == ("completed", 2, 10)
    run = store.load(summary.run_id)
    assert run.log.steps["step"][-1] == 10 and run.log.epochs["epoch"] == [0, 1]
    assert run.log.telemetry.steps  # the per-block telemetry reached the run store
    assert store.checkpoint_path(summary.run_id).is_file()
    run_list = window.findChild(QWidget, "runList")
    assert run_list.topLevelItemCount() == 1 and run_list.topLevelItem(0).text(4) == "done"
    # The network the processes trained is the one Inspect shows.
    qtbot.waitUntil(lambda: p.session.images is not None, timeout=30_000)
    network = p.session.idle_network()
    assert network.source == "after training (2 epochs)"
    saved = load_checkpoint(store.checkpoint_path(summary.run_id))["model"]
    assert all((network.model.state_dict()[name] == value).all()
               for name, value in saved.items())
    # Its evaluation, for Inspect's confusion matrix, is the one the processes reported.
    qtbot.waitUntil(lambda: p.session.evaluation is not None, timeout=30_000)
    assert p.session.evaluation.confusion.sum() == 20
    assert p.session.evaluation.accuracy == pytest.approx(epochs[-1].test_accuracy)


def test_stop_reaches_both_processes_and_keeps_a_checkpoint_that_resumes(
        qtbot, window, store, data_dir):
    p = on_two_processes(window, data_dir, epochs=500)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.plots.live.series["train_loss"].size >= 3, timeout=RUN_TIMEOUT)
    p.pause_button.click()
    assert p.pause_button.text() == "Resume"
    p.pause_button.click()
    p.stop_button.click()
    wait_idle(qtbot, p, timeout=RUN_TIMEOUT)

    assert p.message.startswith("Stopped") and "checkpoint is kept" in p.message, p.message
    (summary,) = store.list()
    assert summary.status == "stopped" and 0 < summary.steps < 2500
    checkpoint = store.checkpoint_path(summary.run_id)
    assert load_checkpoint(checkpoint)["step"] == summary.steps
    assert p.start_button.isEnabled() and not p.stop_button.isEnabled()
    assert main(["train", "--resume", str(checkpoint), "--max-steps", str(summary.steps + 2),
                 "--no-progress", "--threads", "1"]) == 0
    assert load_checkpoint(checkpoint)["step"] == summary.steps + 2


def test_a_failing_process_is_one_sentence_and_no_run(qtbot, window, store, tmp_path,
                                                      data_dir):
    p = on_two_processes(window, data_dir, epochs=2)
    p.form.dataset_combo.setCurrentIndex(p.form.dataset_combo.findData("folder"))
    p.form.folder_edit.setText(str(tmp_path / "no such folder"))
    p.start_button.click()
    wait_idle(qtbot, p, timeout=RUN_TIMEOUT)

    message = p.message
    assert "no such folder" in message and "\n" not in message, message
    assert "Traceback" not in message and "resnet-gui:" not in message
    assert "b00020" in p.message_label.styleSheet()  # shown as an error
    assert p.start_button.isEnabled() and p.form.epochs_spin.isEnabled()
    assert store.list() == []  # a run that never started is not a run
    assert not store.root.exists() or not any(store.root.iterdir())


def test_closing_the_window_mid_run_stops_both_processes_and_waits_for_the_save(
        qtbot, window, store, data_dir, monkeypatch):
    p = on_two_processes(window, data_dir, epochs=500)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.plots.live.series["train_loss"].size >= 2, timeout=RUN_TIMEOUT)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    assert window.close()
    assert not p.session.active
    (summary,) = store.list()
    assert summary.status == "stopped"
    assert load_checkpoint(store.checkpoint_path(summary.run_id))["step"] == summary.steps


# -- processes that misbehave: a stand-in for python, no torch ---------------------------------


def stand_in_python(tmp_path, script: str) -> str:
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def start_stand_in(qtbot, tmp_path, python: str):
    controller = ProcessController()
    errors, ended = [], []
    controller.errored.connect(errors.append)
    controller.finished.connect(lambda: ended.append(True))
    controller.start(ProcessJob(tiny_architecture(), Recipe(), RunStore(tmp_path / "runs"), 2,
                                python=python))
    return controller, errors, ended


def test_a_process_that_ignores_stop_is_terminated_then_killed_on_shutdown(
        qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(process_worker, "SAVE_TIMEOUT_MS", 300)
    monkeypatch.setattr(process_worker, "TERMINATE_TIMEOUT_MS", 300)
    killed, kill = [], os.kill
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(pid) or kill(pid, sig))
    worker = tmp_path / "worker.pid"  # a process of its own, as torchrun's are
    python = stand_in_python(tmp_path, "trap '' TERM\n"
                             "setsid sh -c \"trap '' TERM; while true; do sleep 0.1; done\" &\n"
                             f"echo $! > {worker}\nwhile true; do sleep 0.1; done")
    controller, errors, ended = start_stand_in(qtbot, tmp_path, python)
    qtbot.waitUntil(lambda: worker.is_file() and worker.read_text().strip() != "",
                    timeout=10_000)
    worker_pid = int(worker.read_text())
    began = time.monotonic()
    try:
        controller.shutdown()
    finally:
        with contextlib.suppress(OSError):  # whatever the outcome, nothing outlives the test
            kill(worker_pid, signal.SIGKILL)
    assert time.monotonic() - began < 8
    assert not controller.is_active and controller.state == "idle" and ended == [True]
    assert errors == ["the training processes were killed before the run finished"]
    assert worker_pid in killed  # torchrun's processes are killed too, not left running
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_python_that_cannot_start_or_crashes_is_one_sentence(qtbot, tmp_path):
    controller, errors, ended = start_stand_in(qtbot, tmp_path, str(tmp_path / "no-python"))
    qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
    assert len(errors) == 1 and errors[0].startswith("could not start") and "\n" not in errors[0]

    python = stand_in_python(tmp_path, "echo 'Traceback (most recent call last):' >&2\n"
                             "echo 'ZeroDivisionError: division by zero' >&2\nexit 1")
    controller, errors, ended = start_stand_in(qtbot, tmp_path, python)
    qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
    assert errors == ["the training processes ended with exit status 1 before the run "
                      "finished (its last words: ZeroDivisionError: division by zero)"]
