"""Training a user can trust (issue 14), in the Train tab: one input size, what "auto" will
choose, the estimate before Start, a run that did not learn, how a run ended, the live run
list, reopened runs, and loss plots that one diverged run cannot flatten."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    tiny_architecture,
    tiny_bundle,
    wait_idle,
    window,
)

from resnet_gui.arch.recipe import Recipe, plan_for_budget
from resnet_gui.engine.estimate import EpochEstimate
from resnet_gui.engine.events import EpochEnd, StepEnd, TrainEnd
from resnet_gui.engine.runs import RUN_FILE, RunRecorder
from resnet_gui.qt.train.run_progress import WARNING_STYLE

pytestmark = pytest.mark.timeout(90)
START_TIMEOUT = 60_000  # generous: a busy 2-core machine starts slowly


def sized(window, side):
    """Give the window's network a square input of ``side`` pixels."""
    window.document.apply(window.document.arch.replace(input_size=(side, side)), "size")


# -- one input size -------------------------------------------------------------------------


def test_the_train_tab_names_the_stored_size_and_the_networks_input(qtbot, window):
    p = panel(window)
    assert window.findChild(QWidget, "resizeSpin") is None  # no second size to set
    label = p.form.image_size_label
    qtbot.waitUntil(lambda: "28×28 images resized to 12×12" in label.text())
    sized(window, 96)
    qtbot.waitUntil(lambda: "28×28 images resized to 96×96" in label.text())
    sized(window, 28)
    qtbot.waitUntil(lambda: label.text().startswith("28×28 images, the network's input size"))


def test_a_run_trains_at_the_networks_input_records_it_and_reopens_it(qtbot, window, store):
    p = set_quick_run(window, epochs=1, batch=0)
    sized(window, 16)  # the tiny data is 12x12: the run resizes it to the network's 16x16
    started = []
    p.session.run_started.connect(started.append)
    p.start_button.click()  # at once: what the form says is the run's plan all the same
    qtbot.waitUntil(lambda: bool(started), timeout=START_TIMEOUT)
    assert started[0].input_shape == (1, 16, 16)
    assert p.form.batch_spin.text() == f"auto ({started[0].batch_size})"
    assert "12×12 images resized to 16×16" in p.form.image_size_label.text()
    wait_idle(qtbot, p, timeout=START_TIMEOUT)
    (summary,) = store.list()
    assert summary.input_shape == [1, 16, 16]
    stored = json.loads((store.run_dir(summary.run_id) / RUN_FILE).read_text())
    assert stored["summary"]["input_shape"] == [1, 16, 16]

    sized(window, 12)
    p.refresh_runs()
    p.run_list.select(summary.run_id)
    window.findChild(QWidget, "reopenRunButton").click()
    assert window.document.arch.input_size == (16, 16)  # the size it trained at
    assert p.form.recipe().resize is None


# -- auto settings and the estimate ---------------------------------------------------------


def test_auto_settings_show_what_they_choose_for_this_run(qtbot, window):
    p = panel(window)
    form = p.form
    form.batch_spin.setValue(0)
    form.lr_spin.setValue(0)
    form.augment_combo.setCurrentIndex(form.augment_combo.findData(None))
    form.subset_spin.setValue(2000)
    form.epochs_spin.setValue(2)
    planned = plan_for_budget(form.recipe(), 2000)
    qtbot.waitUntil(lambda: form.batch_spin.text() == f"auto ({planned.batch_size})")
    assert planned.batch_size == 32 and planned.precise_bn and not planned.augment
    assert form.lr_spin.text() == f"auto ({planned.lr:.4g})"
    assert form.precise_bn_combo.currentText() == "Auto (on for this run)"
    assert form.augment_combo.currentText() == "Auto (off for this run)"

    form.subset_spin.setValue(0)  # all 60,000 Fashion-MNIST images, for 30 epochs
    form.epochs_spin.setValue(30)
    qtbot.waitUntil(lambda: form.batch_spin.text() == "auto (256)")
    assert form.augment_combo.currentText() == "Auto (on for this run)"
    assert form.precise_bn_combo.currentText() == "Auto (off for this run)"
    form.precise_bn_combo.setCurrentIndex(form.precise_bn_combo.findData(False))
    assert form.recipe().precise_bn is False and form.recipe().batch_size is None


def fake_estimate(calls, seconds_per_image):
    def estimate(arch, recipe, num_train, num_test):
        calls.append((arch.input_size, num_train, num_test))
        return EpochEstimate(seconds=seconds_per_image * (num_train + num_test / 3),
                             seconds_per_image=seconds_per_image, device="cpu",
                             precision="fp32", probe_batch=8)
    return estimate


def test_the_estimate_comes_before_start_debounced_and_amber_when_slow(qtbot, window):
    p = panel(window)
    calls = []
    p.estimator.estimate = fake_estimate(calls, 0.2)  # 60,000 + 10,000 / 3 images: 3.5 h
    qtbot.waitUntil(lambda: not p.estimator.busy, timeout=30_000)  # the first, as it opened
    calls.clear()
    for side in (14, 16, 18, 20, 22):  # a spin box being stepped: one probe once it rests
        sized(window, side)
        qtbot.wait(20)
    qtbot.waitUntil(lambda: bool(calls) and not p.estimator.busy
                    and "h per epoch" in p.estimate_label.text(), timeout=10_000)
    assert [size for size, *_ in calls] == [(22, 22)]
    assert "3.5 h per epoch on cpu" in p.estimate_label.text()
    assert "slow" in p.estimate_label.text() and "b45309" in p.estimate_label.styleSheet()
    assert "GPU" in p.estimate_label.toolTip()

    # Half the images (the same batch size, 256) rescale the last probe of the same network:
    # nothing is measured again.
    p.form.subset_spin.setValue(30_000)
    qtbot.waitUntil(lambda: "1.9 h per epoch" in p.estimate_label.text())
    assert len(calls) == 1


def test_a_probe_disturbed_by_other_work_is_measured_again_and_the_fastest_shown(qtbot,
                                                                                window):
    """As the window opens, its imports and first analysis slowed a probe tenfold; the
    estimate shown is that of the undisturbed probe that follows."""
    p = panel(window)
    qtbot.waitUntil(lambda: not p.estimator.busy, timeout=30_000)
    measured = iter([(0.05, True), (0.08, True), (0.005, False)])
    calls, shown = [], []

    def estimate(arch, recipe, num_train, num_test):
        calls.append(num_train)
        per_image, disturbed = next(measured)
        return EpochEstimate(per_image * (num_train + num_test / 3), per_image, "cpu", "fp32",
                             8, disturbed)

    p.estimator.estimate = estimate
    p.estimator.estimated.connect(lambda estimate, _problem: shown.append(estimate))
    sized(window, 18)
    qtbot.waitUntil(lambda: len(calls) == 3 and not p.estimator.busy, timeout=15_000)
    assert [e.seconds_per_image for e in shown] == [0.005]  # the disturbed ones never shown
    assert "5 min per epoch" in p.estimate_label.text()  # 60,000 + 10,000 / 3 images
    assert "slow" not in p.estimate_label.text()


def test_no_estimate_runs_while_a_run_is_live(qtbot, window):
    p = set_quick_run(window, epochs=300)
    calls = []
    p.estimator.estimate = fake_estimate(calls, 0.001)
    qtbot.waitUntil(lambda: bool(calls), timeout=10_000)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.plots.live.series["train_loss"].size >= 2, timeout=START_TIMEOUT)
    probes = p.estimator.probes
    sized(window, 20)  # the tab hears of it, but the machine is the run's
    p.plan_changed()
    qtbot.wait(1500)
    assert p.estimator.probes == probes and not p.estimate_label.isVisible()
    p.stop_button.click()
    wait_idle(qtbot, p, timeout=START_TIMEOUT)


def test_the_real_estimate_of_the_tiny_network(qtbot, window):
    p = panel(window)
    qtbot.waitUntil(lambda: "per epoch on cpu" in p.estimate_label.text(), timeout=30_000)
    assert p.estimate_label.text().startswith("Estimated about")


# -- how a run ended ------------------------------------------------------------------------


def test_a_run_that_did_not_learn_says_so_in_amber(qtbot, window, store):
    p = set_quick_run(window, epochs=2, lr=1e-9)  # the simple case
    p.start_button.click()
    wait_idle(qtbot, p, timeout=START_TIMEOUT)
    assert p.message.startswith("The run did not learn")
    assert "chance" in p.message  # with the likely cause and a fix, from engine/verdict.py
    assert "Finished" not in p.message
    assert p.message_label.styleSheet() == WARNING_STYLE
    assert p.progress.format() == "did not learn — %p %"
    (summary,) = store.list()
    assert summary.status == "did_not_learn" and "did not learn" in summary.message
    assert p.run_list.tree.topLevelItem(0).text(4) == "did not learn"


def test_the_progress_says_stopped_after_stop(qtbot, window):
    p = set_quick_run(window, epochs=500)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.plots.live.series["train_loss"].size >= 3, timeout=START_TIMEOUT)
    p.stop_button.click()
    wait_idle(qtbot, p, timeout=START_TIMEOUT)
    assert p.progress.format() == "stopped at %p %" and p.progress.text().startswith("stopped")
    assert "done" not in p.progress.text()


def test_the_run_list_follows_the_live_run_and_reads_paused(qtbot, window):
    p = set_quick_run(window, epochs=3000)
    p.start_button.click()
    tree = p.run_list.tree
    qtbot.waitUntil(lambda: tree.topLevelItemCount() == 1 and tree.topLevelItem(0).text(2)
                    not in ("0 s", ""), timeout=START_TIMEOUT)
    row = tree.topLevelItem(0)
    qtbot.waitUntil(lambda: row.text(3).endswith("/3000") and float(row.text(3)[:-5]) > 0)
    assert row.text(4) == "running"
    p.pause_button.click()
    qtbot.waitUntil(lambda: tree.topLevelItem(0).text(4) == "paused")
    held = tree.topLevelItem(0).text(2)
    time.sleep(1.2)
    qtbot.wait(600)
    assert tree.topLevelItem(0).text(2) == held  # a pause is not training time
    p.pause_button.click()
    qtbot.waitUntil(lambda: tree.topLevelItem(0).text(4) == "running")
    p.stop_button.click()
    wait_idle(qtbot, p, timeout=START_TIMEOUT)
    assert tree.topLevelItem(0).text(4) == "stopped"


# -- stored runs in the plots ---------------------------------------------------------------


def record(store, losses, test_losses, name="tiny"):
    """A stored run with these training losses (one step each) and per-epoch test losses."""
    run = store.create(tiny_architecture().replace(name=name), Recipe(epochs=len(test_losses)))
    recorder = RunRecorder(store, run)
    per_epoch = len(losses) // len(test_losses)
    for i, loss in enumerate(losses):
        recorder.on_batch_end(StepEnd(epoch=i // per_epoch, step=i + 1, batch=i % per_epoch + 1,
                                      epoch_progress=(i + 1) / per_epoch, loss=loss,
                                      accuracy=0.5, lr=0.1, examples_per_sec=100.0))
    for epoch, test_loss in enumerate(test_losses):
        recorder.on_epoch_end(EpochEnd(
            epoch=epoch, step=(epoch + 1) * per_epoch, train_loss=losses[-1],
            train_accuracy=0.5, test_loss=test_loss, test_accuracy=0.5, lr=0.1, seconds=1.0,
            examples_per_sec=100.0))
    recorder.on_train_end(TrainEnd(
        reason="completed", epoch=len(test_losses), step=len(losses), train_loss=losses[-1],
        train_accuracy=0.5, test_accuracy=0.5, examples_per_sec=100.0, seconds=2.0))
    return recorder.run


def test_reopen_shows_the_reopened_runs_curves(qtbot, window, store):
    first = record(store, [2.3, 1.5, 1.0, 0.8], [1.1, 0.9], name="first")
    second = record(store, [2.2, 2.0, 1.9, 1.8, 1.7, 1.6], [1.9, 1.8, 1.7], name="second")
    p = panel(window)
    p.refresh_runs()
    for run, losses in ((first, [2.3, 1.5, 1.0, 0.8]), (second, [2.2, 2.0, 1.9, 1.8, 1.7, 1.6])):
        p.run_list.select(run.run_id)
        window.findChild(QWidget, "reopenRunButton").click()
        assert list(p.plots.live.raw_loss.y) == losses
        assert list(p.plots.curves()["test_loss"].xData) == [
            float(e) for e in range(1, len(run.log.epochs["epoch"]) + 1)]
        assert p.plots.legend.entries[0][0].startswith(run.summary.name)


def test_the_loss_plot_is_log_scale_and_a_diverged_run_cannot_flatten_the_others(
        qtbot, window, store):
    healthy = record(store, [2.3, 1.6, 1.1, 0.8, 0.6, 0.5], [0.9, 0.7, 0.55])
    diverged = record(store, [2.3, 1.9, 1.7, 1.6, 1.5, 1.4], [1.8e8, 3.0e7, 2.0])
    p = panel(window)
    p.refresh_runs()
    p.run_list.set_ticked(healthy.run_id, True)
    p.run_list.set_ticked(diverged.run_id, True)
    plot = p.plots.loss_plot.getPlotItem()
    assert p.plots.log_check.isChecked() and plot.ctrl.logYCheck.isChecked()
    bottom, top = plot.vb.viewRange()[1]
    assert 10 ** top <= 30 and 10 ** bottom <= 0.5  # every healthy point shows, 1.8e8 does not
    legend = p.plots.legend
    assert "up to 1.8e+08 above the scale" in legend.plain_text()

    window.findChild(QWidget, "lossLogScale").click()  # the toggle: a linear axis
    assert not plot.ctrl.logYCheck.isChecked()
    bottom, top = plot.vb.viewRange()[1]
    assert bottom == 0 and 2.3 <= top <= 30


def test_the_legend_is_outside_the_plots_and_readable(qtbot, window, store):
    first = record(store, [2.3, 1.5, 1.0, 0.8], [1.1, 0.9], name="first")
    second = record(store, [2.2, 1.4, 1.0, 0.9], [1.0, 0.95], name="second")
    p = panel(window)
    p.refresh_runs()
    p.run_list.set_ticked(first.run_id, True)
    p.run_list.set_ticked(second.run_id, True)
    for name in ("lossPlot", "accuracyPlot"):
        assert window.findChild(QWidget, name).getPlotItem().legend is None  # none inside
    legend = p.plots.legend
    assert [label for label, _ in legend.entries][-2:] == [
        f"first {first.summary.created_text[5:]}", f"second {second.summary.created_text[5:]}"]
    window.resize(window.minimumSizeHint())
    qtbot.wait(50)
    top_left = legend.mapTo(window, legend.rect().topLeft())
    shown = legend.rect().translated(top_left)
    for name in ("lossPlot", "accuracyPlot", "lrPlot", "speedPlot"):
        plot = window.findChild(QWidget, name)
        box = plot.rect().translated(plot.mapTo(window, plot.rect().topLeft()))
        assert not shown.intersects(box), name
    assert legend.font().pointSizeF() >= window.font().pointSizeF()
    assert legend.height() >= legend.fontMetrics().height()  # not squeezed out of sight


def test_the_auto_rate_follows_the_head_of_the_network_being_built(qtbot, window):
    """A max-pooled head (as d2l-resnet18 has) gets a third of SGD's planned rate, and the
    form says so as soon as the head changes in Build."""
    form = panel(window).form
    form.optimizer_combo.setCurrentIndex(form.optimizer_combo.findData("sgd"))
    form.batch_spin.setValue(0)
    form.lr_spin.setValue(0)
    form.subset_spin.setValue(2000)
    form.epochs_spin.setValue(2)
    qtbot.waitUntil(lambda: form.lr_spin.text() == "auto (0.05)")
    arch = window.document.arch
    window.document.apply(arch.replace(head=dataclasses.replace(arch.head, pool="max")), "head")
    qtbot.waitUntil(lambda: form.lr_spin.text() == "auto (0.01667)")


def test_gradient_clipping_shows_what_auto_chooses_and_takes_off_or_a_limit(qtbot, window):
    """Auto clips at 5 while the rate is auto too and not once the user sets a rate; "off"
    and a typed limit reach the recipe, and a stored recipe shows its own."""
    form = panel(window).form
    form.lr_spin.setValue(0)
    form.clip_spin.show_clip(None)
    qtbot.waitUntil(lambda: form.clip_spin.text() == "auto (5)")
    assert form.recipe().grad_clip is None
    form.lr_spin.setValue(0.02)
    qtbot.waitUntil(lambda: form.clip_spin.text() == "auto (off)")

    form.clip_spin.lineEdit().selectAll()
    qtbot.keyClicks(form.clip_spin, "off")
    qtbot.keyClick(form.clip_spin, Qt.Key.Key_Return)
    assert form.clip_spin.text() == "off" and form.recipe().grad_clip == 0.0
    form.clip_spin.lineEdit().selectAll()
    qtbot.keyClicks(form.clip_spin, "2.5")
    qtbot.keyClick(form.clip_spin, Qt.Key.Key_Return)
    assert form.recipe().grad_clip == 2.5

    form.set_recipe(form.recipe().replace(grad_clip=None))
    assert form.clip_spin.text().startswith("auto") and form.recipe().grad_clip is None
