"""Test images for the inspect views: thumbnails and strips of them."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from resnet_gui.qt.shared.test_images import TestImages


def image_to_qimage(image: np.ndarray) -> QImage:
    """A (C, H, W) or (H, W) uint8 or float image as a QImage (grey or RGB); floats are
    stretched to their own range, as a normalised network input has no fixed one."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
        low, high = np.nanmin(array), np.nanmax(array)
        scale = 255.0 / (high - low) if high > low else 0.0
        array = np.clip((array - low) * scale, 0, 255).astype(np.uint8)
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    if array.ndim == 2:
        qimage = QImage(array.data, width, height, array.strides[0], QImage.Format.Format_Grayscale8)
    else:
        qimage = QImage(array.data, width, height, array.strides[0], QImage.Format.Format_RGB888)
    return qimage.copy()  # own the pixels: the numpy buffer may go away


def thumbnail(image: np.ndarray, size: int) -> QPixmap:
    return QPixmap.fromImage(image_to_qimage(image)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


INDEX_ROLE = Qt.ItemDataRole.UserRole


class ImageStrip(QListWidget):
    """A wrapping or single-row strip of test-image thumbnails; each item keeps its index."""

    def __init__(self, size: int = 48, wrap: bool = False, caption_lines: int = 0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_size = size
        if caption_lines:  # cells wide enough for class names under each thumbnail
            line = self.fontMetrics().height()
            self.setGridSize(QSize(size + 56, size + 8 + caption_lines * line))
            self.setWordWrap(True)
            self.setUniformItemSizes(False)  # captions differ: size each one
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(size, size))
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(not caption_lines)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(wrap)
        if not wrap:  # one row that scrolls sideways
            self.setFixedHeight(size + 26)
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSpacing(2)

    def set_images(self, images: TestImages | None, indices, captions=None,
                   tooltips=None) -> None:
        self.clear()
        if images is None:
            return
        for n, index in enumerate(indices):
            index = int(index)
            item = QListWidgetItem(QIcon(thumbnail(images.images[index], self.thumb_size)),
                                   captions[n] if captions is not None else "")
            item.setData(INDEX_ROLE, index)
            item.setToolTip(tooltips[n] if tooltips is not None
                            else f"test image #{index}: {images.class_name(int(images.labels[index]))}")
            self.addItem(item)

    def shown_indices(self) -> list[int]:
        return [self.item(i).data(INDEX_ROLE) for i in range(self.count())]

    def select_index(self, index: int) -> bool:
        for row in range(self.count()):
            if self.item(row).data(INDEX_ROLE) == index:
                self.setCurrentRow(row)
                return True
        return False
