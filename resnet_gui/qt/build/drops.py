"""Drag and drop on the canvas: what dropping a part at a point would do, doing it as one
edit, and the indicator that shows it while the drag goes on.

A drop lands on a column (replace the stem or the head, set a stage's shortcuts), in a gap
between columns (insert or move a stage) or between two blocks of a stage (insert or move a
block).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene

from resnet_gui.arch import edits
from resnet_gui.arch.edits import Part
from resnet_gui.arch.model import SHORTCUT_KINDS
from resnet_gui.qt.build.canvas_layout import Column
from resnet_gui.qt.build.card_look import BLOCK_GAP, COLUMN_GAP, SELECT
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.build.mime import BLOCK, HEAD, SHORTCUT, STAGE, STEM, Payload


@dataclass(frozen=True)
class DropTarget:
    """What a drop at a point would do, and where to draw the indicator."""

    action: str  # insert_stage, insert_block, move_stage, move_block, stem, head, shortcut
    stage: int = -1
    position: int = -1
    indicator: QRectF = field(default_factory=QRectF)
    outline: bool = False  # True: outline a card (replace/set); False: an insertion bar
    description: str = ""


# -- where a drop lands ---------------------------------------------------------------------


def find_drop_target(payload: Payload, scene_pos: QPointF, columns: list[Column],
                     stage_count: int) -> DropTarget | None:
    """What dropping ``payload`` at ``scene_pos`` would do, or None if nothing."""
    if not columns:
        return None
    column = column_at(columns, scene_pos.x())
    category = payload.category
    if category in (STEM, HEAD, SHORTCUT):
        return _part_target(payload, column, columns)
    starts_a_stage = category == BLOCK and not payload.is_move and (
        column is None or column.kind != STAGE)
    if category == STAGE or starts_a_stage:
        return _stage_target(payload, columns, scene_pos.x())
    if category == BLOCK:
        return _block_target(payload, column, scene_pos.y(), stage_count)
    return None


def _part_target(payload: Payload, column: Column | None,
                 columns: list[Column]) -> DropTarget | None:
    """A new stem or head replaces the old one; a shortcut kind applies to a whole stage."""
    if payload.category == STEM and not payload.is_move:
        return DropTarget("stem", indicator=columns[0].rect, outline=True,
                          description="Replace the stem")
    if payload.category == HEAD and not payload.is_move:
        return DropTarget("head", indicator=columns[-1].rect, outline=True,
                          description="Change the head")
    if payload.category != SHORTCUT or column is None or column.kind != STAGE or \
            payload.value not in SHORTCUT_KINDS:
        return None
    return DropTarget("shortcut", stage=column.stage_index, indicator=column.rect,
                      outline=True, description=f"Use {payload.value} shortcuts in "
                      f"layer{column.stage_index + 1}")


def _stage_target(payload: Payload, columns: list[Column], x: float) -> DropTarget | None:
    """A stage (new, moved, or started by a block dropped between stages) in a gap."""
    gap = stage_gap(columns, x)
    bar = gap_bar(columns, gap)
    if payload.is_move:
        target = gap if gap <= payload.stage else gap - 1
        if target == payload.stage:
            return None
        return DropTarget("move_stage", stage=payload.stage, position=target,
                          indicator=bar, description=f"Move layer{payload.stage + 1} "
                          f"to position {target + 1}")
    what = f"a {payload.value} stage" if payload.category == BLOCK else "a stage"
    return DropTarget("insert_stage", stage=gap, indicator=bar,
                      description=f"Insert {what} as layer{gap + 1}")


def _block_target(payload: Payload, column: Column | None, y: float,
                  stage_count: int) -> DropTarget | None:
    """A block (new or moved) between two blocks of a stage."""
    if column is None or column.kind != STAGE:
        return None
    position, bar = block_slot(column, y)
    if payload.is_move:
        same = payload.stage == column.stage_index
        if same and position in (payload.block, payload.block + 1):
            return None
        if not 0 <= payload.stage < stage_count:
            return None
        return DropTarget("move_block", stage=column.stage_index, position=position,
                          indicator=bar, description=f"Move layer{payload.stage + 1}."
                          f"{payload.block} into layer{column.stage_index + 1}")
    return DropTarget("insert_block", stage=column.stage_index, position=position,
                      indicator=bar, description=f"Insert a {payload.value} block at "
                      f"layer{column.stage_index + 1}.{position}")


def column_at(columns: list[Column], x: float) -> Column | None:
    """The column under ``x``; None in the gaps between columns (where a dropped block
    starts a new stage)."""
    for column in columns:
        if column.rect.left() <= x <= column.rect.right():
            return column
    if columns and x > columns[-1].rect.right():
        return columns[-1]
    return None


def stage_gap(columns: list[Column], x: float) -> int:
    """The stage index a new or moved stage would take when dropped at ``x``."""
    stages = [column for column in columns if column.kind == STAGE]
    for column in stages:
        if x < column.rect.center().x():
            return column.stage_index
    return len(stages)


def gap_bar(columns: list[Column], gap: int) -> QRectF:
    boundary = columns[gap].rect.right() + COLUMN_GAP / 2  # after the stem or a stage
    height = max(column.rect.bottom() for column in columns) - columns[0].rect.top()
    return QRectF(boundary - 2.5, columns[0].rect.top(), 5, height)


def block_slot(column: Column, y: float) -> tuple[int, QRectF]:
    """The block position a drop at ``y`` takes in the stage, and its insertion bar."""
    blocks = column.blocks or []
    left, width = column.rect.left() + 4, column.rect.width() - 8
    for card in blocks:
        top = card.pos().y()
        if y < top + card.height / 2:
            return card.part.block_index, QRectF(left, top - BLOCK_GAP / 2 - 2.5, width, 5)
    last = blocks[-1]
    end = last.part.block_index + last.part.count
    bottom = last.pos().y() + last.height
    return end, QRectF(left, bottom + BLOCK_GAP / 2 - 2.5, width, 5)


# -- doing it -------------------------------------------------------------------------------


def carry_out(controller: EditorController, payload: Payload, target: DropTarget) -> bool:
    """The drop as one undoable edit; the part it made or changed becomes the selection."""
    action, value = target.action, payload.value

    def then_select(done: bool, part: Part) -> bool:
        if done:
            controller.select(part)
        return done

    if action == "stem":
        return then_select(controller.edit(edits.replace_stem, value,
                                           label=f"Replace the stem ({value})"), Part.stem())
    if action == "head":
        if value == "dropout":
            dropout = controller.arch.head.dropout or 0.5
            done = controller.edit(edits.set_head, dropout=dropout, label="Add dropout")
        else:
            done = controller.edit(edits.set_head, pool=value, label=f"Use {value} pooling")
        return then_select(done, Part.head())
    if action == "shortcut":
        return then_select(controller.edit(
            edits.set_stage, target.stage, shortcut_kind=value,
            label=f"Use {value} shortcuts in layer{target.stage + 1}"), Part.stage(target.stage))
    if action == "insert_stage":
        block = value if payload.category == BLOCK else None
        return then_select(controller.edit(edits.insert_stage, target.stage, block=block,
                                           label=f"Insert stage layer{target.stage + 1}"),
                           Part.stage(target.stage))
    if action == "move_stage":
        return then_select(controller.edit(edits.move_stage, target.stage, target.position,
                                           label=f"Move layer{target.stage + 1}"),
                           Part.stage(target.position))
    if action == "insert_block":
        before = controller.arch
        done = then_select(controller.edit(edits.insert_block, target.stage, target.position,
                                           value, label=f"Insert a {value} block"),
                           Part.blocks(target.stage, target.position))
        if done:
            controller.blockInserted.emit(before, target.stage, target.position, value)
        return done
    if action == "move_block":
        return controller.edit(edits.move_block, payload.stage, payload.block, target.stage,
                               target.position,
                               label=f"Move block layer{payload.stage + 1}.{payload.block}")
    return False


# -- showing it -----------------------------------------------------------------------------


class DropIndicator:
    """While dragging: an outline around the card a drop would change, or a bar where it
    would insert."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self._item: QGraphicsRectItem | None = None

    def show(self, target: DropTarget) -> None:
        self.hide()
        if target.outline:
            item = QGraphicsRectItem(target.indicator.adjusted(-4, -4, 4, 4))
            item.setPen(QPen(SELECT, 2.5, Qt.PenStyle.DashLine))
            item.setBrush(QBrush(QColor(37, 99, 235, 28)))
        else:
            item = QGraphicsRectItem(target.indicator)
            item.setPen(Qt.PenStyle.NoPen)
            item.setBrush(SELECT)
        item.setZValue(20)
        self.scene.addItem(item)
        self._item = item

    def hide(self) -> None:
        if self._item is not None:
            if self._item.scene() is not None:
                self.scene.removeItem(self._item)
            self._item = None
