"""The Lab tab driven like a user, on tiny networks and tiny generated data: the Build tab's
twin action, and the three experiments filling their plots (issue 11)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from resnet_gui.arch.twin import is_plain, plain_twin
from resnet_gui.engine.lab.common import prepare_checkpoint
from resnet_gui.engine.runs import RunStore
from tests.gui.lab_support import train_checkpoint, write_learnable_fashion_mnist

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_learnable_fashion_mnist(tmp_path_factory.mktemp("lab-data"))


@pytest.fixture(scope="module")
def checkpoint(data_dir, tmp_path_factory):
    return train_checkpoint(data_dir, tmp_path_factory.mktemp("lab-run") / "tiny.pt")


@pytest.fixture
def lab(make_window, tmp_path, data_dir):
    window = make_window(run_store=RunStore(tmp_path / "runs"), size=(1400, 900))
    window.set_data_folder(str(data_dir))
    window.tabs.setCurrentWidget(window.lab_tab)
    yield window
    window.lab_tab.shutdown()


def finish(qtbot, view) -> None:
    qtbot.waitUntil(lambda: not view.worker.busy, timeout=WAIT_MS)


def curves(plot) -> list:
    return [item for item in plot.getPlotItem().items if isinstance(item, pg.PlotDataItem)
            and item.xData is not None and len(item.xData) > 0]


def test_the_twin_action_replaces_the_network_and_undo_brings_it_back(make_window):
    window = make_window("resnet20")
    action = window.findChild(type(window.build_actions.twin), "twinAction")
    original = window.document.arch
    assert action in window.menuBar().actions()[1].menu().actions()  # Edit
    assert action.text().replace("&", "") == "Make plain twin"
    action.trigger()
    arch = window.document.arch
    assert is_plain(arch) and arch.name == "plain20" and arch == plain_twin(original)
    assert window.windowTitle().startswith("plain20")  # shown as the current network
    assert action.text().replace("&", "") == "Make residual twin"
    assert window.document.undo_label == "Make plain twin"
    window.build_actions.undo.trigger()
    assert window.document.arch == original
    assert action.text().replace("&", "") == "Make plain twin"
    window.build_actions.redo.trigger()
    action.trigger()  # back to the residual network, as one more undoable edit
    assert window.document.arch == original and window.document.undo_label == \
        "Make residual twin"


def test_degradation_trains_both_twins_into_the_plot_the_table_and_the_run_list(qtbot, lab):
    view = lab.lab_tab.degradation
    assert [d for d, box in view.depth_boxes.items() if box.isChecked()] == [20, 56]
    view.depth_boxes[56].setChecked(False)
    view.epochs_spin.setValue(2)
    view.limit_spin.setValue(64)
    qtbot.mouseClick(view.bar.run_button, Qt.MouseButton.LeftButton)
    assert view.bar.cancel_button.isEnabled()
    finish(qtbot, view)
    assert view.bar.run_button.isEnabled() and "Done: 2 of 2 runs" in view.bar.status.text()
    table = view.table
    rows = [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]
    assert [row[2] for row in rows] == ["resnet20", "plain20"]
    assert rows[0][6] == "8.75 %" and rows[1][6] == "–"  # He et al. for the ResNet only
    for row, run in zip(rows, view.result.runs):
        assert row[3] == f"{run.parameters:,}" and run.parameters > 200_000
        assert row[4] == f"{100 * run.final_train_error:.2f} %"
        assert row[5].startswith(f"{100 * run.final_test_error:.2f} %")  # a verdict may follow
    # Each plot: training error dashed and thin, test error bold, one colour for depth 20.
    for plot in (view.plain_plot, view.resnet_plot):
        train, test = curves(plot)
        assert train.opts["pen"].style() == Qt.PenStyle.DashLine
        assert test.opts["pen"].widthF() > train.opts["pen"].widthF()
        assert train.opts["pen"].color() == test.opts["pen"].color()
        assert list(test.xData) == [1, 2]
        low, high = plot.getPlotItem().viewRange()[1]  # every curve of both plots shows
        errors = [100 * e for run in view.result.runs for e in run.step_train_error]
        assert low <= min(errors) and high >= max(errors)
    assert "He et al. (2015) Table 6" in view.caption.text()
    # Both runs are in the session's run list, with checkpoints the other views can use.
    runs = lab.training_tabs.session.list_runs()
    assert sorted(r.name for r in runs) == ["plain20", "resnet20"]
    # (Two steps are too few for plain-20 to learn: the run list says so, as for any run.)
    assert all(r.status in ("completed", "did_not_learn") and r.checkpoint for r in runs)
    statuses = {run.name: run.status for run in runs}
    for row in rows:  # and the table says which did not learn
        assert row[5].endswith("(did not learn)") == (statuses[row[2]] == "did_not_learn")
    lesion = lab.lab_tab.lesion
    assert lesion.resnet_field.use_last_run() and lesion.plain_field.use_last_run()
    assert lesion.resnet_field.path.endswith(".pt") and lesion.resnet_field.path in [
        r.checkpoint for r in runs if r.name == "resnet20"]
    assert lesion.plain_field.path in [r.checkpoint for r in runs if r.name == "plain20"]


def test_lesion_fills_the_strip_and_the_k_curve_and_cancel_stops_it(qtbot, lab, checkpoint):
    view = lab.lab_tab.lesion
    view.resnet_field.set_path(checkpoint)
    view.images_spin.setValue(60)
    view.draws_spin.setValue(3)
    qtbot.mouseClick(view.bar.run_button, Qt.MouseButton.LeftButton)
    finish(qtbot, view)
    (result,) = view.results
    assert not result.stopped and result.baseline_accuracy > 0.5  # the tiny net learned
    bars = [i for i in view.strip.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    heights = bars[0].opts["height"]
    assert len(heights) == len(result.blocks) == 6
    assert list(heights) == pytest.approx(
        [100 * (b.accuracy - result.baseline_accuracy) for b in result.blocks])
    downsampling = [b.downsampling for b in result.blocks]
    assert downsampling == [False, False, False, True, False, False]
    brushes = bars[0].opts["brushes"]
    assert brushes[3].color() != brushes[0].color()  # the downsampling block is marked
    (k_curve,) = curves(view.k_plot)
    assert list(k_curve.xData) == [0, *[row.k for row in result.delete_k]]
    assert k_curve.yData[0] == pytest.approx(100 * result.baseline_accuracy)
    assert any(isinstance(i, pg.ErrorBarItem) for i in view.k_plot.getPlotItem().items)
    paths = result.path_lengths
    assert paths.n == 6 and paths.effective
    assert any(isinstance(i, pg.LinearRegionItem) for i in view.paths_plot.getPlotItem().items)
    assert f"paths of {paths.effective[0]}–{paths.effective[1]} of 6" in view.summary.text()

    # Cancel as soon as the second run reports: it ends early with what it measured.
    view.worker.progress.connect(lambda _report: view.bar.cancel_button.click())
    qtbot.mouseClick(view.bar.run_button, Qt.MouseButton.LeftButton)
    finish(qtbot, view)
    assert view.bar.status.text() == "Cancelled: showing what was measured."
    assert not view.results or view.results[0].stopped
    assert view.bar.run_button.isEnabled() and not view.bar.cancel_button.isEnabled()


def test_landscape_draws_the_contours_around_the_checkpoint_s_own_loss(qtbot, lab, checkpoint):
    view = lab.lab_tab.landscape
    view.resnet_field.set_path(checkpoint)
    view.grid_spin.setValue(5)
    view.span_spin.setValue(0.5)
    view.images_spin.setValue(60)
    qtbot.mouseClick(view.bar.run_button, Qt.MouseButton.LeftButton)
    finish(qtbot, view)
    (result,) = view.results
    loss_map = view.maps[0]
    assert loss_map.loss.shape == (5, 5) and np.isfinite(loss_map.loss).all()
    assert loss_map.loss[2, 2] == result.centre_loss
    # The engine's own check: the centre is the checkpoint's loss on those images.
    trained, evalset = prepare_checkpoint(checkpoint, images=60, precision="fp32")
    assert result.checkpoint_loss == pytest.approx(evalset.evaluate(trained.model)[0], rel=1e-4)
    assert result.centre_loss == pytest.approx(result.checkpoint_loss, rel=1e-2)
    assert loss_map.image.image[2, 2] == pytest.approx(math.log10(result.centre_loss))
    # The map's axes are alpha and beta: -0.5..0.5, each pixel centred on its grid point.
    shown = loss_map.image.mapRectToParent(loss_map.image.boundingRect())
    assert (shown.left(), shown.right()) == pytest.approx((-0.625, 0.625))
    assert (shown.top(), shown.bottom()) == pytest.approx((-0.625, 0.625))
    assert loss_map.contours and all(c.parentItem() is loss_map.image for c in
                                     loss_map.contours)
    (slice_curve,) = curves(view.slice_plot)
    assert len(slice_curve.xData) == 9
    assert f"{result.centre_loss:.4f}" in view.captions[0].text()


@pytest.mark.parametrize("contents", [None, b"not a checkpoint"])
def test_a_missing_or_damaged_checkpoint_is_one_sentence(qtbot, lab, tmp_path, contents):
    for view in (lab.lab_tab.lesion, lab.lab_tab.landscape):
        if contents is None:
            view.resnet_field.set_path("")
            assert not view.start()
        else:
            damaged = tmp_path / "damaged.pt"
            damaged.write_bytes(contents)
            view.resnet_field.set_path(damaged)
            assert view.start()
            finish(qtbot, view)
        text = view.bar.status.text()
        assert "Traceback" not in text and "\n" not in text and text.count(". ") == 0
        assert "checkpoint" in text and "#b91c1c" in view.bar.status.styleSheet()
        assert view.bar.run_button.isEnabled() and not view.results
