"""Driving the editor like a user: clicks on cards, drags from the palette, drops."""

from __future__ import annotations

import warnings

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from resnet_gui.arch.edits import Part


def card_point(canvas, part: Part, fx: float = 0.5, fy: float = 0.5) -> QPoint:
    """A viewport point inside the card of ``part`` (fractions of its width and height)."""
    card = canvas.card_for(part)
    assert card is not None, f"no card for {part}"
    local = QPointF(card.width * fx, card.height * fy)
    return canvas.mapFromScene(card.mapToScene(local))


def stage_header_point(canvas, stage_index: int) -> QPoint:
    card = canvas.card_for(Part.stage(stage_index))
    return canvas.mapFromScene(card.mapToScene(QPointF(card.width * 0.3, 12)))


def click_card(qtbot, canvas, part: Part) -> None:
    point = stage_header_point(canvas, part.stage_index) if part.kind == "stage" else \
        card_point(canvas, part, 0.3, 0.5)
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, point)


def drag_and_drop(canvas, mime: QMimeData, point: QPoint) -> bool:
    """Synthesise the enter, move and drop events a real drag sends; True if accepted."""
    viewport = canvas.viewport()
    action = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():
        # Qt marks the QPoint constructors deprecated, yet PySide offers no other.
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(point, action, mime, buttons, modifiers)
        move = QDragMoveEvent(point, action, mime, buttons, modifiers)
    QApplication.sendEvent(viewport, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(viewport, move)
    if not move.isAccepted():
        return False
    drop = QDropEvent(QPointF(point), action, mime, buttons, modifiers)
    QApplication.sendEvent(viewport, drop)
    return drop.isAccepted()


def palette_mime(palette, category: str, value: str = "") -> QMimeData:
    """The MIME data the palette itself puts on a drag of that item."""
    item = palette.item_for(category, value)
    assert item is not None, f"no palette item {category}/{value}"
    return palette.mimeData([item])


def gap_point(canvas, before_stage: int) -> QPoint:
    """A point in the gap before stage ``before_stage`` (or after the last stage)."""
    from resnet_gui.qt.build.card_look import COLUMN_GAP

    stages = [column for column in canvas.columns if column.kind == "stage"]
    if before_stage < len(stages):
        x = stages[before_stage].rect.left() - COLUMN_GAP / 2
    else:
        x = stages[-1].rect.right() + COLUMN_GAP / 2
    y = stages[0].rect.top() + 40
    return canvas.mapFromScene(QPointF(x, y))


def settle(qtbot, window, timeout_ms: int = 60000) -> None:
    """Wait until the window shows the analysis of the current architecture."""
    qtbot.waitUntil(lambda: window.controller.is_settled
                    and not window.table_panel.refresh_pending, timeout=timeout_ms)
