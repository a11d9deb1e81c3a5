"""The architecture canvas: the network drawn as it will run, left to right.

Stem card, then one card per stage holding its blocks top to bottom, then the head card. Each
block shows its residual branch (convolutions, with batch norm and ReLU between them) and, in
a lane on its right, its shortcut: a plain grey line for the identity, a box for a projection,
a dashed line for zero-padding. Runs of identical blocks fold into one card with a xN badge;
clicking the badge unfolds them.

The canvas is a view: it draws the controller's architecture, selection, analysis and
problem, and turns clicks and drops into one-line controller calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QLineF, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QDrag,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QTransform,
)
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from resnet_gui.qt.shared import formatting
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.build.mime import BLOCK, HEAD, SHORTCUT, STAGE, STEM, Payload, move_mime, read_payload
from resnet_gui.arch import edits
from resnet_gui.arch.edits import IDENTITY, Part
from resnet_gui.arch.model import BLOCK_EXPANSION, SHORTCUT_KINDS, Architecture

# -- look -----------------------------------------------------------------------------------

INK = QColor("#1f2937")
MUTED = QColor("#6b7280")
CARD_FILL = QColor("#ffffff")
CARD_BORDER = QColor("#c3cad6")
STAGE_FILL = QColor("#eef2f8")
STAGE_BORDER = QColor("#a9b8d3")
SELECT = QColor("#2563eb")
SELECT_FILL = QColor("#e8f0ff")
PROBLEM = QColor("#dc2626")
PROBLEM_FILL = QColor("#fdecec")
CONV_FILL, CONV_BORDER, CONV_TEXT = QColor("#dce7fb"), QColor("#3b6fd4"), QColor("#1e3a8a")
POOL_FILL, POOL_BORDER, POOL_TEXT = QColor("#ece4fb"), QColor("#7c5cc4"), QColor("#44337a")
FC_FILL, FC_BORDER, FC_TEXT = QColor("#fdf0dc"), QColor("#d08a2e"), QColor("#7a4a0c")
TAG_TEXT = QColor("#2f7a56")
BADGE = QColor("#2563eb")
SHORTCUT_COLOURS = {
    IDENTITY: QColor("#8a94a6"),
    "projection": QColor("#e07b24"),
    "zero-pad": QColor("#805ad5"),
    "avgpool-projection": QColor("#2c7a7b"),
}
SHORTCUT_LABELS = {
    "projection": "1×1 conv",
    "zero-pad": "zero-pad",
    "avgpool-projection": "avg + 1×1",
}

# Geometry in scene units (logical pixels; Qt scales them on high-DPI screens).
MARGIN = 16
COLUMN_GAP = 22
STEM_WIDTH = 156
HEAD_WIDTH = 140
STAGE_WIDTH = 188
STAGE_PAD = 8
BLOCK_GAP = 12
LANE = 30
CHIP_HEIGHT = 21
RADIUS = 7

MIN_AUTO_SCALE = 0.6


def _font(base: QFont, delta: float = 0.0, bold: bool = False) -> QFont:
    font = QFont(base)
    size = base.pointSizeF() if base.pointSizeF() > 0 else 9.0
    font.setPointSizeF(max(6.0, size + delta))
    font.setBold(bold)
    return font


@dataclass(frozen=True)
class Step:
    """One row of a card's branch: a chip (conv, pool, fc) or a tag line (BN · ReLU)."""

    text: str
    style: str  # "conv", "pool", "fc" or "tag"


def conv_text(kernel: int, channels: int, stride: int = 1) -> str:
    return f"{kernel}×{kernel} conv, {channels}" + (f", /{stride}" if stride > 1 else "")


def block_steps(kind: str, width: int, stride: int) -> list[Step]:
    """The branch of a block as the builder makes it (resnet_gui.engine.model)."""
    out = width * BLOCK_EXPANSION[kind]
    if kind in ("basic", "plain"):
        return [Step(conv_text(3, width, stride), "conv"), Step("BN · ReLU", "tag"),
                Step(conv_text(3, out), "conv"), Step("BN", "tag")]
    if kind in ("bottleneck", "plain-bottleneck"):
        return [Step(conv_text(1, width), "conv"), Step("BN · ReLU", "tag"),
                Step(conv_text(3, width, stride), "conv"), Step("BN · ReLU", "tag"),
                Step(conv_text(1, out), "conv"), Step("BN", "tag")]
    if kind == "preact-basic":
        return [Step("BN · ReLU", "tag"), Step(conv_text(3, width, stride), "conv"),
                Step("BN · ReLU", "tag"), Step(conv_text(3, out), "conv")]
    return [Step("BN · ReLU", "tag"), Step(conv_text(1, width), "conv"),
            Step("BN · ReLU", "tag"), Step(conv_text(3, width, stride), "conv"),
            Step("BN · ReLU", "tag"), Step(conv_text(1, out), "conv")]


def stem_steps(arch: Architecture) -> list[Step]:
    stem = arch.stem
    norm = "BN · ReLU" if stem.batch_norm else "ReLU"
    if stem.kind == "deep":
        half = stem.width // 2
        steps = [Step(conv_text(3, half, stem.stride), "conv"), Step("BN · ReLU", "tag"),
                 Step(conv_text(3, half), "conv"), Step("BN · ReLU", "tag"),
                 Step(conv_text(3, stem.width), "conv"), Step(norm, "tag")]
    else:
        steps = [Step(conv_text(stem.kernel, stem.width, stem.stride), "conv"), Step(norm, "tag")]
    if stem.max_pool:
        steps.append(Step("3×3 max pool, /2", "pool"))
    return steps


def head_steps(arch: Architecture) -> list[Step]:
    steps = []
    if arch.final_preactivation:
        steps.append(Step("BN · ReLU", "tag"))
    steps.append(Step(f"global {arch.head.pool} pool", "pool"))
    if arch.head.dropout > 0:
        steps.append(Step(f"dropout {arch.head.dropout:g}", "tag"))
    steps.append(Step(f"fc → {arch.num_classes}", "fc"))
    return steps


def steps_height(steps: list[Step], tag_height: float) -> float:
    return sum(CHIP_HEIGHT + 4 if step.style != "tag" else tag_height for step in steps)


# -- items ----------------------------------------------------------------------------------


class CardItem(QGraphicsItem):
    """A card for one part; paints itself from plain data prepared by the canvas."""

    def __init__(self, canvas: "ArchitectureCanvas", part: Part, width: float, height: float,
                 title: str, subtitle: str = "", shape_text: str = "", problem: str = "",
                 tooltip: str = "") -> None:
        super().__init__()
        self.canvas = canvas
        self.part = part
        self.width, self.height = width, height
        self.title, self.subtitle = title, subtitle
        self.shape_text = shape_text
        self.problem = problem
        self.selected = False
        self.shape_key = ""
        # Painted once into a pixmap: selection, scrolling and shape updates repaint only
        # the cards that changed.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        if tooltip:
            self.setToolTip(tooltip)

    def boundingRect(self) -> QRectF:
        return QRectF(-3, -3, self.width + 12, self.height + 12)

    def signature(self) -> tuple:
        """Everything the card draws: an old card with the same signature is kept (with its
        cached picture) instead of painting a new one."""
        return (type(self).__name__, self.part, self.pos().x(), self.pos().y(), self.width,
                self.height, self.title, self.subtitle, self.shape_text, self.problem,
                self.toolTip(), *self.extra_signature())

    def extra_signature(self) -> tuple:
        return ()

    def card_rect(self) -> QRectF:
        return QRectF(0, 0, self.width, self.height)

    def frame_colours(self, fill: QColor, border: QColor) -> tuple[QColor, QColor, float]:
        if self.problem:
            return PROBLEM_FILL, PROBLEM, 2.2
        if self.selected:
            return SELECT_FILL, SELECT, 2.5
        return fill, border, 1.0

    def paint_frame(self, painter: QPainter, fill: QColor, border: QColor) -> None:
        fill, border, width = self.frame_colours(fill, border)
        painter.setPen(QPen(border, width))
        painter.setBrush(fill)
        painter.drawRoundedRect(self.card_rect(), RADIUS, RADIUS)

    def paint_problem(self, painter: QPainter, top: float) -> None:
        if not self.problem:
            return
        painter.setFont(self.canvas.small_font)
        painter.setPen(PROBLEM)
        rect = QRectF(8, top, self.width - 16, self.height - top - 4)
        painter.drawText(rect, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft, self.problem)

    def paint_steps(self, painter: QPainter, steps: list[Step], left: float, right: float,
                    top: float) -> float:
        """Chips and tags on the branch line; returns the y below the last one."""
        canvas = self.canvas
        centre = (left + right) / 2
        y = top
        for step in steps:
            if step.style == "tag":
                painter.setFont(canvas.tag_font)
                painter.setPen(TAG_TEXT)
                rect = QRectF(left, y, right - left, canvas.tag_height)
                text_width = canvas.tag_metrics.horizontalAdvance(step.text) + 8
                painter.fillRect(QRectF(centre - text_width / 2, y + 1, text_width,
                                        canvas.tag_height - 2), self.current_fill())
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, step.text)
                y += canvas.tag_height
                continue
            fill, border, ink = {
                "conv": (CONV_FILL, CONV_BORDER, CONV_TEXT),
                "pool": (POOL_FILL, POOL_BORDER, POOL_TEXT),
                "fc": (FC_FILL, FC_BORDER, FC_TEXT),
            }[step.style]
            rect = QRectF(left, y + 2, right - left, CHIP_HEIGHT)
            painter.setPen(QPen(border, 1.2))
            painter.setBrush(fill)
            painter.drawRoundedRect(rect, 4, 4)
            painter.setPen(ink)
            painter.setFont(canvas.chip_font)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, step.text)
            y += CHIP_HEIGHT + 4
        return y

    def current_fill(self) -> QColor:
        return self.frame_colours(CARD_FILL, CARD_BORDER)[0]

    def paint_header(self, painter: QPainter, right_inset: float = 8) -> None:
        canvas = self.canvas
        painter.setPen(INK)
        painter.setFont(canvas.title_font)
        painter.drawText(QRectF(9, 5, self.width - 18, canvas.title_height),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.title)
        if self.subtitle:
            painter.setPen(MUTED)
            painter.setFont(canvas.small_font)
            painter.drawText(
                QRectF(9, 5 + canvas.title_height, self.width - 9 - right_inset, canvas.small_height),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.subtitle)

    def paint_shape(self, painter: QPainter, y: float) -> None:
        painter.setPen(MUTED if not self.problem else PROBLEM)
        painter.setFont(self.canvas.shape_font)
        painter.drawText(QRectF(8, y, self.width - 16, self.canvas.small_height + 2),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.shape_text or self.canvas.pending_shape)


class SimpleCard(CardItem):
    """The stem and the head: a title, a column of steps, the output shape."""

    def __init__(self, canvas, part, width, steps: list[Step], fill: QColor, border: QColor,
                 **kwargs) -> None:
        self.steps = steps
        self.fill, self.border = fill, border
        height = canvas.header_height(True) + 6 + steps_height(steps, canvas.tag_height) + \
            canvas.small_height + 12
        self.problem_top = height - 4
        if kwargs.get("problem"):
            height += canvas.problem_height(kwargs["problem"], width - 16) + 6
        super().__init__(canvas, part, width, height, **kwargs)

    def current_fill(self) -> QColor:
        return self.frame_colours(self.fill, self.border)[0]

    def extra_signature(self) -> tuple:
        return (tuple(self.steps),)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.paint_frame(painter, self.fill, self.border)
        self.paint_header(painter)
        top = self.canvas.header_height(True) + 6
        centre = self.width / 2
        bottom = top + steps_height(self.steps, self.canvas.tag_height)
        painter.setPen(QPen(MUTED, 1.4))
        painter.drawLine(QPointF(centre, top - 4), QPointF(centre, bottom))
        self.paint_steps(painter, self.steps, 10, self.width - 10, top)
        self.paint_shape(painter, bottom + 2)
        self.paint_problem(painter, self.problem_top)


class StageCard(CardItem):
    """The frame of a stage; its blocks are separate items drawn on top of it."""

    def __init__(self, canvas, part, width, height, **kwargs) -> None:
        super().__init__(canvas, part, width, height, **kwargs)
        self.setZValue(-1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.paint_frame(painter, STAGE_FILL, STAGE_BORDER)
        self.paint_header(painter, right_inset=8)
        painter.setPen(MUTED if not self.problem else PROBLEM)
        painter.setFont(self.canvas.shape_font)
        painter.drawText(QRectF(8, 5, self.width - 16, self.canvas.title_height),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.shape_text or self.canvas.pending_shape)
        if self.problem:
            top = self.canvas.header_height(True) + 2
            painter.setFont(self.canvas.small_font)
            painter.setPen(PROBLEM)
            painter.drawText(QRectF(8, top, self.width - 16, self.canvas.problem_height(
                self.problem, self.width - 16)), Qt.TextFlag.TextWordWrap, self.problem)


class BlockCard(CardItem):
    """One block, or a folded run of identical blocks, with its shortcut in a side lane."""

    def __init__(self, canvas, part, width, kind: str, steps: list[Step], shortcut: str | None,
                 shortcut_stride: int, folded: int, expanded_group: int, **kwargs) -> None:
        self.kind = kind
        self.steps = steps
        self.shortcut = shortcut
        self.shortcut_stride = shortcut_stride
        self.folded = folded  # N > 1: this card stands for N identical blocks
        self.expanded_group = expanded_group  # N > 1: first card of an unfolded run of N
        self.branch_top = canvas.header_height(bool(kwargs.get("subtitle"))) + 10
        self.add_y = self.branch_top + steps_height(steps, canvas.tag_height) + 8
        height = self.add_y + 9 + (canvas.tag_height if self.post_activation else 2) + \
            canvas.small_height + 6
        self.problem_top = height - 2
        if kwargs.get("problem"):
            height += canvas.problem_height(kwargs["problem"], width - 16) + 6
        super().__init__(canvas, part, width, height, **kwargs)
        self.setZValue(1)

    def extra_signature(self) -> tuple:
        return (self.kind, tuple(self.steps), self.shortcut, self.shortcut_stride, self.folded,
                self.expanded_group)

    @property
    def post_activation(self) -> bool:
        return not self.kind.startswith("preact")

    def badge_rect(self) -> QRectF:
        if self.folded <= 1 and self.expanded_group <= 1:
            return QRectF()
        text = self.badge_text()
        width = self.canvas.badge_metrics.horizontalAdvance(text) + 14
        return QRectF(self.width - width - 6, 5, width, self.canvas.title_height)

    def badge_text(self) -> str:
        return f"×{self.folded}" if self.folded > 1 else f"fold {self.expanded_group} ▴"

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        canvas = self.canvas
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.folded > 1:  # a stack of cards behind this one says "several of these"
            fill, border, _ = self.frame_colours(CARD_FILL, CARD_BORDER)
            painter.setPen(QPen(border, 1.0))
            painter.setBrush(fill)
            for offset in (6, 3):
                painter.drawRoundedRect(self.card_rect().translated(offset, offset), RADIUS, RADIUS)
        self.paint_frame(painter, CARD_FILL, CARD_BORDER)
        self.paint_header(painter, right_inset=self.badge_rect().width() + 10)
        badge = self.badge_rect()
        if not badge.isNull():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(BADGE if self.folded > 1 else QColor("#94a3b8"))
            painter.drawRoundedRect(badge, badge.height() / 2, badge.height() / 2)
            painter.setPen(QColor("white"))
            painter.setFont(canvas.badge_font)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, self.badge_text())

        lane_x = self.width - LANE / 2 - 6
        left, right = 10, self.width - LANE - 12
        centre = (left + right) / 2
        entry_y = self.branch_top - 5
        add_y = self.add_y
        # The branch: a line through the steps, from the entry point to the addition.
        painter.setPen(QPen(MUTED, 1.4))
        painter.drawLine(QPointF(centre, entry_y), QPointF(centre, add_y))
        painter.setBrush(MUTED)
        painter.drawEllipse(QPointF(centre, entry_y), 2.6, 2.6)
        self.paint_shortcut(painter, centre, lane_x, entry_y, add_y)
        self.paint_steps(painter, self.steps, left, right, self.branch_top)
        y = add_y
        if self.shortcut is not None:
            painter.setPen(QPen(INK, 1.4))
            painter.setBrush(CARD_FILL)
            painter.drawEllipse(QPointF(centre, y), 7, 7)
            painter.drawLine(QPointF(centre - 4, y), QPointF(centre + 4, y))
            painter.drawLine(QPointF(centre, y - 4), QPointF(centre, y + 4))
            y += 8
        painter.setPen(QPen(MUTED, 1.4))
        painter.drawLine(QPointF(centre, y), QPointF(centre, self.height if not self.problem
                                                    else self.problem_top))
        if self.post_activation:
            painter.setFont(canvas.tag_font)
            text = "ReLU"
            width = canvas.tag_metrics.horizontalAdvance(text) + 8
            painter.fillRect(QRectF(centre - width / 2, y + 2, width, canvas.tag_height - 3),
                             self.current_fill())
            painter.setPen(TAG_TEXT)
            painter.drawText(QRectF(left, y + 1, right - left, canvas.tag_height),
                             Qt.AlignmentFlag.AlignCenter, text)
            y += canvas.tag_height
        else:
            y += 2
        self.paint_shape(painter, y)
        self.paint_problem(painter, self.problem_top)

    def paint_shortcut(self, painter: QPainter, centre: float, lane_x: float, entry_y: float,
                       add_y: float) -> None:
        canvas = self.canvas
        if self.shortcut is None:  # a plain block: say so where the shortcut would be
            painter.save()
            painter.setPen(QColor("#b0b7c3"))
            painter.setFont(canvas.tag_font)
            painter.translate(lane_x + 4, (entry_y + add_y) / 2)
            painter.rotate(-90)
            painter.drawText(QRectF(-60, -8, 120, 16), Qt.AlignmentFlag.AlignCenter, "no shortcut")
            painter.restore()
            return
        colour = SHORTCUT_COLOURS.get(self.shortcut, MUTED)
        pen = QPen(colour, 2.2 if self.shortcut != IDENTITY else 1.8)
        if self.shortcut == "zero-pad":
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        path = QPainterPath(QPointF(centre, entry_y))
        path.lineTo(lane_x - 6, entry_y)
        path.quadTo(lane_x, entry_y, lane_x, entry_y + 6)
        path.lineTo(lane_x, add_y - 6)
        path.quadTo(lane_x, add_y, lane_x - 6, add_y)
        path.lineTo(centre + 7, add_y)
        painter.drawPath(path)
        # An arrowhead into the addition.
        painter.setBrush(colour)
        painter.setPen(Qt.PenStyle.NoPen)
        tip = QPointF(centre + 8, add_y)
        painter.drawPolygon(QPolygonF([tip, tip + QPointF(6, -3.5), tip + QPointF(6, 3.5)]))
        if self.shortcut == IDENTITY:
            return
        label = SHORTCUT_LABELS.get(self.shortcut, self.shortcut)
        if self.shortcut_stride > 1:
            label += f", /{self.shortcut_stride}"
        text_length = canvas.tag_metrics.horizontalAdvance(label) + 12
        middle = (entry_y + add_y) / 2
        box = QRectF(-text_length / 2, -9, text_length, 18)
        painter.save()
        painter.translate(lane_x, middle)
        painter.rotate(-90)
        if self.shortcut == "zero-pad":
            painter.setBrush(CARD_FILL if not self.selected else SELECT_FILL)
            painter.setPen(Qt.PenStyle.NoPen)
        else:
            painter.setBrush(QColor(colour).lighter(185))
            painter.setPen(QPen(colour, 1.4))
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(colour.darker(150))
        painter.setFont(canvas.tag_font)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        painter.restore()


class FlowArrow(QGraphicsItem):
    """A horizontal arrow from one column to the next."""

    def __init__(self, start: QPointF, end: QPointF) -> None:
        super().__init__()
        self.start, self.end = start, end
        self.setZValue(-2)

    def boundingRect(self) -> QRectF:
        return QRectF(self.start, self.end).normalized().adjusted(-6, -6, 6, 6)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(MUTED, 1.6))
        painter.drawLine(QLineF(self.start, self.end - QPointF(6, 0)))
        painter.setBrush(MUTED)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawPolygon(QPolygonF([self.end, self.end + QPointF(-7, -4),
                                       self.end + QPointF(-7, 4)]))


# -- drops ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropTarget:
    """What a drop at a point would do, and where to draw the indicator."""

    action: str  # insert_stage, insert_block, move_stage, move_block, stem, head, shortcut
    stage: int = -1
    position: int = -1
    indicator: QRectF = field(default_factory=QRectF)
    outline: bool = False  # True: outline a card (replace/set); False: an insertion bar
    description: str = ""


@dataclass
class _Column:
    kind: str  # stem, stage, head
    rect: QRectF
    stage_index: int = -1
    card: CardItem | None = None
    blocks: list[BlockCard] | None = None


class ArchitectureCanvas(QGraphicsView):
    """The network as cards; objectName ``architectureCanvas``."""

    hoverMessage = Signal(str)

    def __init__(self, controller: EditorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("architectureCanvas")
        self.controller = controller
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setBackgroundBrush(QColor("#f7f8fa"))
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.expanded: set[tuple[int, int]] = set()  # (stage, first block) of unfolded runs
        self.auto_fit = True
        self.columns: list[_Column] = []
        self.cards: list[CardItem] = []
        self._decorations: list[QGraphicsItem] = []  # arrows and connectors between cards
        self._press: tuple[QPoint, CardItem | None] | None = None
        self._indicator = None
        self._update_fonts()
        self.pending_shape = "…"
        controller.documentChanged.connect(self._on_document)
        controller.analysisChanged.connect(self.refresh_analysis)
        controller.selectionChanged.connect(self._on_selection)
        controller.lockChanged.connect(lambda *_: self.rebuild())
        self.rebuild()

    # -- fonts and measures --------------------------------------------------------------

    def _update_fonts(self) -> None:
        base = self.font()
        self.title_font = _font(base, 0.5, bold=True)
        self.small_font = _font(base, -1.0)
        self.chip_font = _font(base, -0.5)
        self.tag_font = _font(base, -1.5)
        self.shape_font = _font(base, -0.5, bold=True)
        self.badge_font = _font(base, -1.0, bold=True)
        self.tag_metrics = QFontMetricsF(self.tag_font)
        self.badge_metrics = QFontMetricsF(self.badge_font)
        self.small_metrics = QFontMetricsF(self.small_font)
        self.title_height = QFontMetricsF(self.title_font).height() + 2
        self.small_height = self.small_metrics.height() + 1
        self.tag_height = self.tag_metrics.height() + 2

    def header_height(self, with_subtitle: bool) -> float:
        return 5 + self.title_height + (self.small_height if with_subtitle else 0) + 2

    def problem_height(self, text: str, width: float) -> float:
        rect = self.small_metrics.boundingRect(QRectF(0, 0, width, 1000),
                                               int(Qt.TextFlag.TextWordWrap), text)
        return rect.height() + 2

    # -- building the scene --------------------------------------------------------------

    def _shapes(self) -> dict[str, str]:
        """Output shape text by card key: a layer name, or "stem" for the stem's last layer.
        Empty while the analysis of the current version is not in yet."""
        analysis = self.controller.analysis
        if analysis is None or not self.controller.analysis_is_current:
            return {}
        shapes = {}
        for row in analysis.layers:
            if row.depth <= 1:
                shapes[row.name] = formatting.shape(row.output_shape)
                if row.depth == 0 and row.name in edits.STEM_LAYERS:
                    shapes["stem"] = shapes[row.name]
        return shapes

    def refresh_analysis(self) -> None:
        """New figures: update the shapes in place (only changed cards repaint); a change in
        which cards show a problem changes their size, so that rebuilds."""
        problems = {id(card): self._problem_for(card.part) for card in self.cards}
        if any(problems[id(card)] != card.problem for card in self.cards):
            self.rebuild()
            return
        self.pending_shape = "?" if self.controller.problem is not None else "…"
        shapes = self._shapes()
        for card in self.cards:
            text = shapes.get(card.shape_key, "")
            if text != card.shape_text or not text:
                card.shape_text = text
                card.update()

    def _problem_for(self, part: Part) -> str:
        problem, where = self.controller.problem, self.controller.problem_part
        if problem is None or where is None:
            return ""
        if where == part:
            return problem.reason
        if where.kind == edits.BLOCK and part.kind == edits.BLOCK and \
                where.stage_index == part.stage_index and where.block_index in part.block_range:
            return problem.reason
        return ""

    def _on_document(self, change) -> None:
        if change.kind == "reset":  # a new network: everything folded, from the top
            self.expanded.clear()
            self.rebuild()
            self.horizontalScrollBar().setValue(0)
            self.verticalScrollBar().setValue(0)
            return
        self.rebuild()

    def rebuild(self, *_args) -> None:
        """Recreate every card from the controller's state (a few ms even for resnet152)."""
        scene = self.scene()
        self._hide_indicator()
        for item in self._decorations:
            scene.removeItem(item)
        previous = self.cards
        self.cards, self.columns, self._decorations = [], [], []
        arch = self.controller.arch
        shapes = self._shapes()
        # Shapes not known yet: "…" while the analysis runs, "?" when the network is invalid.
        self.pending_shape = "?" if self.controller.problem is not None else "…"
        self.expanded = {key for key in self.expanded if key[0] < len(arch.stages)}
        x, top = MARGIN, MARGIN
        dataset = f"input {arch.in_channels}×{arch.input_size[0]}×{arch.input_size[1]}"
        stem = SimpleCard(
            self, Part.stem(), STEM_WIDTH, stem_steps(arch), CARD_FILL, CARD_BORDER,
            title="Stem", subtitle=dataset, shape_text=shapes.get("stem", ""),
            problem=self._problem_for(Part.stem()),
            tooltip="The stem: turns the image into the first feature maps. "
            "Drop a stem from the palette here to replace it.")
        stem.shape_key = "stem"
        self._place(stem, x, top)
        self.columns.append(_Column(STEM, QRectF(x, top, STEM_WIDTH, stem.height), card=stem))
        x += STEM_WIDTH + COLUMN_GAP
        for index, stage in enumerate(arch.stages):
            x = self._build_stage(arch, index, x, top, shapes) + COLUMN_GAP
        head = SimpleCard(
            self, Part.head(), HEAD_WIDTH, head_steps(arch), CARD_FILL, CARD_BORDER,
            title="Head", subtitle=f"{arch.num_classes} classes",
            shape_text=shapes.get("fc", ""),
            problem=self._problem_for(Part.head()),
            tooltip="The head: pools each map to one number and classifies.")
        head.shape_key = "fc"
        self._place(head, x, top)
        self.columns.append(_Column(HEAD, QRectF(x, top, HEAD_WIDTH, head.height), card=head))
        arrow_y = top + self.title_height / 2 + 6
        for before, after in zip(self.columns, self.columns[1:]):
            arrow = FlowArrow(QPointF(before.rect.right() + 2, arrow_y),
                              QPointF(after.rect.left() - 2, arrow_y))
            scene.addItem(arrow)
            self._decorations.append(arrow)
        self._reuse_unchanged(previous)
        bottom = max(column.rect.bottom() for column in self.columns)
        scene.setSceneRect(QRectF(0, 0, x + HEAD_WIDTH + MARGIN, bottom + MARGIN + 24))
        self._on_selection(self.controller.selection)
        self._apply_auto_fit()

    def _place(self, card: CardItem, x: float, y: float) -> None:
        card.setPos(x, y)
        self.cards.append(card)

    def _reuse_unchanged(self, previous: list[CardItem]) -> None:
        """Put the new cards in the scene, keeping old ones that would look the same."""
        scene = self.scene()
        unused = {card.signature(): card for card in previous}
        for index, card in enumerate(self.cards):
            old = unused.pop(card.signature(), None)
            if old is not None:
                self.cards[index] = old
                for column in self.columns:
                    if column.card is card:
                        column.card = old
                    if column.blocks and card in column.blocks:
                        column.blocks[column.blocks.index(card)] = old
            else:
                scene.addItem(card)
        for card in unused.values():
            scene.removeItem(card)

    def _build_stage(self, arch: Architecture, index: int, x: float, top: float,
                     shapes: dict[str, str]) -> float:
        stage = arch.stages[index]
        name = f"layer{index + 1}"
        part = Part.stage(index)
        kinds = stage.block or "mixed"
        subtitle = f"{kinds} ×{stage.num_blocks} · {stage.width} wide" + (
            f" · /{stage.stride}" if stage.stride > 1 else "")
        problem = self._problem_for(part)
        header = self.header_height(True) + 4
        if problem:
            header += self.problem_height(problem, STAGE_WIDTH - 16) + 4
        y = top + header
        block_cards: list[BlockCard] = []
        block_width = STAGE_WIDTH - 2 * STAGE_PAD
        for first, count in edits.fold_groups(arch, index):
            expanded = count > 1 and (index, first) in self.expanded
            runs = [(first + i, 1) for i in range(count)] if expanded else [(first, count)]
            for position, run in runs:
                kind = stage.blocks[position]
                stride = stage.stride if position == 0 else 1
                shortcut = edits.block_shortcut(arch, index, position)
                block_part = Part.blocks(index, position, run)
                label = f"{name}.{position}" if run == 1 else f"{name}.{position}–{position + run - 1}"
                card = BlockCard(
                    self, block_part, block_width, kind, block_steps(kind, stage.width, stride),
                    shortcut, stride, folded=run,
                    expanded_group=count if expanded and position == first else 1,
                    title=label,
                    # A mixed stage says which kind each card is.
                    subtitle=kind if stage.block is None else "",
                    shape_text=shapes.get(f"{name}.{position + run - 1}", ""),
                    problem=self._problem_for(block_part),
                    tooltip=self._block_tooltip(arch, index, position, run, shortcut))
                card.shape_key = f"{name}.{position + run - 1}"
                self._place(card, x + STAGE_PAD, y)
                block_cards.append(card)
                y += card.height + BLOCK_GAP + (4 if run > 1 else 0)
        height = y - top - BLOCK_GAP + STAGE_PAD + 2
        frame = StageCard(
            self, part, STAGE_WIDTH, height, title=name, subtitle=subtitle,
            shape_text=shapes.get(name, ""), problem=problem,
            tooltip=f"Stage {name}: {stage.num_blocks} {kinds} blocks, {stage.width} channels wide"
            + (f", the first with stride {stage.stride}" if stage.stride > 1 else "")
            + ". Drag the stage to reorder it.")
        frame.shape_key = name
        self._place(frame, x, top)
        self.columns.append(_Column(STAGE, QRectF(x, top, STAGE_WIDTH, height), index, frame,
                                    block_cards))
        # Connectors between consecutive blocks of the stage.
        for upper, lower in zip(block_cards, block_cards[1:]):
            centre = upper.pos().x() + 10 + (block_width - LANE - 22) / 2
            line = self.scene().addLine(QLineF(centre, upper.pos().y() + upper.height,
                                               centre, lower.pos().y()), QPen(MUTED, 1.4))
            line.setZValue(0)
            self._decorations.append(line)
        return x + STAGE_WIDTH

    def _block_tooltip(self, arch: Architecture, index: int, position: int, run: int,
                       shortcut: str | None) -> str:
        kind = arch.stages[index].blocks[position]
        what = {
            None: "no shortcut (plain block)",
            IDENTITY: "identity shortcut (input and output shapes match)",
            "projection": "projection shortcut: a 1×1 convolution matches the new shape",
            "zero-pad": "zero-padding shortcut: subsample and pad new channels with zeros",
            "avgpool-projection": "average pool then 1×1 convolution (ResNet-D)",
        }[shortcut]
        runs = f"{run} identical {kind} blocks (click ×{run} to unfold)" if run > 1 else f"a {kind} block"
        return f"{runs}; {what}. Drag to move it to another stage."

    # -- selection -----------------------------------------------------------------------

    def card_for(self, part: Part | None) -> CardItem | None:
        """The card that shows ``part`` (a folded card shows every block of its run)."""
        if part is None:
            return None
        for card in self.cards:
            if card.part == part:
                return card
        if part.kind == edits.BLOCK:
            for card in self.cards:
                if card.part.kind == edits.BLOCK and card.part.stage_index == part.stage_index \
                        and part.block_index in card.part.block_range:
                    return card
        return None

    def _on_selection(self, part: Part | None) -> None:
        target = self.card_for(part)
        for card in self.cards:
            selected = card is target
            if card.selected != selected:
                card.selected = selected
                card.update()
        if target is not None:
            self.ensureVisible(target, 20, 20)

    def toggle_fold(self, stage_index: int, first: int) -> None:
        key = (stage_index, first)
        if key in self.expanded:
            self.expanded.discard(key)
        else:
            self.expanded.add(key)
        self.rebuild()

    def expand_all(self, expanded: bool) -> None:
        arch = self.controller.arch
        self.expanded = {
            (index, first)
            for index in range(len(arch.stages))
            for first, count in edits.fold_groups(arch, index)
            if count > 1
        } if expanded else set()
        self.rebuild()

    # -- zoom ----------------------------------------------------------------------------

    def _apply_auto_fit(self) -> None:
        if not self.auto_fit:
            return
        rect = self.scene().sceneRect()
        available = self.viewport().width() - 4
        scale = 1.0 if rect.width() <= available else max(MIN_AUTO_SCALE, available / rect.width())
        self.setTransform(QTransform.fromScale(scale, scale))

    def fit(self) -> None:
        self.auto_fit = True
        self._apply_auto_fit()

    def zoom(self, factor: float) -> None:
        self.auto_fit = False
        current = self.transform().m11()
        scale = min(3.0, max(0.25, current * factor))
        self.setTransform(QTransform.fromScale(scale, scale))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._apply_auto_fit()

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.15 if event.angleDelta().y() > 0 else 1 / 1.15)
            event.accept()
            return
        super().wheelEvent(event)

    # -- mouse ---------------------------------------------------------------------------

    def card_at(self, view_pos: QPoint) -> CardItem | None:
        for item in self.items(view_pos):
            if isinstance(item, CardItem) and item.card_rect().contains(item.mapFromScene(
                    self.mapToScene(view_pos))):
                return item
        return None

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        position = event.position().toPoint()
        card = self.card_at(position)
        self._press = (position, card)
        if isinstance(card, BlockCard):
            local = card.mapFromScene(self.mapToScene(position))
            if card.badge_rect().contains(local):
                self._press = None
                first = card.part.block_index
                self.toggle_fold(card.part.stage_index, first)
                return
        self.controller.select(card.part if card else None)
        self.setFocus()

    def mouseMoveEvent(self, event) -> None:
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            super().mouseMoveEvent(event)
            return
        start, card = self._press
        if card is None or self.controller.document.locked:
            return
        if (event.position().toPoint() - start).manhattanLength() < \
                QApplication.startDragDistance():
            return
        self._press = None
        if isinstance(card, BlockCard):
            part = card.part
            mime = move_mime(part.stage_index, part.block_index + part.count - 1)
        elif isinstance(card, StageCard):
            mime = move_mime(card.part.stage_index)
        else:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.MoveAction)
        self._hide_indicator()

    def mouseReleaseEvent(self, event) -> None:
        self._press = None
        super().mouseReleaseEvent(event)

    # -- drag and drop -------------------------------------------------------------------

    def drop_target(self, payload: Payload | None, scene_pos: QPointF) -> DropTarget | None:
        """What dropping ``payload`` at ``scene_pos`` would do, or None if nothing."""
        if payload is None or self.controller.document.locked or not self.columns:
            return None
        arch = self.controller.arch
        column = self._column_at(scene_pos.x())
        if payload.category == STEM and not payload.is_move:
            stem = self.columns[0]
            return DropTarget("stem", indicator=stem.rect, outline=True,
                              description="Replace the stem")
        if payload.category == HEAD and not payload.is_move:
            head = self.columns[-1]
            return DropTarget("head", indicator=head.rect, outline=True,
                              description="Change the head")
        if payload.category == SHORTCUT:
            if column is None or column.kind != STAGE or payload.value not in SHORTCUT_KINDS:
                return None
            return DropTarget("shortcut", stage=column.stage_index, indicator=column.rect,
                              outline=True, description=f"Use {payload.value} shortcuts in "
                              f"layer{column.stage_index + 1}")
        if payload.category == STAGE or (payload.category == BLOCK and not payload.is_move and (
                column is None or column.kind != STAGE)):
            gap = self._stage_gap(scene_pos.x())
            bar = self._gap_bar(gap)
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
        if payload.category == BLOCK:
            if column is None or column.kind != STAGE:
                return None
            position, bar = self._block_slot(column, scene_pos.y())
            if payload.is_move:
                same = payload.stage == column.stage_index
                if same and position in (payload.block, payload.block + 1):
                    return None
                if not 0 <= payload.stage < len(arch.stages):
                    return None
                return DropTarget("move_block", stage=column.stage_index, position=position,
                                  indicator=bar, description=f"Move layer{payload.stage + 1}."
                                  f"{payload.block} into layer{column.stage_index + 1}")
            return DropTarget("insert_block", stage=column.stage_index, position=position,
                              indicator=bar, description=f"Insert a {payload.value} block at "
                              f"layer{column.stage_index + 1}.{position}")
        return None

    def _column_at(self, x: float) -> _Column | None:
        """The column under ``x``; None in the gaps between columns (where a dropped block
        starts a new stage)."""
        for column in self.columns:
            if column.rect.left() <= x <= column.rect.right():
                return column
        if self.columns and x > self.columns[-1].rect.right():
            return self.columns[-1]
        return None

    def _stage_gap(self, x: float) -> int:
        """The stage index a new or moved stage would take when dropped at ``x``."""
        stages = [column for column in self.columns if column.kind == STAGE]
        for column in stages:
            if x < column.rect.center().x():
                return column.stage_index
        return len(stages)

    def _gap_bar(self, gap: int) -> QRectF:
        boundary = self.columns[gap].rect.right() + COLUMN_GAP / 2  # after the stem or a stage
        height = max(column.rect.bottom() for column in self.columns) - self.columns[0].rect.top()
        return QRectF(boundary - 2.5, self.columns[0].rect.top(), 5, height)

    def _block_slot(self, column: _Column, y: float) -> tuple[int, QRectF]:
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

    def apply_drop(self, payload: Payload | None, scene_pos: QPointF) -> bool:
        """Carry out a drop (the drop event and the tests both come here)."""
        target = self.drop_target(payload, scene_pos)
        if target is None:
            return False
        controller = self.controller
        action = target.action
        if action == "stem":
            return controller.edit(edits.replace_stem, payload.value,
                                   label=f"Replace the stem ({payload.value})",
                                   ) and self._select(Part.stem())
        if action == "head":
            if payload.value == "dropout":
                dropout = controller.arch.head.dropout or 0.5
                done = controller.edit(edits.set_head, dropout=dropout, label="Add dropout")
            else:
                done = controller.edit(edits.set_head, pool=payload.value,
                                       label=f"Use {payload.value} pooling")
            return done and self._select(Part.head())
        if action == "shortcut":
            return controller.edit(edits.set_stage, target.stage, shortcut_kind=payload.value,
                                   label=f"Use {payload.value} shortcuts in layer{target.stage + 1}"
                                   ) and self._select(Part.stage(target.stage))
        if action == "insert_stage":
            block = payload.value if payload.category == BLOCK else None
            return controller.edit(edits.insert_stage, target.stage, block=block,
                                   label=f"Insert stage layer{target.stage + 1}"
                                   ) and self._select(Part.stage(target.stage))
        if action == "move_stage":
            return controller.edit(edits.move_stage, target.stage, target.position,
                                   label=f"Move layer{target.stage + 1}"
                                   ) and self._select(Part.stage(target.position))
        if action == "insert_block":
            return controller.edit(edits.insert_block, target.stage, target.position,
                                   payload.value,
                                   label=f"Insert a {payload.value} block"
                                   ) and self._select(Part.blocks(target.stage, target.position))
        if action == "move_block":
            return controller.edit(edits.move_block, payload.stage, payload.block, target.stage,
                                   target.position,
                                   label=f"Move block layer{payload.stage + 1}.{payload.block}")
        return False

    def _select(self, part: Part) -> bool:
        self.controller.select(part)
        return True

    def _show_indicator(self, target: DropTarget) -> None:
        self._hide_indicator()
        if target.outline:
            item = QGraphicsRectItem(target.indicator.adjusted(-4, -4, 4, 4))
            pen = QPen(SELECT, 2.5, Qt.PenStyle.DashLine)
            item.setPen(pen)
            item.setBrush(QBrush(QColor(37, 99, 235, 28)))
        else:
            item = QGraphicsRectItem(target.indicator)
            item.setPen(Qt.PenStyle.NoPen)
            item.setBrush(SELECT)
        item.setZValue(20)
        self.scene().addItem(item)
        self._indicator = item

    def _hide_indicator(self) -> None:
        if self._indicator is not None:
            if self._indicator.scene() is not None:
                self.scene().removeItem(self._indicator)
            self._indicator = None

    def dragEnterEvent(self, event) -> None:
        if read_payload(event.mimeData()) is not None and not self.controller.document.locked:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        payload = read_payload(event.mimeData())
        target = self.drop_target(payload, self.mapToScene(event.position().toPoint()))
        if target is None:
            self._hide_indicator()
            event.ignore()
            return
        self._show_indicator(target)
        self.hoverMessage.emit(target.description)
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._hide_indicator()
        self.hoverMessage.emit("")

    def dropEvent(self, event) -> None:
        self._hide_indicator()
        payload = read_payload(event.mimeData())
        if self.apply_drop(payload, self.mapToScene(event.position().toPoint())):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- overlay -------------------------------------------------------------------------

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """A legend of the shortcut styles, fixed to the bottom-left corner of the view."""
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = self.tag_font
        painter.setFont(font)
        metrics = self.tag_metrics
        entries = [(IDENTITY, "identity"), ("projection", "projection (1×1 conv)"),
                   ("zero-pad", "zero-pad"), ("avgpool-projection", "avg pool + 1×1")]
        height = metrics.height() + 8
        x = 8.0
        y = self.viewport().height() - height - 6
        width = 78 + sum(metrics.horizontalAdvance(label) + 40 for _, label in entries)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 225))
        painter.drawRoundedRect(QRectF(x - 4, y, width, height), 5, 5)
        painter.setPen(MUTED)
        label_rect = QRectF(x + 2, y, 70, height)
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignVCenter, "Shortcuts:")
        x += 74
        for kind, label in entries:
            pen = QPen(SHORTCUT_COLOURS[kind], 2.4)
            if kind == "zero-pad":
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            middle = y + height / 2
            painter.drawLine(QPointF(x, middle), QPointF(x + 22, middle))
            if kind in ("projection", "avgpool-projection"):
                painter.setBrush(QColor(SHORTCUT_COLOURS[kind]).lighter(185))
                painter.setPen(QPen(SHORTCUT_COLOURS[kind], 1.2))
                painter.drawRect(QRectF(x + 7, middle - 4, 8, 8))
            painter.setPen(INK)
            advance = metrics.horizontalAdvance(label)
            painter.drawText(QRectF(x + 27, y, advance + 4, height), Qt.AlignmentFlag.AlignVCenter,
                             label)
            x += advance + 40
        painter.restore()
