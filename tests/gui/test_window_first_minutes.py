"""The window's first ten minutes (issue 14), in the real main window: the chapter's size
through the Build tab, Ctrl+Z from a field, settings that persist, --data-dir, Help, a
readable canvas for resnet50, Inspect's captions, and Qt's missing system libraries."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget
from training_support import (  # noqa: F401 (fixtures)
    no_training_thread_left,
    store,
    tiny_architecture,
    tiny_bundle,
)

from gui_helpers import click_card, settle
from resnet_gui import cli
from resnet_gui.arch.edits import Part
from resnet_gui.qt import app as qt_app
from resnet_gui.qt.train.panel import TrainingPanel

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def main_window(make_window, store):
    bundle = tiny_bundle()
    window = make_window(run_store=store, data_loader=lambda recipe: bundle)
    yield window
    window.findChild(TrainingPanel).session.shutdown()


def train_panel(window) -> TrainingPanel:
    return window.findChild(TrainingPanel)


def press(widget, key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(widget, key, modifiers)
    QApplication.processEvents()


def test_the_chapter_recipe_sets_the_input_in_the_build_tab_undoably(qtbot, main_window):
    window = main_window
    window.input_spin.setValue(28)
    panel = train_panel(window)
    window.tabs.setCurrentWidget(panel)
    panel.form.chapter_button.click()
    assert window.document.arch.input_size == (96, 96)
    assert window.input_spin.value() == 96  # the Build tab's Input: the one number
    assert panel.form.recipe().resize is None and panel.form.recipe().lr == 0.05
    qtbot.waitUntil(lambda: "28×28 images resized to 96×96" in
                    panel.form.image_size_label.text())
    window.build_actions.undo.trigger()
    assert window.document.arch.input_size == (28, 28) and window.input_spin.value() == 28


def test_ctrl_z_in_a_field_undoes_the_network_once_its_value_is_applied(qtbot, main_window):
    window = main_window
    window.activateWindow()
    click_card(qtbot, window.canvas, Part.stage(1))
    field = window.inspector.stage_width
    assert field.value() == 128
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, "96")
    press(field, Qt.Key.Key_Return)  # applied: an edit of the network
    assert window.document.arch.stages[1].width == 96
    press(field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.arch.stages[1].width == 128  # the network's undo, from the field
    assert field.value() == 128
    press(field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
          | Qt.KeyboardModifier.ShiftModifier)
    assert window.document.arch.stages[1].width == 96

    # Typed but not applied: Ctrl+Z takes back the typing and leaves the network alone.
    field.selectAll()
    QTest.keyClicks(field, "40")
    press(field, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.arch.stages[1].width == 96
    assert field.text() != "40"

    # The network's name, a line edit: the same once Enter applied it.
    click_card(qtbot, window.canvas, Part.stage(0))
    window.controller.select(None)
    name = window.inspector.name_edit
    name.setFocus()
    name.selectAll()
    QTest.keyClicks(name, "mine")
    press(name, Qt.Key.Key_Return)
    assert window.document.arch.name == "mine"
    press(name, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.arch.name == "d2l-resnet18"


def test_train_settings_persist_between_launches(qtbot, make_window, store):
    first = make_window(run_store=store)
    form = train_panel(first).form
    form.subset_spin.setValue(2000)
    form.epochs_spin.setValue(3)
    form.lr_spin.setValue(0.02)
    form.optimizer_combo.setCurrentIndex(form.optimizer_combo.findData("adamw"))
    form.precise_bn_combo.setCurrentIndex(form.precise_bn_combo.findData(True))
    chosen = form.recipe()
    first.close()

    again = make_window(run_store=store)
    assert train_panel(again).form.recipe() == chosen
    assert train_panel(again).form.subset_spin.text() == "2000"


def test_the_window_takes_a_data_folder(qtbot, make_window, tmp_path, isolated_settings):
    folder = tmp_path / "datasets"
    folder.mkdir()
    window = make_window(data_dir=str(folder))
    assert isolated_settings.value("data/folder") == str(folder)
    assert train_panel(window).form.recipe().data_dir == str(folder)


def test_a_data_folder_that_is_not_there_is_one_line(tmp_path, capsys):
    code = cli.main(["--data-dir", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1
    assert "does not exist; create it or give an existing folder" in err


def test_a_missing_qt_library_is_one_sentence_with_the_fix(monkeypatch, capsys):
    import ctypes

    def refuse(*args, **kwargs):
        raise OSError("libxcb-icccm.so.4: cannot open shared object file")

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(ctypes, "CDLL", refuse)
    monkeypatch.setattr(qt_app.sys, "platform", "linux")
    with pytest.raises(qt_app.UserError) as raised:
        qt_app.check_qt_libraries()
    message = str(raised.value)
    assert "libxcb-icccm.so.4" in message and "sudo apt-get install" in message
    assert "libxcb-icccm4" in message and "libxcb-cursor0" in message


def test_help_has_the_shortcuts_and_a_getting_started_page(qtbot, main_window):
    window = main_window
    help_menu = next(action.menu() for action in window.menuBar().actions()
                     if action.text() == "&Help")
    names = [action.text() for action in help_menu.actions() if action.text()]
    assert names[:2] == ["&Getting started", "&Keyboard shortcuts"]

    window.shortcuts_action.trigger()
    dialog = window.findChild(QWidget, "helpDialog")
    qtbot.waitUntil(lambda: dialog.isVisible())
    text = dialog.text
    for keys, what in (("Ctrl+Z", "Undo the last edit"), ("Ctrl+Shift+Z", "Redo"),
                       ("Ctrl+D", "Duplicate"), ("Ctrl+0", "Fit to window")):
        assert keys in text and what in text, keys
    dialog.close()

    pages = []
    window.show_help = lambda page, original=window.show_help: pages.append(original(page))
    window.getting_started_action.trigger()
    page = pages[-1]
    assert "Getting started" in page.text and "Training images" in page.text
    assert "Ctrl+Z" in page.text and not page.browser.openExternalLinks()
    page.close()


def test_canvas_text_stays_readable_at_fit_to_window_for_resnet50(qtbot, make_window):
    window = make_window("resnet50", size=(1200, 800))
    canvas = window.canvas
    window.build_actions.fit.trigger()
    QApplication.processEvents()
    scale = canvas.transform().m11()
    assert scale * canvas.look.smallest_text_px >= 8  # pixels, the smallest text on a card
    assert canvas.horizontalScrollBar().maximum() > 0  # what does not fit scrolls


def test_inspect_captions_agree_with_the_layer_list(qtbot, main_window):
    window = main_window
    window.document.reset(tiny_architecture().replace(input_size=(24, 24)))
    settle(qtbot, window)
    inspect = window.findChild(QWidget, "inspectPanel")
    window.tabs.setCurrentWidget(inspect)
    view = window.findChild(QWidget, "featureMapView")
    qtbot.waitUntil(lambda: view.images is not None and bool(view.layer_names()),
                    timeout=30_000)
    assert view.select_layer("layer1.0.conv1")
    qtbot.waitUntil(lambda: view.probe is not None and view.probe.layer == "layer1.0.conv1",
                    timeout=30_000)
    item = view.layer_tree.currentItem()
    assert item.text(2) == "6×24×24"  # the layer list: the network at its 24-pixel input
    assert "6 channels of 24×24" in view.info_label.text()  # the tiny data is 12x12
