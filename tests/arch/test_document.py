"""The undo/redo document: a current architecture plus past and future versions."""

import pytest

from resnet_gui.arch import edits
from resnet_gui.arch.document import Document, DocumentLocked
from resnet_gui.arch.presets import build_preset


@pytest.fixture
def document():
    return Document(build_preset("d2l-resnet18"))


def test_edit_undo_redo_round_trip(document):
    original = document.arch
    document.edit(edits.set_stage, 1, width=96, label="Change layer2 width")
    document.edit(edits.remove_stage, 3, label="Delete layer4")
    changed = document.arch
    assert document.undo_label == "Delete layer4" and document.is_modified
    assert document.undo() and document.undo()
    assert document.arch == original and not document.can_undo and not document.is_modified
    assert document.redo_label == "Change layer2 width"
    assert document.redo() and document.redo()
    assert document.arch == changed and not document.can_redo


def test_a_new_edit_clears_the_future(document):
    document.edit(edits.set_stage, 1, width=96, label="w")
    document.undo()
    document.edit(edits.set_stage, 1, width=80, label="w2")
    assert not document.can_redo and document.arch.stages[1].width == 80


def test_edits_with_the_same_merge_key_are_one_undo_step(document):
    for width in (70, 80, 90):
        document.edit(edits.set_stage, 0, width=width, label="width", merge_key=("width", 0))
    document.edit(edits.set_stage, 0, stride=2, label="stride", merge_key=("stride", 0))
    document.undo()
    assert document.arch.stages[0].width == 90
    document.undo()
    assert document.arch.stages[0].width == 64 and not document.can_undo


def test_an_edit_that_changes_nothing_is_not_recorded(document):
    assert not document.edit(edits.set_stage, 0, width=64, label="same")
    assert not document.can_undo


def test_listeners_hear_every_change_with_its_kind(document):
    heard = []
    document.add_listener(lambda doc, change: heard.append((change.kind, change.label)))
    document.edit(edits.delete_part, edits.Part.stage(0), label="Delete layer1")
    document.undo()
    document.redo()
    document.mark_saved("/tmp/x.json")
    document.reset(build_preset("resnet18"), label="New")
    assert [kind for kind, _ in heard] == ["edit", "undo", "redo", "saved", "reset"]
    assert heard[0][1] == "Delete layer1"


def test_edit_passes_the_selection_it_returns(document):
    changes = []
    document.add_listener(lambda doc, change: changes.append(change))
    document.edit(edits.delete_part, edits.Part.blocks(1, 1), label="Delete")
    assert changes[-1].selection == edits.Part.blocks(1, 0)


def test_saved_state_follows_undo(document, tmp_path):
    document.edit(edits.set_head, dropout=0.2, label="dropout")
    document.mark_saved(tmp_path / "a.json")
    assert not document.is_modified and document.display_name == "a.json"
    document.undo()
    assert document.is_modified
    document.redo()
    assert not document.is_modified


def test_locked_document_refuses_edits_and_says_why(document):
    document.set_locked(True, "a training run is live")
    with pytest.raises(DocumentLocked, match="locked while a training run is live"):
        document.edit(edits.set_stage, 0, width=10, label="w")
    assert document.arch.stages[0].width == 64 and not document.can_undo
    document.set_locked(False)
    assert document.edit(edits.set_stage, 0, width=10, label="w")


def test_history_is_bounded():
    document = Document(build_preset("d2l-resnet18"), history_limit=3)
    for width in range(10, 20):
        document.edit(edits.set_stage, 0, width=width, label="w")
    undone = 0
    while document.undo():
        undone += 1
    assert undone == 3
