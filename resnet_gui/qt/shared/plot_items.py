"""pyqtgraph items the tabs share."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal


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
