"""The Inspect tab and the run list: feature maps before, during and after training, the
confusion matrix and its images, the mistakes gallery, and comparing, reopening and deleting
runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox, QWidget
from training_support import (  # noqa: F401 (fixtures)
    CLASSES,
    TINY_WIDTHS,
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    tiny_architecture,
    wait_idle,
    window,
)

from resnet_gui.engine.runs import RunRecorder
from resnet_gui.engine.events import EpochEnd, StepEnd, TrainEnd
from resnet_gui.qt.inspect.feature_maps import tile_at
from resnet_gui.arch.recipe import CHAPTER_RECIPE, Recipe

pytestmark = pytest.mark.timeout(60)


def inspect_panel(window):
    return window.findChild(QWidget, "inspectPanel")


def open_inspect(qtbot, window):
    """Show the Inspect tab and wait for the test images and the layer tree."""
    inspect = inspect_panel(window)
    window.tabs.setCurrentWidget(inspect)
    view = window.findChild(QWidget, "featureMapView")
    qtbot.waitUntil(lambda: view.images is not None and bool(view.layer_names()),
                    timeout=20_000)
    return inspect, view


def test_feature_maps_tile_every_channel_of_the_chosen_layer(qtbot, window):
    inspect, view = open_inspect(qtbot, window)
    assert "layer1.0.conv1" in view.layer_names() and "fc" in view.layer_names()

    assert view.select_layer("layer1.0.conv1")
    qtbot.waitUntil(lambda: view.probe is not None and view.probe.layer == "layer1.0.conv1")
    assert view.tile_count == TINY_WIDTHS[0]
    assert "untrained network" in view.info_label.text()
    height, width = view.probe.tile_shape
    assert (height, width) == (12, 12)

    view.select_layer("layer2.0.conv2")
    qtbot.waitUntil(lambda: view.probe.layer == "layer2.0.conv2")
    assert view.tile_count == TINY_WIDTHS[1]
    probe = view.probe
    rows = math.ceil(probe.channels / probe.columns)
    height, width = probe.tile_shape
    assert (height, width) == (6, 6)  # the second stage halves 12x12
    assert view.maps_item.image.shape == (rows * height + rows - 1,
                                          probe.columns * width + probe.columns - 1)


def test_layers_without_maps_cannot_be_chosen(qtbot, window):
    _, view = open_inspect(qtbot, window)
    assert not view.select_layer("fc") or view.current_layer != "fc"


def test_clicking_a_tile_enlarges_that_channel(qtbot, window):
    _, view = open_inspect(qtbot, window)
    view.select_layer("layer2.0.conv1")
    qtbot.waitUntil(lambda: view.probe is not None and view.probe.layer == "layer2.0.conv1")
    view.graphics.viewport().repaint()  # the maps arrive from a thread: let the view settle
    probe = view.probe
    height, width = probe.tile_shape
    channel = probe.channels - 1  # the last tile, bottom row
    row, column = divmod(channel, probe.columns)
    centre = (column * (width + 1) + width / 2, row * (height + 1) + height / 2)
    assert tile_at(*centre, probe) == channel

    scene_point = view.maps_item.mapToScene(*centre)
    widget_point = view.graphics.mapFromScene(scene_point)
    qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(int(widget_point.x()), int(widget_point.y())))
    assert view.enlarged_channel == channel
    np.testing.assert_array_equal(view.channel_item.image, probe.maps[channel])


def test_choosing_an_image_by_class(qtbot, window):
    _, view = open_inspect(qtbot, window)
    view.select_layer("conv1")
    view.class_combo.setCurrentIndex(view.class_combo.findData(3))
    shown = view.strip.shown_indices()
    assert shown and all(int(view.images.labels[i]) == 3 for i in shown)
    view.strip.setCurrentRow(len(shown) - 1)
    qtbot.waitUntil(lambda: view.probe is not None and view.probe.image_index == shown[-1])
    assert view.probe.label == 3 and CLASSES[3] in view.info_label.text()


def test_feature_maps_during_and_after_training(qtbot, window):
    _, view = open_inspect(qtbot, window)
    view.select_layer("layer1.0.conv2")
    p = set_quick_run(window, epochs=2)
    sources = []
    p.session.probe_ready.connect(lambda probe, source: sources.append((probe.layer, source)))
    p.start_button.click()
    wait_idle(qtbot, p)
    during = [source for layer, source in sources if "during training" in source]
    assert len(during) == 2  # the worker's probe at each epoch end
    assert all(layer == "layer1.0.conv2" for layer, _ in sources)
    # After the run, the session probes the trained network on its helper thread.
    qtbot.waitUntil(lambda: sources[-1][1].startswith("after training"))
    assert view.tile_count == TINY_WIDTHS[0]


def test_confusion_matrix_counts_every_test_image_and_cells_show_them(qtbot, window):
    p = set_quick_run(window, epochs=1)
    p.start_button.click()
    wait_idle(qtbot, p)
    inspect = inspect_panel(window)
    window.tabs.setCurrentWidget(inspect)
    table = window.findChild(QWidget, "confusionMatrixView")
    model = table.model()
    assert model.rowCount() == model.columnCount() == len(CLASSES)
    assert model.total == 20 == len(p.session.images)  # the tiny test set

    evaluation = inspect.evaluation
    confusion = model.confusion
    row, column = np.unravel_index(np.argmax(confusion), confusion.shape)
    rect = table.visualRect(model.index(int(row), int(column)))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    shown = evaluation.gallery.shown_indices()
    assert len(shown) == confusion[row, column]
    labels = p.session.images.labels
    assert all(labels[i] == row for i in shown)

    bars = evaluation.bars.opts
    assert len(bars["width"]) == len(CLASSES)
    np.testing.assert_allclose(
        bars["width"], 100 * np.diag(confusion) / np.maximum(confusion.sum(1), 1))


def test_most_confidently_wrong_gallery(qtbot, window):
    p = set_quick_run(window, epochs=1)
    p.start_button.click()
    wait_idle(qtbot, p)
    evaluation_view = inspect_panel(window).evaluation
    wrong = evaluation_view.evaluation.wrong_indices
    evaluation_view.show_most_wrong()
    shown = evaluation_view.gallery.shown_indices()
    assert shown == [int(i) for i in wrong]
    labels = p.session.images.labels
    predicted = evaluation_view.evaluation.wrong_predicted
    assert all(labels[i] != guess for i, guess in zip(shown, predicted))
    assert "Most confidently wrong" in evaluation_view.gallery_label.text()
    first = evaluation_view.gallery.item(0)
    assert CLASSES[int(predicted[0])][:9] in first.text()


# -- runs ----------------------------------------------------------------------------------


def record_run(store, epochs, steps_per_epoch, accuracy, recipe=None):
    run = store.create(tiny_architecture(), recipe or Recipe(epochs=epochs))
    recorder = RunRecorder(store, run)
    step = 0
    for epoch in range(epochs):
        for batch in range(steps_per_epoch):
            step += 1
            recorder.on_batch_end(StepEnd(
                epoch=epoch, step=step, batch=batch + 1,
                epoch_progress=epoch + (batch + 1) / steps_per_epoch, loss=1.0 / step,
                accuracy=accuracy, lr=0.1, examples_per_sec=100.0))
        recorder.on_epoch_end(EpochEnd(
            epoch=epoch, step=step, train_loss=0.5, train_accuracy=accuracy, test_loss=0.6,
            test_accuracy=accuracy, lr=0.1, seconds=1.0, examples_per_sec=100.0))
    recorder.on_train_end(TrainEnd(
        reason="completed", epoch=epochs, step=step, train_loss=0.5, train_accuracy=accuracy,
        test_accuracy=accuracy, examples_per_sec=100.0, seconds=2.0 * epochs))
    return recorder.run


def test_ticking_runs_overlays_their_curves(qtbot, window, store):
    first = record_run(store, epochs=3, steps_per_epoch=4, accuracy=0.8)
    second = record_run(store, epochs=2, steps_per_epoch=5, accuracy=0.7)
    p = panel(window)
    p.refresh_runs()
    run_list = window.findChild(QWidget, "runList")
    assert run_list.topLevelItemCount() == 2
    assert run_list.topLevelItem(0).text(1) == "70.00 %"  # newest first

    loss_plot = window.findChild(QWidget, "lossPlot").getPlotItem()
    items_before = len(loss_plot.listDataItems())
    p.run_list.set_ticked(first.run_id, True)
    p.run_list.set_ticked(second.run_id, True)
    assert set(p.plots.overlay_ids) == {first.run_id, second.run_id}
    assert len(p.plots.curves(first.run_id)["train_loss"].xData) == 12
    assert len(p.plots.curves(second.run_id)["test_accuracy"].xData) == 2
    assert list(p.plots.curves(first.run_id)["test_accuracy"].yData) == [80.0] * 3
    assert len(loss_plot.listDataItems()) == items_before + 2 * 3  # raw, train, test each

    p.run_list.set_ticked(first.run_id, False)
    assert p.plots.overlay_ids == [second.run_id]
    assert len(loss_plot.listDataItems()) == items_before + 3


def test_hovering_shows_the_values_under_the_cursor(qtbot, window, store):
    run = record_run(store, epochs=2, steps_per_epoch=4, accuracy=0.75)
    p = panel(window)
    p.refresh_runs()
    p.run_list.set_ticked(run.run_id, True)
    text = p.plots._hover.show_at("accuracy", 2.0)
    assert "test acc: 75.0 %" in text and "epoch 2.00" in text
    text = p.plots._hover.show_at("lr", 1.0)
    assert "learning rate: 0.1" in text


def test_reopen_puts_the_runs_architecture_and_recipe_back(qtbot, window, store):
    recipe = CHAPTER_RECIPE.replace(epochs=3, limit_train=1000)
    arch = tiny_architecture().replace(name="reopened")
    run = store.create(arch, recipe)
    window.document.apply(tiny_architecture().replace(name="edited since"), "edit")
    p = panel(window)
    p.refresh_runs()
    p.run_list.select(run.run_id)
    window.findChild(QWidget, "reopenRunButton").click()
    assert window.document.arch == arch  # with the input size the run trained at
    assert p.form.recipe() == recipe.replace(resize=None)
    assert "Reopened" in p.message


def test_delete_removes_a_run_after_asking(qtbot, window, store, monkeypatch):
    keep = record_run(store, epochs=1, steps_per_epoch=2, accuracy=0.5)
    gone = record_run(store, epochs=1, steps_per_epoch=2, accuracy=0.6)
    p = panel(window)
    p.refresh_runs()
    p.run_list.set_ticked(gone.run_id, True)
    p.run_list.select(gone.run_id)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kwargs: QMessageBox.StandardButton.No)
    window.findChild(QWidget, "deleteRunButton").click()
    assert len(store.list()) == 2
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    window.findChild(QWidget, "deleteRunButton").click()
    assert [s.run_id for s in store.list()] == [keep.run_id]
    assert p.run_list.run_ids() == [keep.run_id]
    assert p.plots.overlay_ids == []


def test_a_network_too_large_to_build_is_a_message_in_the_view(qtbot, window, monkeypatch):
    from resnet_gui.engine import memory

    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 4096)
    inspect, view = open_inspect(qtbot, window)
    view.select_layer("layer1.0.conv1")
    qtbot.waitUntil(lambda: "more than the 4.0 KiB of this computer's memory"
                    in view.status_label.text())
    assert view.probe is None or view.probe.layer != "layer1.0.conv1"
