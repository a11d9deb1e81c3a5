"""The Train tab's block telemetry heatmap (issue 12, section 1): filled live while a run
trains, one row per residual block; a metric chooser; hover and click; reopened runs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    tiny_architecture,
    wait_idle,
    window,
)

from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.events import BlockStats, TelemetryEvent
from resnet_gui.engine.runs import RunRecorder
from resnet_gui.engine.telemetry import METRICS
from resnet_gui.qt.train.telemetry_heatmap import colour_scale, nice_stride

pytestmark = pytest.mark.timeout(60)
BLOCKS = ("layer1.0", "layer2.0")


def train_with_telemetry(qtbot, window, every=1, pause_at_first_sample=False):
    """A 2-epoch tiny run (10 steps) sampling the blocks every ``every`` steps."""
    p = set_quick_run(window, epochs=2)
    p.observe.every_spin.setValue(every)
    paused = []
    if pause_at_first_sample:
        def pause(_event):
            if not paused:
                paused.append(True)
                p.session.pause()
        p.session.telemetry.connect(pause)
    p.start_button.click()
    return p, paused


def cell_centre(heatmap, row, column):
    """The heatmap cell's centre in the plot widget's viewport coordinates."""
    scene = heatmap.plot.getPlotItem().vb.mapViewToScene(QPointF(column + 0.5, row + 0.5))
    return heatmap.plot.mapFromScene(scene)


def test_the_heatmap_fills_live_during_a_run_with_one_row_per_block(qtbot, window):
    p, paused = train_with_telemetry(qtbot, window, every=1, pause_at_first_sample=True)
    heatmap = p.heatmap
    # Paused at the first sample: the run is live, and its sample is already drawn.
    qtbot.waitUntil(lambda: bool(paused) and heatmap.shown.shape[1] >= 1, timeout=20_000)
    assert p.session.active
    assert heatmap.blocks == BLOCKS and heatmap.shown.shape[0] == len(BLOCKS)
    assert heatmap.image.image is not None and heatmap.image.image.shape[0] == len(BLOCKS)
    p.session.resume()
    wait_idle(qtbot, p)
    qtbot.waitUntil(lambda: heatmap.shown.shape == (2, 10), timeout=5_000)
    assert heatmap.history.steps == list(range(10))  # every step of 2 epochs of 5
    assert np.isfinite(heatmap.shown).all() and (heatmap.shown > 0).all()
    # What the window drew is what the run store kept.
    stored = p.session.load_run(p.run_list.run_ids()[0]).log.telemetry
    assert stored.steps == heatmap.history.steps
    np.testing.assert_allclose(stored.metric("residual_ratio").T, heatmap.shown, rtol=1e-6)


def test_the_metric_chooser_changes_the_values_shown(qtbot, window, store):
    run = recorded_run(store)
    p = panel(window)
    heatmap = p.heatmap
    heatmap.load_history(run.log.telemetry)
    shown = {}
    for metric in METRICS:
        heatmap.metric_combo.setCurrentIndex(heatmap.metric_combo.findData(metric))
        shown[metric] = heatmap.shown.copy()
        np.testing.assert_allclose(shown[metric], run.log.telemetry.metric(metric).T)
    assert not np.allclose(shown["residual_ratio"], shown["grad_norm"])
    heatmap.set_metric("grad_norm")  # spans four decades: coloured by its logarithm
    assert heatmap.log_scale and "log" in heatmap.colour_bar.axis.labelText
    np.testing.assert_allclose(heatmap.image.image, np.log10(shown["grad_norm"]), rtol=1e-6)
    heatmap.set_metric("cosine")  # signed: linear, on -1..1
    assert not heatmap.log_scale and heatmap.colour_bar.levels() == (-1.0, 1.0)


def test_hovering_a_cell_names_block_step_and_value(qtbot, window, store):
    run = recorded_run(store)
    p = panel(window)
    heatmap = p.heatmap
    heatmap.load_history(run.log.telemetry)
    qtbot.wait(50)
    qtbot.mouseMove(heatmap.plot.viewport(), cell_centre(heatmap, 1, 2))
    qtbot.waitUntil(heatmap.hover_text.isVisible, timeout=2_000)
    text = heatmap.hover_text.textItem.toPlainText()
    value = run.log.telemetry.metric("residual_ratio")[2, 1]
    assert "layer2.0" in text and "step 20" in text and f"{value:.4g}" in text


def test_clicking_a_cell_opens_that_block_in_inspect(qtbot, window, store):
    run = recorded_run(store)
    p = panel(window)
    window.tabs.setCurrentWidget(p)
    p.heatmap.load_history(run.log.telemetry)
    qtbot.wait(50)
    qtbot.mouseClick(p.heatmap.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=cell_centre(p.heatmap, 1, 0))
    inspect = window.findChild(QWidget, "inspectPanel")
    assert window.tabs.currentWidget() is inspect
    assert inspect.feature_maps.current_layer == "layer2.0"


def test_a_reopened_run_shows_its_stored_heatmap(qtbot, window, store):
    run = recorded_run(store)
    p = panel(window)
    p.refresh_runs()
    p.run_list.select(run.run_id)
    window.findChild(QWidget, "reopenRunButton").click()
    assert p.heatmap.history.steps == [0, 10, 20, 30]
    assert p.heatmap.blocks == BLOCKS
    np.testing.assert_allclose(p.heatmap.shown, run.log.telemetry.metric("residual_ratio").T)
    assert "2 blocks × 4 samples" in p.heatmap.note.text()


def test_the_telemetry_setting_off_records_no_samples(qtbot, window):
    p, _ = train_with_telemetry(qtbot, window, every=0)
    wait_idle(qtbot, p)
    assert len(p.heatmap.history) == 0 and "No block telemetry yet" in p.heatmap.note.text()


def test_colour_scale_is_logarithmic_only_over_a_decade_of_positive_values():
    spans, is_log = colour_scale(np.array([[0.01, 1.0], [0.5, np.nan]]))
    assert is_log and spans[0, 0] == pytest.approx(-2.0) and np.isnan(spans[1, 1])
    assert not colour_scale(np.array([[0.5, 1.0]]))[1]
    assert not colour_scale(np.array([[-0.5, 1.0, 30.0]]))[1]
    assert [nice_stride(n) for n in (5, 8, 9, 30, 90, 400)] == [1, 1, 2, 5, 20, 50]


# -- a stored run with telemetry -------------------------------------------------------------


def recorded_run(store):
    """A run of the tiny network with four telemetry samples, as the recorder stores it."""
    run = store.create(tiny_architecture(), Recipe(epochs=1))
    recorder = RunRecorder(store, run)
    for index, step in enumerate((0, 10, 20, 30)):
        recorder.on_telemetry(TelemetryEvent(step, step / 40, (
            BlockStats("layer1.0", 1.2 - 0.1 * index, 0.3, 10.0 ** -index, 5.0 + index),
            BlockStats("layer2.0", 0.4 - 0.05 * index, -0.2, 3 * 10.0 ** -index, 7.0))))
    recorder._save()
    return store.load(run.run_id)
