"""Pictures and tables other tools read (issue 15, section 2): a run's curves as CSV, any
Train plot and the Build canvas as PNG or SVG, and the Train tab's TensorBoard option."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    wait_idle,
    window,
)

from resnet_gui.engine.tensorboard import tensorboard_available
from resnet_gui.qt.shared.picture_export import ask_export_path
from resnet_gui.qt.train.exports import PLOTS

pytestmark = pytest.mark.timeout(60)
SVG = "{http://www.w3.org/2000/svg}svg"


def trained(qtbot, window, epochs=2, tensorboard=None):
    p = set_quick_run(window, epochs=epochs)
    p.observe.every_spin.setValue(2)
    if tensorboard is not None:
        p.observe.tensorboard_check.setChecked(True)
        p.observe.folder_edit.setText(str(tensorboard))
    p.start_button.click()
    wait_idle(qtbot, p)
    p.run_list.select(p.run_list.run_ids()[0])
    return p


def assert_picture(path, min_width=300, min_height=150):
    """A readable PNG of some size that is not one flat colour."""
    image = QImage(str(path))
    assert not image.isNull(), f"{path} is not a readable image"
    assert image.width() >= min_width and image.height() >= min_height
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)  # kept: the array reads its bits
    pixels = np.frombuffer(rgb.constBits(), np.uint32).copy()
    assert len(np.unique(pixels)) > 10  # axes, labels and curves, not a blank page


def assert_svg(path):
    root = ElementTree.parse(path).getroot()
    assert root.tag == SVG
    return root


def test_curves_export_as_csv_with_the_runs_epochs(qtbot, window, tmp_path):
    p = trained(qtbot, window, epochs=2)
    path = tmp_path / "curves.csv"
    assert p.exports.export_curves(path)
    rows = list(csv.DictReader(path.open()))
    epochs = [row for row in rows if row["record"] == "epoch"]
    assert [row["epoch"] for row in epochs] == ["0", "1"]
    assert all(0 <= float(row["test_accuracy"]) <= 1 for row in epochs)
    assert [int(row["step"]) for row in epochs] == [5, 10]
    assert any(row["record"] == "step" for row in rows)
    assert "Exported" in p.message


def test_every_train_plot_exports_as_png_and_svg(qtbot, window, tmp_path):
    p = trained(qtbot, window, epochs=2)
    qtbot.waitUntil(lambda: "layer2.0" in p.heatmap.blocks, timeout=10_000)  # samples in
    p.heatmap.refresh()
    for name in PLOTS:
        png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
        assert p.exports.export_plot(name, png), p.message
        assert_picture(png, min_width=200, min_height=100)
        assert p.exports.export_plot(name, svg), p.message
        assert_svg(svg)
    # The heatmap's picture holds its block names.
    assert "layer2.0" in (tmp_path / "telemetry.svg").read_text()


def test_a_bad_export_path_is_one_sentence_and_writes_nothing(qtbot, window, tmp_path):
    p = panel(window)
    assert not p.exports.export_plot("loss", tmp_path / "loss.jpg")
    assert "neither .png nor .svg" in p.message and p.message.count(". ") == 0
    folder = tmp_path / "taken.png"
    folder.mkdir()
    assert not p.exports.export_plot("loss", folder)
    assert "is a folder" in p.message and folder.is_dir()
    assert not p.exports.export_curves(tmp_path / "none.csv")  # no run selected
    assert "select a run" in p.message and not (tmp_path / "none.csv").exists()


def test_a_suffix_we_add_never_replaces_a_file_without_asking(qtbot, tmp_path, monkeypatch):
    existing = tmp_path / "loss.png"
    existing.write_bytes(b"someone else's picture")
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(tmp_path / "loss"), "PNG image (*.png)"))
    asked = []

    def answer(*args, **kwargs):
        asked.append(args[2])
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", answer)
    parent = QWidget()
    qtbot.addWidget(parent)
    assert ask_export_path(parent, "Export", str(tmp_path), "PNG image (*.png)") == ""
    assert asked and "loss.png already exists" in asked[0]
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    assert ask_export_path(parent, "Export", str(tmp_path), "PNG image (*.png)") == str(existing)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(tmp_path / "new"), "SVG drawing (*.svg)"))
    assert ask_export_path(parent, "Export", str(tmp_path), "") == str(tmp_path / "new.svg")


def test_the_resnet18_canvas_exports_as_png_and_svg(make_window, tmp_path):
    window = make_window("resnet18")
    png, svg = tmp_path / "canvas.png", tmp_path / "canvas.svg"
    assert window.exports.export_canvas(png)
    assert_picture(png, min_width=600, min_height=300)
    assert window.exports.export_canvas(svg)
    root = assert_svg(svg)
    texts = " ".join(element.text or "" for element in root.iter()
                     if element.tag.endswith("text"))
    assert "layer4" in texts or "512" in texts  # the cards' words, as text
    assert not window.exports.export_canvas(tmp_path / "canvas.gif")
    assert "neither .png nor .svg" in window.statusBar().currentMessage()


def test_the_export_menu_offers_the_train_exports(make_window):
    window = make_window()
    names = {action.objectName() for action in window.export_menu.actions()}
    assert {"exportCanvasAction", "exportCurvesAction", "exportLossPlotAction",
            "exportTelemetryPlotAction"} <= names


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboardX is not installed")
def test_the_tensorboard_option_writes_event_files_tensorboard_reads(qtbot, window, tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    folder = tmp_path / "tb"
    trained(qtbot, window, epochs=2, tensorboard=folder)
    reader = event_accumulator.EventAccumulator(str(folder))
    reader.Reload()
    tags = reader.Tags()["scalars"]
    assert {"train/loss", "epoch/test_accuracy", "residual_ratio/layer2.0"} <= set(tags)
    assert [event.step for event in reader.Scalars("epoch/test_accuracy")] == [5, 10]
    assert [event.step for event in reader.Scalars("grad_norm/layer1.0")] == [0, 2, 4, 6, 8]


def test_the_tensorboard_option_without_a_folder_is_one_sentence(qtbot, window):
    p = set_quick_run(window)
    if not p.observe.available:
        assert not p.observe.tensorboard_check.isEnabled()
        assert "tensorboardX" in p.observe.tensorboard_check.toolTip()
        return
    p.observe.tensorboard_check.setChecked(True)
    p.start_button.click()
    assert not p.session.active and "no folder is given" in p.message
