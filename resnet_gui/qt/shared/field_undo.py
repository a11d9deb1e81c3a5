"""Undo and redo act on the network from anywhere once a field's edit is committed.

A text field or spin box claims Ctrl+Z for its own typing, even when there is nothing left to
take back: the value was applied (Enter, or the focus moved on) and became an edit of the
network. Then the window's Undo should act. :class:`FieldUndo` watches the fields it is given
and lets the window's undo and redo shortcuts through whenever the field holds no edit still
being typed; while one is being typed, Ctrl+Z undoes the typing as usual.

Filters sit on the fields themselves, not on the application: an application-wide Python
filter would run for every event of every object while a run trains.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget


def shown_text(spin: QAbstractSpinBox) -> str:
    """The text a spin box shows for its value: what it reads once an edit is committed."""
    if isinstance(spin, (QSpinBox, QDoubleSpinBox)):
        if spin.specialValueText() and spin.value() == spin.minimum():
            return spin.specialValueText()
        return spin.prefix() + spin.textFromValue(spin.value()) + spin.suffix()
    return spin.text()


def typing_in(field: QWidget) -> bool:
    """Whether ``field`` holds an edit still being typed (not yet applied)."""
    if isinstance(field, QAbstractSpinBox):
        return field.text() != shown_text(field)
    if isinstance(field, QLineEdit):
        return field.isModified()  # reset when the edit is applied (see applied_on_finish)
    return False


def applied_on_finish(edit: QLineEdit) -> None:
    """Mark a line edit's text as applied when editing finishes (Enter, focus out)."""
    edit.editingFinished.connect(lambda: edit.setModified(False))


class FieldUndo(QObject):
    """Lets ``actions``' shortcuts (the window's Undo and Redo) through the fields given to
    :meth:`watch` whenever those fields have nothing of their own to undo."""

    def __init__(self, actions: Iterable[QAction], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.actions = list(actions)

    def watch(self, root: QWidget) -> None:
        """Watch every text field and spin box inside ``root`` (and ``root`` itself)."""
        fields = [root] if isinstance(root, (QLineEdit, QAbstractSpinBox)) else []
        fields += root.findChildren(QAbstractSpinBox)
        fields += [edit for edit in root.findChildren(QLineEdit)
                   if not isinstance(edit.parent(), QAbstractSpinBox)]  # a spin box's own
        for field in fields:
            field.installEventFilter(self)
            if isinstance(field, QLineEdit):
                applied_on_finish(field)

    def _is_window_shortcut(self, event: QKeyEvent) -> bool:
        pressed = QKeySequence(event.keyCombination())
        return any(pressed == key for action in self.actions if action.isEnabled()
                   for key in action.shortcuts())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if (event.type() == QEvent.Type.ShortcutOverride
                and isinstance(watched, QWidget) and not typing_in(watched)
                and self._is_window_shortcut(event)):
            event.ignore()  # not the field's: the shortcut goes to the window's action
            return True
        return False
