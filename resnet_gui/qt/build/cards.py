"""The canvas's cards: the stem and the head, a stage's frame, a block (or a folded run of
identical blocks) with its shortcut, the arrows between columns, and the legend.

Each card paints itself from plain data (title, steps, shape text, problem) with the fonts
of a :class:`CardLook`; the canvas decides what the cards say and where they go.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from resnet_gui.arch.edits import IDENTITY, Part
from resnet_gui.qt.build.card_look import (
    BADGE,
    CARD_BORDER,
    CARD_FILL,
    CHIP_HEIGHT,
    CONV_BORDER,
    CONV_FILL,
    CONV_TEXT,
    FC_BORDER,
    FC_FILL,
    FC_TEXT,
    INK,
    LANE,
    MUTED,
    POOL_BORDER,
    POOL_FILL,
    POOL_TEXT,
    PROBLEM,
    PROBLEM_FILL,
    RADIUS,
    SELECT,
    SELECT_FILL,
    SHORTCUT_COLOURS,
    SHORTCUT_LABELS,
    STAGE_BORDER,
    STAGE_FILL,
    TAG_TEXT,
    CardLook,
)
from resnet_gui.qt.build.card_steps import Step


class CardItem(QGraphicsItem):
    """A card for one part; paints itself from plain data prepared by the canvas."""

    def __init__(self, look: CardLook, part: Part, width: float, height: float,
                 title: str, subtitle: str = "", shape_text: str = "", problem: str = "",
                 tooltip: str = "") -> None:
        super().__init__()
        self.look = look
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
        painter.setFont(self.look.small_font)
        painter.setPen(PROBLEM)
        rect = QRectF(8, top, self.width - 16, self.height - top - 4)
        painter.drawText(rect, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft, self.problem)

    def paint_steps(self, painter: QPainter, steps: list[Step], left: float, right: float,
                    top: float) -> float:
        """Chips and tags on the branch line; returns the y below the last one."""
        look = self.look
        centre = (left + right) / 2
        y = top
        for step in steps:
            if step.style == "tag":
                painter.setFont(look.tag_font)
                painter.setPen(TAG_TEXT)
                rect = QRectF(left, y, right - left, look.tag_height)
                text_width = look.tag_metrics.horizontalAdvance(step.text) + 8
                painter.fillRect(QRectF(centre - text_width / 2, y + 1, text_width,
                                        look.tag_height - 2), self.current_fill())
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, step.text)
                y += look.tag_height
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
            painter.setFont(look.chip_font)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, step.text)
            y += CHIP_HEIGHT + 4
        return y

    def current_fill(self) -> QColor:
        return self.frame_colours(CARD_FILL, CARD_BORDER)[0]

    def paint_header(self, painter: QPainter, right_inset: float = 8) -> None:
        look = self.look
        painter.setPen(INK)
        painter.setFont(look.title_font)
        painter.drawText(QRectF(9, 5, self.width - 18, look.title_height),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.title)
        if self.subtitle:
            painter.setPen(MUTED)
            painter.setFont(look.small_font)
            painter.drawText(
                QRectF(9, 5 + look.title_height, self.width - 9 - right_inset, look.small_height),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.subtitle)

    def paint_shape(self, painter: QPainter, y: float) -> None:
        painter.setPen(MUTED if not self.problem else PROBLEM)
        painter.setFont(self.look.shape_font)
        painter.drawText(QRectF(8, y, self.width - 16, self.look.small_height + 2),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.shape_text or self.look.pending_shape)


class SimpleCard(CardItem):
    """The stem and the head: a title, a column of steps, the output shape."""

    def __init__(self, look, part, width, steps: list[Step], fill: QColor, border: QColor,
                 **kwargs) -> None:
        self.steps = steps
        self.fill, self.border = fill, border
        height = look.header_height(True) + 6 + look.steps_height(steps) + \
            look.small_height + 12
        self.problem_top = height - 4
        if kwargs.get("problem"):
            height += look.problem_height(kwargs["problem"], width - 16) + 6
        super().__init__(look, part, width, height, **kwargs)

    def current_fill(self) -> QColor:
        return self.frame_colours(self.fill, self.border)[0]

    def extra_signature(self) -> tuple:
        return (tuple(self.steps),)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.paint_frame(painter, self.fill, self.border)
        self.paint_header(painter)
        top = self.look.header_height(True) + 6
        centre = self.width / 2
        bottom = top + self.look.steps_height(self.steps)
        painter.setPen(QPen(MUTED, 1.4))
        painter.drawLine(QPointF(centre, top - 4), QPointF(centre, bottom))
        self.paint_steps(painter, self.steps, 10, self.width - 10, top)
        self.paint_shape(painter, bottom + 2)
        self.paint_problem(painter, self.problem_top)


class StageCard(CardItem):
    """The frame of a stage; its blocks are separate items drawn on top of it."""

    def __init__(self, look, part, width, height, **kwargs) -> None:
        super().__init__(look, part, width, height, **kwargs)
        self.setZValue(-1)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.paint_frame(painter, STAGE_FILL, STAGE_BORDER)
        self.paint_header(painter, right_inset=8)
        painter.setPen(MUTED if not self.problem else PROBLEM)
        painter.setFont(self.look.shape_font)
        painter.drawText(QRectF(8, 5, self.width - 16, self.look.title_height),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.shape_text or self.look.pending_shape)
        if self.problem:
            top = self.look.header_height(True) + 2
            painter.setFont(self.look.small_font)
            painter.setPen(PROBLEM)
            painter.drawText(QRectF(8, top, self.width - 16, self.look.problem_height(
                self.problem, self.width - 16)), Qt.TextFlag.TextWordWrap, self.problem)


class BlockCard(CardItem):
    """One block, or a folded run of identical blocks, with its shortcut in a side lane."""

    def __init__(self, look, part, width, kind: str, steps: list[Step], shortcut: str | None,
                 shortcut_stride: int, folded: int, expanded_group: int, **kwargs) -> None:
        self.kind = kind
        self.steps = steps
        self.shortcut = shortcut
        self.shortcut_stride = shortcut_stride
        self.folded = folded  # N > 1: this card stands for N identical blocks
        self.expanded_group = expanded_group  # N > 1: first card of an unfolded run of N
        self.branch_top = look.header_height(bool(kwargs.get("subtitle"))) + 10
        self.add_y = self.branch_top + look.steps_height(steps) + 8
        height = self.add_y + 9 + (look.tag_height if self.post_activation else 2) + \
            look.small_height + 6
        self.problem_top = height - 2
        if kwargs.get("problem"):
            height += look.problem_height(kwargs["problem"], width - 16) + 6
        super().__init__(look, part, width, height, **kwargs)
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
        width = self.look.badge_metrics.horizontalAdvance(text) + 14
        return QRectF(self.width - width - 6, 5, width, self.look.title_height)

    def badge_text(self) -> str:
        return f"×{self.folded}" if self.folded > 1 else f"fold {self.expanded_group} ▴"

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        look = self.look
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
            painter.setFont(look.badge_font)
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
            painter.setFont(look.tag_font)
            text = "ReLU"
            width = look.tag_metrics.horizontalAdvance(text) + 8
            painter.fillRect(QRectF(centre - width / 2, y + 2, width, look.tag_height - 3),
                             self.current_fill())
            painter.setPen(TAG_TEXT)
            painter.drawText(QRectF(left, y + 1, right - left, look.tag_height),
                             Qt.AlignmentFlag.AlignCenter, text)
            y += look.tag_height
        else:
            y += 2
        self.paint_shape(painter, y)
        self.paint_problem(painter, self.problem_top)

    def paint_shortcut(self, painter: QPainter, centre: float, lane_x: float, entry_y: float,
                       add_y: float) -> None:
        look = self.look
        if self.shortcut is None:  # a plain block: say so where the shortcut would be
            painter.save()
            painter.setPen(QColor("#b0b7c3"))
            painter.setFont(look.tag_font)
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
        text_length = look.tag_metrics.horizontalAdvance(label) + 12
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
        painter.setFont(look.tag_font)
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


LEGEND = ((IDENTITY, "identity"), ("projection", "projection (1×1 conv)"),
          ("zero-pad", "zero-pad"), ("avgpool-projection", "avg pool + 1×1"))


def paint_legend(painter: QPainter, look: CardLook, bottom: float) -> None:
    """A legend of the shortcut styles, in view coordinates, its bottom edge 6 px above
    ``bottom``."""
    painter.save()
    painter.resetTransform()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setFont(look.tag_font)
    metrics = look.tag_metrics
    height = metrics.height() + 8
    x = 8.0
    y = bottom - height - 6
    width = 78 + sum(metrics.horizontalAdvance(label) + 40 for _, label in LEGEND)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 255, 255, 225))
    painter.drawRoundedRect(QRectF(x - 4, y, width, height), 5, 5)
    painter.setPen(MUTED)
    label_rect = QRectF(x + 2, y, 70, height)
    painter.drawText(label_rect, Qt.AlignmentFlag.AlignVCenter, "Shortcuts:")
    x += 74
    for kind, label in LEGEND:
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
