"""The editor window's seams, presets, dataset chooser, selection sync and folding."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTreeView, QWidget

from gui_helpers import settle
from gui_helpers import click_card
from resnet_gui.engine.model import build_model
from resnet_gui.arch.edits import Part
from resnet_gui.arch.presets import build_preset


def test_seams_named_widgets_and_d2l_totals(make_window):
    window = make_window()
    for name in ("blockPalette", "architectureCanvas", "inspector"):
        assert window.findChild(QWidget, name) is not None, name
    table = window.findChild(QTreeView, "layerTable")
    totals = window.findChild(QLabel, "totalsLabel")
    assert "11,178,378" in totals.text()  # D2L ResNet-18 on Fashion-MNIST, as in the chapter
    analysis = window.controller.analysis
    top_level = [row.name for row in analysis.layers if row.depth == 0]
    model = table.model()
    assert model.rowCount() == len(top_level)
    assert [model.index(i, 0).data() for i in range(model.rowCount())] == top_level
    assert "11,178,378" in window.status_totals.text()
    assert window.document.arch.in_channels == 1 and window.document.arch.num_classes == 10


def test_blocks_are_collapsible_rows_and_stay_open_across_edits(make_window, qtbot):
    window = make_window()
    table = window.layer_table
    model = table.model()
    layer2 = model.index_for("layer2")
    assert model.rowCount(layer2) == 2 and table.isExpanded(layer2)
    block = model.index_for("layer2.0")
    assert model.rowCount(block) > 0 and not table.isExpanded(block)
    assert model.index(0, 0, block).data() == "layer2.0.conv1"
    table.setExpanded(block, True)
    table.setExpanded(model.index_for("layer4"), False)
    window.input_spin.setValue(64)
    settle(qtbot, window)
    model = table.model()
    assert table.isExpanded(model.index_for("layer2.0"))
    assert not table.isExpanded(model.index_for("layer4"))


@pytest.mark.parametrize("preset", ["resnet18", "resnet50", "resnet20", "preact-resnet18"])
def test_presets_load_with_the_right_totals(make_window, qtbot, preset):
    window = make_window("d2l-resnet18")
    assert window.new_from_preset(preset)
    settle(qtbot, window)
    arch = build_preset(preset, in_channels=1, num_classes=10)
    assert window.document.arch == arch
    expected = sum(p.numel() for p in build_model(arch, device="meta").parameters())
    assert f"{expected:,}" in window.totals_label.text()
    assert preset in window.windowTitle()


def test_preset_menu_lists_every_preset_with_its_description(make_window):
    from resnet_gui.arch.presets import PRESETS

    window = make_window()
    actions = {action.data(): action for action in window.preset_menu.actions()}
    assert set(actions) == set(PRESETS)
    for name, preset in PRESETS.items():
        assert actions[name].toolTip() == preset.description


def test_dataset_chooser_sets_channels_and_classes(make_window, qtbot):
    window = make_window()
    conv1_before = window.controller.analysis.layers[0].params
    window.dataset_combo.setCurrentIndex(window.dataset_combo.findData("CIFAR-10"))
    settle(qtbot, window)
    arch = window.document.arch
    assert (arch.in_channels, arch.num_classes) == (3, 10)
    conv1 = window.controller.analysis.layers[0]
    assert conv1.name == "conv1" and conv1.params == conv1_before + 2 * 64 * 7 * 7
    assert window.isWindowModified()
    window.controller.undo()
    settle(qtbot, window)
    assert window.document.arch.in_channels == 1


def test_input_size_feeds_the_analysis(make_window, qtbot):
    window = make_window()
    window.input_spin.setValue(224)
    settle(qtbot, window)
    assert window.document.arch.input_size == (224, 224)
    assert window.controller.analysis.layers[0].output_shape == (64, 112, 112)
    assert window.canvas.card_for(Part.stage(0)).shape_text == "64 × 56 × 56"


def test_selecting_a_card_selects_its_rows_and_back(make_window, qtbot):
    window = make_window()
    canvas, panel = window.canvas, window.table_panel
    click_card(qtbot, canvas, Part.blocks(1, 0))
    assert window.controller.selection == Part.blocks(1, 0)
    assert canvas.card_for(Part.blocks(1, 0)).selected
    qtbot.waitUntil(lambda: panel.selected_names() == ["layer2.0"])  # one event later
    click_card(qtbot, canvas, Part.stem())
    qtbot.waitUntil(lambda: set(panel.selected_names()) == {"conv1", "bn1", "relu", "maxpool"})
    # Now from the table: selecting a row selects its card.
    model = window.layer_table.model()
    window.layer_table.setCurrentIndex(model.index_for("layer3"))
    assert window.controller.selection == Part.stage(2)
    assert canvas.card_for(Part.stage(2)).selected and not canvas.card_for(Part.stem()).selected
    window.layer_table.setCurrentIndex(model.index_for("fc"))
    assert window.controller.selection == Part.head()
    assert window.inspector.title.text() == "Head"


def test_repeated_blocks_fold_and_unfold_on_click(make_window, qtbot):
    window = make_window("resnet50")
    canvas = window.canvas
    folded = canvas.card_for(Part.blocks(2, 3))  # layer3.1-5 share one card
    assert folded.folded == 5 and folded.part == Part.blocks(2, 1, 5)
    assert sum(1 for card in canvas.cards if card.part.kind == "block") == 8
    badge = folded.badge_rect().center()
    point = canvas.mapFromScene(folded.mapToScene(badge))
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, point)
    assert sum(1 for card in canvas.cards if card.part.kind == "block") == 12
    assert canvas.card_for(Part.blocks(2, 3)).part == Part.blocks(2, 3)
    first = canvas.card_for(Part.blocks(2, 1))
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier,
                     canvas.mapFromScene(first.mapToScene(first.badge_rect().center())))
    assert canvas.card_for(Part.blocks(2, 3)).folded == 5


def test_shortcuts_are_drawn_by_kind(make_window, qtbot):
    window = make_window("resnet20")  # zero-padding shortcuts where the shape changes
    canvas = window.canvas
    assert canvas.card_for(Part.blocks(0, 0)).shortcut == "identity"
    assert canvas.card_for(Part.blocks(1, 0)).shortcut == "zero-pad"
    window.new_from_preset("resnet18")
    settle(qtbot, window)
    assert canvas.card_for(Part.blocks(1, 0)).shortcut == "projection"
    assert canvas.card_for(Part.blocks(1, 1)).shortcut == "identity"


def test_settings_remember_geometry_and_splitters(make_window, isolated_settings, qtbot):
    window = make_window(size=(1234, 789))
    window.main_splitter.setSizes([250, 700, 284])
    window.close()
    assert isolated_settings.value("window/geometry") is not None
    again = make_window()
    # Qt fits a restored geometry to the (small, offscreen) screen, so compare loosely: the
    # default size was not used, the remembered one was.
    assert again.size() != QSize(1600, 1000)
    assert again.size().width() <= 1234 and again.size().height() <= 789
    for key, splitter in (("window/main_splitter", again.main_splitter),
                          ("window/centre_splitter", again.centre_splitter)):
        assert splitter.restoreState(isolated_settings.value(key)), key


def test_add_panel_and_document_for_the_training_tabs(make_window):
    window = make_window()
    tabs = window.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Build", "Train", "Inspect",
                                                              "Lab"]
    assert not tabs.tabBar().isHidden()
    index = window.add_panel(QWidget(), "Notes")
    assert tabs.tabText(index) == "Notes" and tabs.count() == 5
    assert window.document.arch.name == "d2l-resnet18"


def test_palette_lists_every_kind_with_an_icon(make_window):
    from resnet_gui.arch.edits import STEM_PRESETS
    from resnet_gui.arch.model import BLOCK_KINDS, SHORTCUT_KINDS

    palette = make_window().palette_widget
    wanted = [("stem", key) for key in STEM_PRESETS] + [("stage", "")] + \
        [("block", kind) for kind in BLOCK_KINDS] + \
        [("head", value) for value in ("avg", "max", "dropout")] + \
        [("shortcut", kind) for kind in SHORTCUT_KINDS]
    for category, value in wanted:
        item = palette.item_for(category, value)
        assert item is not None and not item.icon(0).isNull(), (category, value)
        assert item.toolTip(0)
    assert palette.dragDropMode() == QAbstractItemView.DragDropMode.DragOnly


def test_a_preset_with_a_recipe_of_its_name_brings_its_plan_to_the_train_tab(make_window,
                                                                              qtbot):
    window = make_window("d2l-resnet18")
    form = window.training_tabs.train.form
    form.epochs_spin.setValue(2)
    form.subset_spin.setValue(500)
    form.device_combo.setCurrentIndex(form.device_combo.findData("cpu"))
    assert window.new_from_preset("resnet20")
    assert form.epochs_spin.value() == 2  # a preset without a recipe leaves the plan alone
    assert window.new_from_preset("fmnist-94")
    assert form.epochs_spin.value() == 10 and form.recipe().epochs == 10
    assert form.recipe().limit_train == 500 and form.recipe().device == "cpu"  # they stay
    assert "Train tab takes its recipe (10 epochs)" in window.statusBar().currentMessage()
    assert window.new_from_preset("fmnist-fast")
    assert form.recipe().epochs == 4


def test_new_from_preset_dialog_shows_each_description(make_window, qtbot):
    from resnet_gui.qt.preset_dialog import PresetDialog
    from resnet_gui.arch.presets import PRESETS

    window = make_window()
    dialog = PresetDialog(window)
    qtbot.addWidget(dialog)
    texts = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert texts == [f"{name}\n{preset.description}" for name, preset in PRESETS.items()]
    dialog.list.setCurrentRow(texts.index(next(t for t in texts if t.startswith("resnet34\n"))))
    assert dialog.chosen() == "resnet34"
