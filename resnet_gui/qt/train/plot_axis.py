"""The Train tab's value axis: labels that never overlap, however short the plot."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

from resnet_gui.qt.train.plot_ranges import TICK_STEPS, nice_ceiling, nice_floor


class ReadableAxis(pg.AxisItem):
    """A value axis whose labels never overlap: on a short plot (the learning-rate plot at
    a small window) pyqtgraph's spacing put six labels in 50 pixels, one over another."""

    LINES_PER_LABEL = 1.6

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph naming)
        levels = super().tickSpacing(minVal, maxVal, size)
        if self.logMode or not levels:
            return levels
        room = max(1, int(size // (self.LINES_PER_LABEL * self._line_height())))
        if abs(maxVal - minVal) / levels[0][0] <= room:
            return levels
        span = abs(maxVal - minVal)
        step = nice_ceiling(span / room, TICK_STEPS)
        if step > span:  # a lone "0" would say nothing of the scale: keep a second label
            step = nice_floor(span)
        return [(step, 0)]  # major ticks only

    def _line_height(self) -> float:
        font = self.style.get("tickFont") or self.font()
        return QFontMetricsF(font).height()
