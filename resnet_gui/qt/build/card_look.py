"""How the canvas looks: colours, geometry in scene units, and the fonts and measures the
cards are drawn with."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontInfo, QFontMetricsF

from resnet_gui.arch.edits import IDENTITY
from resnet_gui.qt.build.card_steps import Step

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


def _font(base: QFont, delta: float = 0.0, bold: bool = False) -> QFont:
    font = QFont(base)
    size = base.pointSizeF() if base.pointSizeF() > 0 else 9.0
    font.setPointSizeF(max(6.0, size + delta))
    font.setBold(bold)
    return font


class CardLook:
    """The fonts and text measures of the cards, from the canvas's font, and the text a card
    shows while its output shape is not known."""

    def __init__(self, base: QFont) -> None:
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
        # "…" while the analysis runs, "?" when the network is invalid.
        self.pending_shape = "…"

    @property
    def smallest_text_px(self) -> int:
        """The pixel size of the smallest text on the cards, at a scale of 1."""
        fonts = (self.title_font, self.small_font, self.chip_font, self.tag_font,
                 self.shape_font, self.badge_font)
        return min(QFontInfo(font).pixelSize() for font in fonts)

    def header_height(self, with_subtitle: bool) -> float:
        return 5 + self.title_height + (self.small_height if with_subtitle else 0) + 2

    def problem_height(self, text: str, width: float) -> float:
        rect = self.small_metrics.boundingRect(QRectF(0, 0, width, 1000),
                                               int(Qt.TextFlag.TextWordWrap), text)
        return rect.height() + 2

    def steps_height(self, steps: list[Step]) -> float:
        return sum(CHIP_HEIGHT + 4 if step.style != "tag" else self.tag_height for step in steps)

