"""Where the canvas's cards go: the stem, one column per stage with its blocks top to bottom,
the head, and the arrows and connectors between them.

:class:`CanvasLayout` turns an architecture (and what is known of it: output shapes, the
problem, which runs of identical blocks are unfolded) into placed cards and columns. It
creates items but puts none in a scene; the canvas does that, keeping unchanged cards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsLineItem

from resnet_gui.arch import edits
from resnet_gui.arch.edits import IDENTITY, Part
from resnet_gui.arch.model import Architecture
from resnet_gui.qt.build.card_look import (
    BLOCK_GAP,
    CARD_BORDER,
    CARD_FILL,
    COLUMN_GAP,
    HEAD_WIDTH,
    LANE,
    MARGIN,
    MUTED,
    STAGE_PAD,
    STAGE_WIDTH,
    STEM_WIDTH,
    CardLook,
)
from resnet_gui.qt.build.card_steps import block_steps, head_steps, stem_steps
from resnet_gui.qt.build.cards import BlockCard, CardItem, FlowArrow, SimpleCard, StageCard
from resnet_gui.qt.build.mime import HEAD, STAGE, STEM
from resnet_gui.qt.shared import formatting

SHORTCUT_TIPS = {
    None: "no shortcut (plain block)",
    IDENTITY: "identity shortcut (input and output shapes match)",
    "projection": "projection shortcut: a 1×1 convolution matches the new shape",
    "zero-pad": "zero-padding shortcut: subsample and pad new channels with zeros",
    "avgpool-projection": "average pool then 1×1 convolution (ResNet-D)",
}


@dataclass
class Column:
    """One column of the canvas: the stem, a stage (with its block cards) or the head."""

    kind: str  # stem, stage, head
    rect: QRectF
    stage_index: int = -1
    card: CardItem | None = None
    blocks: list[BlockCard] | None = None


@dataclass
class Layout:
    # The stem, each stage's blocks then its frame, the head.
    cards: list[CardItem] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    decorations: list[QGraphicsItem] = field(default_factory=list)  # arrows and connectors
    scene_rect: QRectF = field(default_factory=QRectF)


def output_shapes(analysis) -> dict[str, str]:
    """Output shape text by card key: a layer name, or "stem" for the stem's last layer."""
    shapes = {}
    for row in analysis.layers:
        if row.depth <= 1:
            shapes[row.name] = formatting.shape(row.output_shape)
            if row.depth == 0 and row.name in edits.STEM_LAYERS:
                shapes["stem"] = shapes[row.name]
    return shapes


def card_runs(arch: Architecture, stage_index: int,
              expanded: set[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The block cards of a stage as (first block, blocks shown, unfolded run length): a run
    of identical blocks is one card unless (stage, first block) is in ``expanded``."""
    runs = []
    for first, count in edits.fold_groups(arch, stage_index):
        if count > 1 and (stage_index, first) in expanded:
            runs += [(first + i, 1, count if i == 0 else 1) for i in range(count)]
        else:
            runs.append((first, count, 1))
    return runs


def foldable_runs(arch: Architecture) -> set[tuple[int, int]]:
    """(stage, first block) of every run of identical blocks."""
    return {(index, first) for index in range(len(arch.stages))
            for first, count in edits.fold_groups(arch, index) if count > 1}


def block_tooltip(arch: Architecture, index: int, position: int, run: int,
                  shortcut: str | None) -> str:
    kind = arch.stages[index].blocks[position]
    runs = f"{run} identical {kind} blocks (click ×{run} to unfold)" if run > 1 \
        else f"a {kind} block"
    return f"{runs}; {SHORTCUT_TIPS[shortcut]}. Drag to move it to another stage."


class CanvasLayout:
    """Builds one :class:`Layout` of ``arch``; ``problem_for(part)`` is the problem text a
    card shows."""

    def __init__(self, look: CardLook, arch: Architecture, shapes: dict[str, str],
                 problem_for: Callable[[Part], str], expanded: set[tuple[int, int]]) -> None:
        self.look, self.arch, self.shapes = look, arch, shapes
        self.problem_for, self.expanded = problem_for, expanded
        self.layout = Layout()

    def build(self) -> Layout:
        arch, top = self.arch, MARGIN
        x = self._add_stem(MARGIN, top) + COLUMN_GAP
        for index in range(len(arch.stages)):
            x = self._add_stage(index, x, top) + COLUMN_GAP
        self._add_head(x, top)
        self._add_arrows(top + self.look.title_height / 2 + 6)
        bottom = max(column.rect.bottom() for column in self.layout.columns)
        self.layout.scene_rect = QRectF(0, 0, x + HEAD_WIDTH + MARGIN, bottom + MARGIN + 24)
        return self.layout

    def _place(self, card: CardItem, key: str, x: float, y: float) -> None:
        card.shape_key = key
        card.setPos(x, y)
        self.layout.cards.append(card)

    def _add_stem(self, x: float, top: float) -> float:
        arch = self.arch
        dataset = f"input {arch.in_channels}×{arch.input_size[0]}×{arch.input_size[1]}"
        stem = SimpleCard(
            self.look, Part.stem(), STEM_WIDTH, stem_steps(arch), CARD_FILL, CARD_BORDER,
            title="Stem", subtitle=dataset, shape_text=self.shapes.get("stem", ""),
            problem=self.problem_for(Part.stem()),
            tooltip="The stem: turns the image into the first feature maps. "
            "Drop a stem from the palette here to replace it.")
        self._place(stem, "stem", x, top)
        self.layout.columns.append(Column(STEM, QRectF(x, top, STEM_WIDTH, stem.height),
                                          card=stem))
        return x + STEM_WIDTH

    def _add_head(self, x: float, top: float) -> None:
        arch = self.arch
        head = SimpleCard(
            self.look, Part.head(), HEAD_WIDTH, head_steps(arch), CARD_FILL, CARD_BORDER,
            title="Head", subtitle=f"{arch.num_classes} classes",
            shape_text=self.shapes.get("fc", ""),
            problem=self.problem_for(Part.head()),
            tooltip="The head: pools each map to one number and classifies.")
        self._place(head, "fc", x, top)
        self.layout.columns.append(Column(HEAD, QRectF(x, top, HEAD_WIDTH, head.height),
                                          card=head))

    def _add_arrows(self, y: float) -> None:
        columns = self.layout.columns
        for before, after in zip(columns, columns[1:]):
            self.layout.decorations.append(FlowArrow(QPointF(before.rect.right() + 2, y),
                                                     QPointF(after.rect.left() - 2, y)))

    def _add_stage(self, index: int, x: float, top: float) -> float:
        """The stage's block cards, then its frame around them; returns the right edge."""
        stage = self.arch.stages[index]
        name = f"layer{index + 1}"
        part = Part.stage(index)
        problem = self.problem_for(part)
        header = self.look.header_height(True) + 4
        if problem:
            header += self.look.problem_height(problem, STAGE_WIDTH - 16) + 4
        blocks, bottom = self._add_blocks(index, x + STAGE_PAD, top + header)
        height = bottom - top - BLOCK_GAP + STAGE_PAD + 2
        kinds = stage.block or "mixed"
        stride = f" · /{stage.stride}" if stage.stride > 1 else ""
        frame = StageCard(
            self.look, part, STAGE_WIDTH, height, title=name,
            subtitle=f"{kinds} ×{stage.num_blocks} · {stage.width} wide{stride}",
            shape_text=self.shapes.get(name, ""), problem=problem,
            tooltip=f"Stage {name}: {stage.num_blocks} {kinds} blocks, {stage.width} channels wide"
            + (f", the first with stride {stage.stride}" if stage.stride > 1 else "")
            + ". Drag the stage to reorder it.")
        self._place(frame, name, x, top)
        self.layout.columns.append(Column(STAGE, QRectF(x, top, STAGE_WIDTH, height), index,
                                          frame, blocks))
        self._add_connectors(blocks)
        return x + STAGE_WIDTH

    def _add_blocks(self, index: int, x: float, y: float) -> tuple[list[BlockCard], float]:
        """The stage's block cards from ``y`` down; returns them and the y below the last."""
        arch = self.arch
        stage = arch.stages[index]
        name = f"layer{index + 1}"
        cards = []
        for position, run, group in card_runs(arch, index, self.expanded):
            kind = stage.blocks[position]
            stride = stage.stride if position == 0 else 1
            shortcut = edits.block_shortcut(arch, index, position)
            part = Part.blocks(index, position, run)
            last = f"{name}.{position + run - 1}"
            title = f"{name}.{position}" + (f"–{position + run - 1}" if run > 1 else "")
            card = BlockCard(
                self.look, part, STAGE_WIDTH - 2 * STAGE_PAD, kind,
                block_steps(kind, stage.width, stride), shortcut, stride, folded=run,
                expanded_group=group,
                title=title,
                # A mixed stage says which kind each card is.
                subtitle=kind if stage.block is None else "",
                shape_text=self.shapes.get(last, ""), problem=self.problem_for(part),
                tooltip=block_tooltip(arch, index, position, run, shortcut))
            self._place(card, last, x, y)
            cards.append(card)
            y += card.height + BLOCK_GAP + (4 if run > 1 else 0)
        return cards, y

    def _add_connectors(self, blocks: list[BlockCard]) -> None:
        """A line down the branch from each block of a stage into the next."""
        for upper, lower in zip(blocks, blocks[1:]):
            centre = upper.pos().x() + 10 + (upper.width - LANE - 22) / 2
            line = QGraphicsLineItem(QLineF(centre, upper.pos().y() + upper.height,
                                            centre, lower.pos().y()))
            line.setPen(QPen(MUTED, 1.4))
            line.setZValue(0)
            self.layout.decorations.append(line)
