"""Editing on the canvas and in the inspector, with the table following every edit."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from gui_helpers import settle
from gui_helpers import (
    card_point,
    click_card,
    drag_and_drop,
    gap_point,
    palette_mime,
    stage_header_point,
)
from resnet_gui.qt.build.mime import move_mime
from resnet_gui.arch.edits import Part


def stage_widths(window):
    return [stage.width for stage in window.document.arch.stages]


def table_children(window, name):
    model = window.layer_table.model()
    parent = model.index_for(name)
    return [model.index(i, 0, parent).data() for i in range(model.rowCount(parent))]


def test_drop_a_block_from_the_palette_into_a_stage(make_window, qtbot):
    window = make_window()
    mime = palette_mime(window.palette_widget, "block", "bottleneck")
    # Dropped on the upper half of layer2's first block: inserted before it.
    point = card_point(window.canvas, Part.blocks(1, 0), 0.5, 0.2)
    assert drag_and_drop(window.canvas, mime, point)
    assert window.document.arch.stages[1].blocks == ("bottleneck", "basic", "basic")
    assert window.controller.selection == Part.blocks(1, 0)
    settle(qtbot, window)
    assert table_children(window, "layer2") == ["layer2.0", "layer2.1", "layer2.2"]
    model = window.layer_table.model()
    assert model.index_for("layer2.0").siblingAtColumn(1).data() == "Bottleneck"
    assert window.canvas.card_for(Part.blocks(1, 0)).kind == "bottleneck"


def test_drop_a_stage_between_stages_and_a_block_kind_after_the_last(make_window, qtbot):
    window = make_window()
    canvas = window.canvas
    assert drag_and_drop(canvas, palette_mime(window.palette_widget, "stage"), gap_point(canvas, 2))
    assert stage_widths(window) == [64, 128, 128, 256, 512]
    mime = palette_mime(window.palette_widget, "block", "preact-bottleneck")
    assert drag_and_drop(canvas, mime, gap_point(canvas, 5))
    arch = window.document.arch
    assert stage_widths(window) == [64, 128, 128, 256, 512, 1024]
    assert arch.stages[5].blocks == ("preact-bottleneck",) * 2 and arch.stages[5].stride == 2
    settle(qtbot, window)
    assert window.layer_table.model().index_for("layer6").isValid()


def test_drops_of_stems_heads_and_shortcuts_set_those_parts(make_window, qtbot):
    window = make_window()
    canvas, palette = window.canvas, window.palette_widget
    assert drag_and_drop(canvas, palette_mime(palette, "stem", "cifar"),
                         card_point(canvas, Part.stem()))
    assert window.document.arch.stem.kernel == 3 and not window.document.arch.stem.max_pool
    assert drag_and_drop(canvas, palette_mime(palette, "head", "avg"),
                         card_point(canvas, Part.head()))
    assert window.document.arch.head.pool == "avg"
    assert drag_and_drop(canvas, palette_mime(palette, "shortcut", "zero-pad"),
                         stage_header_point(canvas, 3))
    assert window.document.arch.stages[3].shortcut.kind == "zero-pad"
    assert canvas.card_for(Part.blocks(3, 0)).shortcut == "zero-pad"
    # A shortcut dropped outside any stage is refused and changes nothing.
    before = window.document.arch
    assert not drag_and_drop(canvas, palette_mime(palette, "shortcut", "projection"),
                             card_point(canvas, Part.stem()))
    assert window.document.arch == before


def test_double_click_adds_a_part_next_to_the_selection(make_window):
    window = make_window()
    click_card(None, window.canvas, Part.blocks(0, 0))
    window.palette_widget.partActivated.emit("block", "plain")
    assert window.document.arch.stages[0].blocks == ("basic", "basic", "plain")


def test_drag_stages_to_reorder_then_undo_and_redo(make_window, qtbot):
    window = make_window()
    canvas = window.canvas
    assert drag_and_drop(canvas, move_mime(3), gap_point(canvas, 0))
    assert stage_widths(window) == [512, 64, 128, 256]
    assert window.controller.selection == Part.stage(0)
    settle(qtbot, window)
    # The stage keeps its stride 2 when it moves, so it now halves the stem's 24 x 24 maps.
    assert window.layer_table.model().index_for("layer1").siblingAtColumn(2).data() \
        == "512 × 12 × 12"
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert stage_widths(window) == [64, 128, 256, 512]
    QTest.keyClick(window, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert stage_widths(window) == [512, 64, 128, 256]


def test_drag_a_block_from_one_stage_to_another(make_window, qtbot):
    window = make_window()
    canvas = window.canvas
    point = card_point(canvas, Part.blocks(2, 0), 0.5, 0.9)  # lower half: after layer3.0
    assert drag_and_drop(canvas, move_mime(0, 1), point)
    assert [stage.num_blocks for stage in window.document.arch.stages] == [1, 2, 3, 2]
    assert window.controller.selection == Part.blocks(2, 1)
    settle(qtbot, window)
    assert table_children(window, "layer3") == ["layer3.0", "layer3.1", "layer3.2"]


def test_delete_and_duplicate_with_the_keyboard(make_window, qtbot):
    window = make_window()
    canvas = window.canvas
    click_card(qtbot, canvas, Part.stage(1))
    assert window.controller.selection == Part.stage(1)
    QTest.keyClick(window, Qt.Key.Key_Delete)
    assert stage_widths(window) == [64, 256, 512]
    click_card(qtbot, canvas, Part.blocks(2, 1))
    QTest.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert window.document.arch.stages[2].num_blocks == 3
    settle(qtbot, window)
    assert table_children(window, "layer3") == ["layer3.0", "layer3.1", "layer3.2"]
    for _ in range(2):
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert stage_widths(window) == [64, 128, 256, 512]
    assert window.document.arch.stages[2].num_blocks == 2
    assert not window.document.is_modified
    settle(qtbot, window)
    assert "11,178,378" in window.totals_label.text()


def test_deleting_the_stem_is_refused_with_a_reason(make_window):
    window = make_window()
    messages = []
    window.controller.message.connect(messages.append)
    click_card(None, window.canvas, Part.stem())
    window.controller.delete_selection()
    assert "stem cannot be removed" in messages[-1]
    assert len(window.document.arch.stages) == 4


def test_inspector_width_edit_updates_the_table_and_shows_before_and_after(make_window, qtbot):
    window = make_window()
    click_card(qtbot, window.canvas, Part.stage(1))
    model = window.layer_table.model()
    params_before = model.index_for("layer2").siblingAtColumn(3).data()
    window.inspector.stage_width.setValue(96)
    settle(qtbot, window)
    assert window.document.arch.stages[1].width == 96
    model = window.layer_table.model()
    assert model.index_for("layer2").siblingAtColumn(2).data() == "96 × 12 × 12"
    params_after = model.index_for("layer2").siblingAtColumn(3).data()
    assert params_after != params_before
    labels = window.inspector.cost_labels
    assert labels[("part", "params", "before")].text() == params_before
    assert labels[("part", "params", "after")].text() == params_after
    assert labels[("net", "params", "before")].text() == "11,178,378"
    assert labels[("net", "params", "change")].text().startswith("-")
    assert "11,178,378" not in window.totals_label.text()


def test_stepping_a_spin_box_is_one_undo_step(make_window, qtbot):
    window = make_window()
    click_card(qtbot, window.canvas, Part.stage(0))
    for width in (65, 66, 67):
        window.inspector.stage_width.setValue(width)
    window.controller.undo()
    assert window.document.arch.stages[0].width == 64


def test_morphing_a_stage_changes_every_block(make_window, qtbot):
    window = make_window("resnet34")
    click_card(qtbot, window.canvas, Part.stage(2))
    combo = window.inspector.stage_kind
    combo.setCurrentIndex(combo.findData("bottleneck"))
    assert window.document.arch.stages[2].blocks == ("bottleneck",) * 6
    settle(qtbot, window)
    model = window.layer_table.model()
    assert model.index_for("layer3.5").siblingAtColumn(1).data() == "Bottleneck"
    assert model.index_for("layer3").siblingAtColumn(2).data() == "1024 × 14 × 14"
    # The canvas folds the five identical blocks after the projecting one.
    assert window.canvas.card_for(Part.blocks(2, 4)).folded == 5


def test_inspector_fields_follow_the_selection(make_window, qtbot):
    window = make_window()
    inspector = window.inspector
    click_card(qtbot, window.canvas, Part.stem())
    assert inspector.stem_kernel.value() == 7 and inspector.stem_pool.isChecked()
    inspector.stem_pool.setChecked(False)
    assert not window.document.arch.stem.max_pool
    click_card(qtbot, window.canvas, Part.head())
    inspector.head_dropout.setValue(0.3)
    assert window.document.arch.head.dropout == 0.3
    click_card(qtbot, window.canvas, Part.blocks(3, 0))
    kind = inspector.block_kind
    kind.setCurrentIndex(kind.findData("preact-basic"))
    assert window.document.arch.stages[3].blocks == ("preact-basic", "basic")


def test_an_invalid_edit_is_shown_where_it_happens_then_undone(make_window, qtbot):
    window = make_window()
    click_card(qtbot, window.canvas, Part.stem())
    window.inspector.stem_padding.setValue(0)
    window.input_spin.setValue(5)  # a 7x7 kernel without padding cannot fit a 5x5 image
    settle(qtbot, window)
    controller = window.controller
    assert controller.problem is not None and controller.problem.path == "conv1"
    stem_card = window.canvas.card_for(Part.stem())
    assert "7x7 kernel" in stem_card.problem and stem_card.problem.count(".") <= 1
    panel = window.table_panel
    assert panel.problem_label.isVisible() and "conv1" in panel.problem_label.text()
    assert window.layer_table.model().failing_row() == "conv1"
    assert window.inspector.problem.isVisible()
    assert "invalid" in window.status_state.text()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot, window)
    assert controller.problem is None and not window.canvas.card_for(Part.stem()).problem
    assert not panel.problem_label.isVisible()
    assert window.document.arch.input_size == (96, 96)


def test_a_field_error_turns_its_stage_red(make_window, qtbot):
    window = make_window("resnet20")  # zero-padding shortcuts
    click_card(qtbot, window.canvas, Part.stage(1))
    window.inspector.stage_width.setValue(8)  # zero-padding cannot go from 16 to 8 channels
    settle(qtbot, window)
    stage_card = window.canvas.card_for(Part.stage(1))
    assert "zero-padding cannot reduce channels" in stage_card.problem
    assert "stages[1]" in window.table_panel.problem_label.text()
    window.controller.undo()
    settle(qtbot, window)
    assert not window.canvas.card_for(Part.stage(1)).problem


def test_locked_editor_refuses_edits_and_says_why(make_window, qtbot):
    window = make_window()
    window.set_locked(True, "a training run is live")
    assert window.lock_banner.isVisible() and "training run" in window.lock_banner.text()
    mime = palette_mime(window.palette_widget, "block", "basic")
    assert not drag_and_drop(window.canvas, mime, card_point(window.canvas, Part.blocks(1, 0)))
    click_card(qtbot, window.canvas, Part.stage(1))
    QTest.keyClick(window, Qt.Key.Key_Delete)
    assert len(window.document.arch.stages) == 4
    assert not window.inspector.pages.isEnabled() and not window.dataset_combo.isEnabled()
    window.set_locked(False)
    assert not window.lock_banner.isVisible()
    QTest.keyClick(window, Qt.Key.Key_Delete)
    assert len(window.document.arch.stages) == 3
