"""Small Qt helpers the frame and the tabs share."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget


def make_action(owner: QWidget, text: str, slot: Callable[[], object], shortcut=None,
                tip: str = "", standard_icon: QStyle.StandardPixmap | None = None,
                name: str = "") -> QAction:
    """A QAction calling ``slot()``, added to ``owner`` so that its shortcut works wherever
    the owner's window has the focus."""
    action = QAction(text, owner)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    if standard_icon is not None:
        action.setIcon(owner.style().standardIcon(standard_icon))
    if name:
        action.setObjectName(name)
    action.triggered.connect(lambda *_: slot())
    owner.addAction(action)
    return action
