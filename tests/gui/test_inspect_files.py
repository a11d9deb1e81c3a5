"""Trained networks come back into the window (issue 10): File > Open or a drop of a checkpoint
opens its architecture, its run and its curves; an image file dropped on Inspect shows its
prediction (equal to ``resnet-gui predict``'s), its feature maps and its CAM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QPushButton
from training_support import (  # noqa: F401 (fixtures)
    CLASSES,
    no_training_thread_left,
    panel,
    set_quick_run,
    store,
    tiny_architecture,
    tiny_bundle,
    wait_idle,
    window,
)

from resnet_gui.cli import main as cli_main
from resnet_gui.engine.explain import grad_cam
from resnet_gui.engine.trainer import Trainer
from resnet_gui.arch.recipe import Recipe

pytestmark = pytest.mark.timeout(120)


def save_png(bundle, index: int, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(bundle.test_images[index, 0].numpy()).save(path)
    return path


def drop_files(widget, paths) -> bool:
    """Drag local files onto the middle of ``widget`` and drop them, as Qt delivers a drag
    from a file manager; True when a widget accepted the drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(centre.toPoint(), actions, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    dropped = QDropEvent(centre, actions, mime, Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, dropped)
    return dropped.isAccepted()


def predicted_by_cli(capsys, checkpoint, image) -> list[tuple[str, float]]:
    capsys.readouterr()
    assert cli_main(["predict", str(checkpoint), str(image), "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    return [(entry["class"], entry["probability"]) for entry in record["top"]]


def assert_same_prediction(shown, expected) -> None:
    assert [name for name, _ in shown] == [name for name, _ in expected]
    np.testing.assert_allclose([p for _, p in shown], [p for _, p in expected], atol=1e-5)


def wait_for_image(qtbot, inspect, name):
    qtbot.waitUntil(lambda: inspect.prediction.look is not None
                    and inspect.prediction.look.path.name == name
                    and not inspect.session.idle_jobs.busy, timeout=30_000)
    return inspect.prediction.look


def test_an_image_dropped_on_inspect_is_predicted_as_predict_does(qtbot, window, store,
                                                                  tmp_path, capsys):
    p = set_quick_run(window, epochs=2)
    p.start_button.click()
    wait_idle(qtbot, p)
    checkpoint = store.list()[0].checkpoint
    image = save_png(tiny_bundle(), 7, tmp_path / "shoe.png")
    inspect = window.training_tabs.inspect
    window.tabs.setCurrentWidget(inspect)
    qtbot.waitUntil(lambda: bool(inspect.feature_maps.layer_names()), timeout=20_000)
    inspect.feature_maps.select_layer("layer2")

    target = inspect.feature_maps.graphics.viewport()  # deep inside the tab: it propagates
    assert drop_files(target, [image])
    look = wait_for_image(qtbot, inspect, "shoe.png")
    assert_same_prediction(look.top, predicted_by_cli(capsys, checkpoint, image))
    assert inspect.prediction.isVisible() and "shoe.png" in inspect.prediction.title.text()
    maps = inspect.feature_maps
    qtbot.waitUntil(lambda: maps.probe is not None and maps.probe.origin == "shoe.png")
    assert "shoe.png (an image file, predicted" in maps.info_label.text()
    assert "after training (2 epochs)" in maps.info_label.text()
    network = inspect.session.idle_network()
    cam = grad_cam(network.model, torch.from_numpy(maps.probe.image)[None], "layer2")
    assert CLASSES.index(look.top[0][0]) == cam.target_class == inspect.cam_view.cam.target_class
    np.testing.assert_allclose(inspect.cam_view.picture.heat, cam.heatmap, atol=1e-6)

    maps.select_layer("layer1.0.conv1")  # another layer: still the image file's maps
    qtbot.waitUntil(lambda: maps.probe.layer == "layer1.0.conv1", timeout=30_000)
    assert maps.probe.origin == "shoe.png"
    qtbot.mouseClick(inspect.prediction.findChild(QPushButton, "closeImageButton"),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not maps.probe.origin, timeout=30_000)
    assert not inspect.prediction.isVisible()


def test_an_image_dropped_during_a_run_waits_for_its_end(qtbot, window, tmp_path):
    image = save_png(tiny_bundle(), 3, tmp_path / "bag.png")
    inspect = window.training_tabs.inspect
    window.tabs.setCurrentWidget(inspect)
    qtbot.waitUntil(lambda: bool(inspect.feature_maps.layer_names()), timeout=20_000)
    p = set_quick_run(window, epochs=2)
    p.start_button.click()
    qtbot.waitUntil(lambda: p.session.active, timeout=10_000)
    assert drop_files(inspect, [image])
    assert "bag.png will show when the run ends" in inspect.feature_maps.status_label.text()
    wait_idle(qtbot, p)
    look = wait_for_image(qtbot, inspect, "bag.png")
    assert len(look.top) == 5 and abs(sum(p for _, p in look.top)) <= 1.0 + 1e-6


@pytest.fixture
def cli_checkpoint(tmp_path):
    """A checkpoint written as ``resnet-gui train --checkpoint`` writes it, away from the
    window's runs."""
    path = tmp_path / "cli" / "tiny.pt"
    path.parent.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(tiny_architecture(), Recipe(epochs=2, batch_size=8, lr=0.05, device="cpu",
                                            precision="fp32", seed=1),
                data=tiny_bundle(), checkpoint_path=path).run()
    finally:
        torch.set_num_threads(threads)
    return path


@pytest.fixture
def main_window(make_window, tmp_path):
    from resnet_gui.engine.runs import RunStore

    bundle = tiny_bundle()
    window = make_window(run_store=RunStore(tmp_path / "runs"), data_loader=lambda _: bundle)
    yield window
    window.training_tabs.session.shutdown()


def test_file_open_a_checkpoint_brings_its_network_run_curves_and_weights(
        qtbot, main_window, cli_checkpoint, tmp_path, capsys):
    window = main_window
    main_window.ask_open_path = lambda: str(cli_checkpoint)
    window.files.open_action.trigger()  # File > Open
    tabs = window.training_tabs
    assert window.document.arch == tiny_architecture().replace(name=window.document.arch.name)
    assert window.document.path is None  # a checkpoint is not an architecture file to save
    [summary] = tabs.session.list_runs()
    assert summary.checkpoint == str(cli_checkpoint.resolve()) and summary.epochs_done == 2
    run_list = tabs.train.run_list
    assert run_list.current_run_id() == summary.run_id and run_list.is_ticked(summary.run_id)
    run = tabs.session.load_run(summary.run_id)
    losses = tabs.train.plots.curves(summary.run_id)["train_loss"]
    assert len(losses.xData) == len(run.log.steps["step"]) > 0  # its curves are drawn
    assert window.tabs.currentWidget() is tabs.train

    inspect = tabs.inspect
    window.tabs.setCurrentWidget(inspect)
    qtbot.waitUntil(lambda: inspect.feature_maps.probe is not None
                    and "trained network from tiny.pt" in inspect.feature_maps.info_label.text(),
                    timeout=30_000)
    image = save_png(tiny_bundle(), 11, tmp_path / "coat.png")
    assert drop_files(inspect, [image])
    look = wait_for_image(qtbot, inspect, "coat.png")
    assert_same_prediction(look.top, predicted_by_cli(capsys, cli_checkpoint, image))
    assert str(cli_checkpoint.resolve()) in window.recent_files()


def test_dropping_a_checkpoint_on_the_window_opens_it_once(qtbot, main_window, cli_checkpoint):
    window = main_window
    assert drop_files(window.canvas.viewport(), [cli_checkpoint])
    assert window.document.arch.stages == tiny_architecture().stages
    assert drop_files(window.canvas.viewport(), [cli_checkpoint])  # again: the same run
    assert len(window.training_tabs.session.list_runs()) == 1


def test_a_file_that_is_not_a_checkpoint_is_one_sentence(qtbot, main_window, tmp_path):
    window = main_window
    before = window.document.arch
    fake = tmp_path / "notes.pt"
    fake.write_text("not a network")
    assert not window.open_file(fake)
    message = window.statusBar().currentMessage()
    assert "notes.pt" in message and "\n" not in message and "Traceback" not in message
    assert window.document.arch == before and not window.training_tabs.session.list_runs()


def test_resnet_gui_checkpoint_opens_the_window_on_its_run_and_weights(
        qtbot, make_window, cli_checkpoint, tmp_path):
    from resnet_gui.engine.runs import RunStore

    bundle = tiny_bundle()
    window = make_window(str(cli_checkpoint), run_store=RunStore(tmp_path / "runs"),
                         data_loader=lambda _: bundle)  # resnet-gui tiny.pt
    try:
        tabs = window.training_tabs
        assert window.document.arch.stages == tiny_architecture().stages
        [summary] = tabs.session.list_runs()
        assert summary.checkpoint == str(cli_checkpoint.resolve()) and summary.epochs_done == 2
        window.tabs.setCurrentWidget(tabs.inspect)
        qtbot.waitUntil(lambda: "trained network from tiny.pt" in
                        tabs.inspect.feature_maps.info_label.text(), timeout=30_000)
    finally:
        window.training_tabs.session.shutdown()
