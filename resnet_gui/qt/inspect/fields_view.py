"""Receptive fields in Inspect (issue 12.3): click a unit of a feature map to see which input
pixels it can see (the theoretical field, a box clipped to the image, exact from the
architecture) and which ones it actually depends on at the current weights (the effective
field, |dy/dx|, Luo et al. 2016, as a heatmap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

from resnet_gui.qt.inspect.cam_view import grey_image
from resnet_gui.qt.inspect.feature_maps import tile_at
from resnet_gui.qt.shared.training_worker import MOSAIC_PAD, ProbeView

BOX_COLOUR = "#ff7f0e"
ERF_COLOURS = pg.colormap.get("magma")
HINT = ("Click a unit of the feature maps to see its receptive field: the input pixels it "
        "can see (box) and those it depends on at the current weights (heatmap).")


@dataclass(frozen=True)
class Unit:
    """One unit of a layer's maps: channel, row and column."""

    layer: str
    channel: int
    row: int
    col: int


def unit_at(x: float, y: float, probe: ProbeView) -> Unit | None:
    """The unit under mosaic pixel (x, y), or None for the padding between tiles."""
    channel = tile_at(x, y, probe)
    if channel is None:
        return None
    height, width = probe.tile_shape
    tile_row, tile_col = divmod(channel, probe.columns)
    row = int(y - tile_row * (height + MOSAIC_PAD))
    col = int(x - tile_col * (width + MOSAIC_PAD))
    return Unit(probe.layer, channel, min(max(row, 0), height - 1), min(max(col, 0), width - 1))


def box_rect(box: tuple[int, int, int, int]) -> QRectF:
    """(top, left, bottom, right) inclusive pixels as a rectangle around those pixels."""
    top, left, bottom, right = box
    return QRectF(left - 0.5, top - 0.5, right - left + 1, bottom - top + 1)


class FieldsView(QWidget):
    """``fieldsView``: the input with the unit's theoretical field, beside its effective
    field as a heatmap with the same box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fieldsView")
        self.unit: Unit | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.heat: np.ndarray | None = None
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("fieldsGraphics")
        self.graphics.setBackground("w")
        self.input_title = self.graphics.addLabel("theoretical field", row=0, col=0,
                                                  color="#333")
        self.heat_title = self.graphics.addLabel("effective field |∂y/∂x|", row=0, col=1,
                                                 color="#333")
        self.input_box = self._view_box(1, 0)
        self.heat_box = self._view_box(1, 1)
        self.input_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.input_box.addItem(self.input_item)
        self.heat_box.addItem(self.heat_item)
        self.field_rects = [self._rect(self.input_box), self._rect(self.heat_box)]
        self.info_label = QLabel(HINT)
        self.info_label.setObjectName("fieldInfoLabel")
        self.info_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Receptive field</b>"))
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.info_label)

    def _view_box(self, row: int, col: int) -> pg.ViewBox:
        return self.graphics.addViewBox(row=row, col=col, lockAspect=True, invertY=True,
                                        enableMouse=False)

    @staticmethod
    def _rect(box: pg.ViewBox) -> QGraphicsRectItem:
        rect = QGraphicsRectItem()
        rect.setPen(pg.mkPen(BOX_COLOUR, width=2, cosmetic=True))
        rect.setVisible(False)
        rect.setZValue(10)
        box.addItem(rect)
        return rect

    # -- inputs --------------------------------------------------------------------------

    def show_unit(self, unit: Unit, image: np.ndarray, field, box) -> None:
        """The unit's theoretical field on ``image`` (C, H, W): ``field`` is its Field (None
        where unknown), ``box`` the clipped (top, left, bottom, right) or None."""
        self.unit, self.box, self.heat = unit, box, None
        self.input_item.setImage(grey_image(image), levels=(0.0, 1.0), autoLevels=False)
        self.heat_item.clear()
        for rect in self.field_rects:
            rect.setVisible(box is not None)
            if box is not None:
                rect.setRect(box_rect(box))
        self.input_box.autoRange(padding=0.02)
        self.heat_box.autoRange(padding=0.02)
        self.input_title.setText(f"{unit.layer} channel {unit.channel}, unit ({unit.row}, "
                                 f"{unit.col})")
        self.info_label.setText(self._describe(unit, image.shape[-2:], field, box))

    def show_effective(self, heat: np.ndarray, note: str = "") -> None:
        self.heat = np.asarray(heat, np.float32)
        if not self.heat.any():  # a black square would look like a failure
            note = (f"{note} This unit is 0 for this image (a ReLU turned it off), so no "
                    "input pixel changes it: click a brighter unit.").strip()
        self.heat_item.setImage(self.heat, levels=(0.0, 1.0), autoLevels=False,
                                lut=ERF_COLOURS.getLookupTable(nPts=256))
        self.heat_box.autoRange(padding=0.02)
        if note:
            self.info_label.setText(f"{self.info_label.text()} {note}")

    def show_message(self, text: str) -> None:
        self.info_label.setText(text)

    def clear(self, text: str = HINT) -> None:
        self.unit, self.box, self.heat = None, None, None
        self.input_item.clear()
        self.heat_item.clear()
        for rect in self.field_rects:
            rect.setVisible(False)
        self.input_title.setText("theoretical field")
        self.info_label.setText(text)

    @staticmethod
    def _describe(unit: Unit, shape, field, box) -> str:
        height, width = int(shape[0]), int(shape[1])
        if field is None:
            return (f"The theoretical field of {unit.layer} is not known (the analysis has no "
                    "field for it).")
        rows, cols = field.size
        jump_rows, jump_cols = field.jump
        size = f"{rows}" if rows == cols else f"{rows}×{cols}"
        jump = f"{jump_rows}" if jump_rows == jump_cols else f"{jump_rows}×{jump_cols}"
        if box is None:
            where = "lies wholly in the padding around the image"
        else:
            top, left, bottom, right = box
            where = (f"sees rows {top}–{bottom} and columns {left}–{right} of the "
                     f"{height}×{width} input")
        return (f"Units of {unit.layer} see {size} px (padding included), {jump} px apart; "
                f"this one {where}. The heatmap is |∂y/∂x| at the current weights, "
                "scaled to its maximum.")
