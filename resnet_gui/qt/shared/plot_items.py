"""pyqtgraph items the tabs share."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetricsF


class ClickableImage(pg.ImageItem):
    """An ImageItem that reports clicks in pixel coordinates (x = column, y = row)."""

    clicked = Signal(float, float)

    def mouseClickEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.button() == Qt.MouseButton.LeftButton:
            position = event.pos()
            self.clicked.emit(position.x(), position.y())
            event.accept()
        else:
            super().mouseClickEvent(event)


class ReadableAxis(pg.AxisItem):
    """A value axis whose labels never overlap: on a short plot (the learning-rate plot at
    a small window) pyqtgraph's spacing put six labels in 50 pixels, one over another."""

    LINES_PER_LABEL = 1.6

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        levels = super().tickSpacing(minVal, maxVal, size)
        if self.logMode or not levels:
            return levels
        room = max(1, int(size // (self.LINES_PER_LABEL * self._line_height())))
        major = levels[0][0]
        if abs(maxVal - minVal) / major <= room:
            return levels
        return [(_nice_step(abs(maxVal - minVal) / room), 0)]  # major ticks only

    def _line_height(self) -> float:
        font = self.style.get("tickFont") or self.font()
        return QFontMetricsF(font).height()


def _nice_step(at_least: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``at_least``."""
    power = 10.0 ** math.floor(math.log10(at_least))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= at_least)
