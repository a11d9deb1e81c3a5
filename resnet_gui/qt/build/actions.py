"""The Build tab's commands as actions: editing (undo, redo, delete, duplicate, add a stage)
and viewing (zoom, fold, expand the table). The frame puts them in its Edit and View menus
and its toolbar; the actions keep their own enabled state and labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from resnet_gui.arch import edits
from resnet_gui.arch.twin import is_plain, plain_twin, residual_twin
from resnet_gui.qt.build.mime import STAGE
from resnet_gui.qt.shared.widgets import make_action

if TYPE_CHECKING:
    from resnet_gui.qt.build.tab import BuildTab

PIXMAP = QStyle.StandardPixmap


class BuildActions:
    """``undoAction``, ``redoAction``, ``deleteAction``, ``duplicateAction``,
    ``addStageAction`` and the View menu's actions. ``owner`` is the window: the shortcuts
    work whichever tab is shown."""

    def __init__(self, tab: BuildTab, owner: QWidget) -> None:
        self.tab = tab
        self._make_edit_actions(owner)
        self._make_view_actions(owner)
        controller = tab.controller
        controller.documentChanged.connect(lambda _change: self.refresh())
        controller.selectionChanged.connect(lambda _part: self.refresh())
        controller.lockChanged.connect(lambda *_: self.refresh())
        self.refresh()

    def _make_edit_actions(self, owner: QWidget) -> None:
        controller = self.tab.controller
        self.undo = make_action(owner, "&Undo", controller.undo, QKeySequence("Ctrl+Z"),
                                "Undo the last edit", PIXMAP.SP_ArrowBack, "undoAction")
        self.redo = make_action(owner, "&Redo", controller.redo, QKeySequence("Ctrl+Shift+Z"),
                                "Redo the edit undone", PIXMAP.SP_ArrowForward, "redoAction")
        self.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.delete = make_action(owner, "&Delete", controller.delete_selection,
                                  QKeySequence.StandardKey.Delete,
                                  "Remove the selected stage or blocks", PIXMAP.SP_TrashIcon,
                                  "deleteAction")
        self.delete.setShortcuts([QKeySequence(Qt.Key.Key_Delete),
                                  QKeySequence(Qt.Key.Key_Backspace)])
        self.duplicate = make_action(owner, "D&uplicate", controller.duplicate_selection,
                                     QKeySequence("Ctrl+D"),
                                     "Duplicate the selected stage, or add one more block like "
                                     "the selected one", name="duplicateAction")
        self.add_stage = make_action(owner, "Add &stage", lambda: self.tab.add_part(STAGE, ""),
                                     tip="Append a stage that doubles the width",
                                     name="addStageAction")
        self.select_none = make_action(owner, "Select &none", lambda: controller.select(None),
                                       QKeySequence(Qt.Key.Key_Escape))
        self.twin = make_action(owner, "Make &plain twin", self.make_twin,
                                tip="Replace the network by its twin: the same layers without "
                                "shortcuts (He et al.'s plain network), or with them again",
                                name="twinAction")

    def _make_view_actions(self, owner: QWidget) -> None:
        canvas, table = self.tab.canvas, self.tab.table_panel
        self.fit = make_action(owner, "&Fit to window", canvas.fit, QKeySequence("Ctrl+0"),
                               "Scale the canvas to fit, as far as its text stays readable "
                               "(a wider network scrolls)")
        self.zoom_in = make_action(owner, "Zoom &in", lambda: canvas.zoom(1.15),
                                   QKeySequence.StandardKey.ZoomIn)
        self.zoom_out = make_action(owner, "Zoom &out", lambda: canvas.zoom(1 / 1.15),
                                    QKeySequence.StandardKey.ZoomOut)
        self.unfold = make_action(owner, "&Unfold all repeated blocks",
                                  lambda: canvas.expand_all(True))
        self.fold = make_action(owner, "F&old repeated blocks", lambda: canvas.expand_all(False))
        self.expand_table = make_action(owner, "&Expand all table rows",
                                        lambda: table.set_all_expanded(True))
        self.collapse_table = make_action(owner, "&Collapse all table rows",
                                          lambda: table.set_all_expanded(False))

    def make_twin(self) -> bool:
        """Replace the network by its plain twin, or a plain network by its residual twin,
        as one undoable edit."""
        controller = self.tab.controller
        if is_plain(controller.arch):
            return controller.edit(residual_twin, label="Make residual twin")
        return controller.edit(plain_twin, label="Make plain twin")

    @property
    def edit_menu(self) -> tuple:
        """The Edit menu, top to bottom (None: a separator)."""
        return (self.undo, self.redo, None, self.delete, self.duplicate, self.add_stage, None,
                self.twin, None, self.select_none)

    @property
    def view_menu(self) -> tuple:
        return (self.fit, self.zoom_in, self.zoom_out, None, self.unfold, self.fold, None,
                self.expand_table, self.collapse_table)

    @property
    def toolbar(self) -> tuple:
        return (self.undo, self.redo, None, self.delete, self.duplicate, None, self.twin)

    def refresh(self) -> None:
        """Labels name the edit that undo or redo would take back; editing commands are off
        while the document is locked or nothing editable is selected."""
        document = self.tab.controller.document
        self.undo.setEnabled(document.can_undo)
        self.redo.setEnabled(document.can_redo)
        self.undo.setText(f"&Undo {document.undo_label}".rstrip())
        self.redo.setText(f"&Redo {document.redo_label}".rstrip())
        self.undo.setIconText("Undo")  # the toolbar keeps its short labels
        self.redo.setIconText("Redo")
        self.undo.setToolTip(f"Undo {document.undo_label} (Ctrl+Z)".replace("  ", " "))
        self.redo.setToolTip(f"Redo {document.redo_label} (Ctrl+Shift+Z)")
        part = self.tab.controller.selection
        editable = part is not None and part.kind in (edits.STAGE, edits.BLOCK) and \
            not document.locked
        self.delete.setEnabled(editable)
        self.duplicate.setEnabled(editable)
        self.add_stage.setEnabled(not document.locked)
        self.twin.setEnabled(not document.locked)
        plain = is_plain(document.arch)
        self.twin.setText("Make &residual twin" if plain else "Make &plain twin")
        self.twin.setIconText("Residual twin" if plain else "Plain twin")
