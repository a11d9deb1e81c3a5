"""Inside a residual block, in the Inspect tab (issue 12): the x / F(x) / sum / output rows,
receptive fields of a clicked unit, Grad-CAM for a chosen class and for the gallery's wrong
predictions, before, during and after training; never on the live network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from training_support import (  # noqa: F401 (fixtures)
    CLASSES,
    TINY_WIDTHS,
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    wait_idle,
    window,
)

from resnet_gui.engine.blocks import block_decomposition
from resnet_gui.engine.explain import explain_test_image, grad_cam
from resnet_gui.engine.fields import effective_receptive_field
from resnet_gui.qt.inspect.block_view import ROWS, channel_strip
from resnet_gui.qt.inspect.fields_view import Unit, box_rect

pytestmark = pytest.mark.timeout(90)


def open_inspect(qtbot, window):
    inspect = window.training_tabs.inspect
    window.tabs.setCurrentWidget(inspect)
    qtbot.waitUntil(lambda: inspect.feature_maps.images is not None
                    and bool(inspect.feature_maps.layer_names()), timeout=20_000)
    return inspect


def show_layer(qtbot, inspect, layer, source=""):
    """Choose ``layer`` in the tree and wait until its maps (from ``source``) are shown and
    the helper thread is done."""
    assert inspect.feature_maps.select_layer(layer)
    qtbot.waitUntil(lambda: inspect.lenses.probe is not None
                    and inspect.lenses.probe.layer == layer and source in inspect.lenses.source,
                    timeout=30_000)
    qtbot.waitUntil(lambda: not inspect.session.idle_jobs.busy, timeout=30_000)
    inspect.feature_maps.graphics.viewport().repaint()  # the view settles its range
    return inspect.lenses.probe


def idle_input(inspect):
    """The idle network and the shown image as its input (for checking, in this thread)."""
    network = inspect.session.idle_network()
    return network, torch.from_numpy(inspect.lenses.probe.image)[None]


def test_a_block_shows_shortcut_branch_sum_and_output_on_one_scale(qtbot, window):
    inspect = open_inspect(qtbot, window)
    view = inspect.block_view
    probe = show_layer(qtbot, inspect, "layer2.0")
    network, image = idle_input(inspect)
    expected = block_decomposition(network.model, image, "layer2.0")
    assert expected.projected  # 6 -> 12 channels at stride 2: a projection shortcut
    for row, norm in zip(ROWS, expected.norms):
        np.testing.assert_allclose(view.row_items[row].image,
                                   channel_strip(getattr(expected, row), 0), atol=1e-5)
        assert view.row_items[row].levels is not None
        np.testing.assert_array_equal(view.row_items[row].levels, view.levels)
        assert f"{norm:.4g}" in view.row_labels[row].text
    low, high = view.levels
    assert low == -high and high > 0  # x and F(x) are signed: one scale, centred on zero
    assert view.row_items["shortcut"].image.shape[1] == TINY_WIDTHS[1] * 7 - 1  # 12 6x6 tiles
    assert "reshaping shortcut" in view.info_label.text() and "untrained" in \
        view.info_label.text()
    assert probe.decomposition is not None

    show_layer(qtbot, inspect, "layer1.0")  # same width, stride 1: x itself
    assert "identity shortcut" in view.info_label.text()
    show_layer(qtbot, inspect, "layer1.0.conv1")
    assert view.probe is None and view.row_items["sum"].image is None
    assert "not a block with a shortcut" in view.info_label.text()


def test_block_rows_before_during_and_after_training(qtbot, window):
    inspect = open_inspect(qtbot, window)
    show_layer(qtbot, inspect, "layer2.0")
    p = set_quick_run(window, epochs=2)
    shown = []
    p.session.probe_ready.connect(
        lambda probe, source: shown.append((source, probe.decomposition is not None)))
    inspect.cam_view.choose_class(3)  # the worker computes the predicted class's only
    p.start_button.click()
    qtbot.waitUntil(lambda: any("during training" in source for source, _ in shown),
                    timeout=30_000)
    assert "during training" in inspect.block_view.info_label.text()
    assert "when the run ends" in inspect.cam_view.info_label.text()
    wait_idle(qtbot, p)
    assert [has for source, has in shown if "during training" in source] == [True, True]
    qtbot.waitUntil(lambda: "after training" in inspect.block_view.info_label.text(),
                    timeout=30_000)
    qtbot.waitUntil(lambda: inspect.cam_view.cam is not None
                    and inspect.cam_view.cam.target_class == 3, timeout=30_000)


def click_unit(qtbot, inspect, channel, row, col):
    view, probe = inspect.feature_maps, inspect.lenses.probe
    height, width = probe.tile_shape
    tile_row, tile_col = divmod(channel, probe.columns)
    x, y = tile_col * (width + 1) + col + 0.5, tile_row * (height + 1) + row + 0.5
    point = view.graphics.mapFromScene(view.maps_item.mapToScene(x, y))
    qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(int(point.x()), int(point.y())))


def test_clicking_a_unit_shows_its_theoretical_and_effective_field(qtbot, window):
    inspect = open_inspect(qtbot, window)
    show_layer(qtbot, inspect, "layer2.0.conv1")  # 6x6 maps of a 12x12 input
    click_unit(qtbot, inspect, channel=5, row=1, col=4)
    fields = inspect.fields_view
    assert fields.unit == Unit("layer2.0.conv1", 5, 1, 4)
    field = inspect.session.field_of("layer2.0.conv1")
    # The stem's 3x3 and layer1.0's two 3x3 see 7 px; a 3x3 at stride 2 adds 2: 9 px, 2 apart.
    assert field.jump == (2, 2) and field.size == (9, 9)
    assert fields.box == field.box(1, 4, 12, 12) == (0, 4, 6, 11)  # clipped at the edges
    assert fields.field_rects[0].isVisible() and fields.field_rects[0].rect() == box_rect(
        fields.box)
    qtbot.waitUntil(lambda: fields.heat is not None, timeout=30_000)
    network, image = idle_input(inspect)
    expected = effective_receptive_field(network.model, image, "layer2.0.conv1", 1, 4, 5)
    np.testing.assert_allclose(fields.heat, expected, atol=1e-6)
    top, left, bottom, right = fields.box
    outside = np.ones_like(expected, bool)
    outside[top:bottom + 1, left:right + 1] = False
    assert expected.max() == 1.0 and not expected[outside].any()  # it sees only its field
    assert "9 px" in fields.info_label.text() and "2 px apart" in fields.info_label.text()


def test_grad_cam_for_the_predicted_class_and_a_chosen_one(qtbot, window):
    inspect = open_inspect(qtbot, window)
    probe = show_layer(qtbot, inspect, "layer2")
    cam = inspect.cam_view
    network, image = idle_input(inspect)
    predicted = grad_cam(network.model, image, "layer2")
    assert cam.cam.target_class == probe.predicted == predicted.target_class
    np.testing.assert_allclose(cam.picture.heat, predicted.heatmap, atol=1e-6)
    other = (probe.predicted + 3) % len(CLASSES)
    cam.choose_class(other)
    qtbot.waitUntil(lambda: cam.cam.target_class == other, timeout=30_000)
    np.testing.assert_allclose(cam.picture.heat,
                               grad_cam(network.model, image, "layer2", other).heatmap,
                               atol=1e-6)
    assert f"Grad-CAM of <b>{CLASSES[other]}</b>" in cam.info_label.text()
    show_layer(qtbot, inspect, "global_pool")  # 1x1 maps: nowhere to place a map
    assert cam.cam is None and "not maps" in cam.info_label.text()


def test_why_did_it_say_that_for_a_gallery_image(qtbot, window):
    p = set_quick_run(window, epochs=1)
    p.start_button.click()
    wait_idle(qtbot, p)
    inspect = open_inspect(qtbot, window)
    show_layer(qtbot, inspect, "layer2.0.conv2")  # the layer the gallery's maps explain
    inspect.pages.setCurrentIndex(1)
    gallery = inspect.evaluation.gallery
    qtbot.waitUntil(lambda: gallery.count() > 0, timeout=20_000)
    item = gallery.item(0)
    qtbot.mouseClick(gallery.viewport(), Qt.MouseButton.LeftButton,
                     pos=gallery.visualItemRect(item).center())
    mistakes = inspect.mistakes
    qtbot.waitUntil(lambda: mistakes.said.heat is not None, timeout=30_000)
    index = gallery.shown_indices()[0]
    network = inspect.session.idle_network()
    data = inspect.session.data
    layer = mistakes.cams[0].layer
    assert layer == "layer2.0.conv2"
    said = explain_test_image(network.model, data.test_images, index, None, network.prepare,
                              layer)
    truth = int(data.test_labels[index])
    np.testing.assert_allclose(mistakes.said.heat, said.heatmap, atol=1e-6)
    expected_truth = explain_test_image(network.model, data.test_images, index, truth,
                                        network.prepare, layer)
    np.testing.assert_allclose(mistakes.truth.heat, expected_truth.heatmap, atol=1e-6)
    assert said.predicted != truth  # the gallery lists wrong predictions
    text = mistakes.info_label.text()
    assert f"says <b>{CLASSES[said.predicted]}</b>" in text and CLASSES[truth] in text


def test_a_unit_a_relu_turned_off_says_so_rather_than_showing_black(qtbot, window):
    inspect = open_inspect(qtbot, window)
    show_layer(qtbot, inspect, "layer1.0")  # a block's output, after its ReLU
    maps = np.asarray(inspect.lenses.probe.maps)
    off = np.argwhere(maps == 0)
    assert len(off), "the tiny network has no unit at 0 for this image"
    channel, row, col = (int(v) for v in off[0])
    click_unit(qtbot, inspect, channel=channel, row=row, col=col)
    fields = inspect.fields_view
    qtbot.waitUntil(lambda: fields.heat is not None, timeout=30_000)
    assert not fields.heat.any()
    assert "is 0 for this image" in fields.info_label.text()
