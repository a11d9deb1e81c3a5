"""Class activation maps (issue 12.4): where a layer's maps pushed the network towards a
class, as a heatmap over the input image.

:class:`CamView` sits beside the feature maps: Grad-CAM at the chosen layer for the predicted
class (the probe carries it) or a class the user picks (computed on the idle network).
:class:`MistakeView` answers the gallery's "why did it say Sandal?": for a test image, the map
of the class it predicted beside the map of its true class. Both only draw what they are
given; :mod:`resnet_gui.qt.inspect.lenses` decides what is computed and where.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

HEAT_COLOURS = pg.colormap.get("inferno")
HEAT_OPACITY = 0.7  # of the hottest pixel; the coldest are transparent


def heat_overlay(heat: np.ndarray) -> np.ndarray:
    """A [0, 1] heatmap (H, W) as RGBA bytes whose opacity grows with the heat, so the image
    shows through where the class drew nothing."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, np.float32)), 0.0, 1.0)
    colours = HEAT_COLOURS.map(heat.ravel(), mode="byte").reshape(*heat.shape, -1)[..., :3]
    alpha = (255 * HEAT_OPACITY * heat).astype(np.uint8)[..., None]
    return np.ascontiguousarray(np.concatenate([colours, alpha], axis=-1))


def grey_image(image: np.ndarray) -> np.ndarray:
    """A network input (C, H, W) as a grey (H, W) picture stretched to [0, 1]."""
    array = np.asarray(image, np.float32)
    array = array.mean(axis=0) if array.ndim == 3 else array
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


class CamPicture:
    """One image with a heatmap over it, in a view box of a graphics layout."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int, title: str = "") -> None:
        self.title = layout.addLabel(title, row=row, col=col, color="#333")
        self.box = layout.addViewBox(row=row + 1, col=col, lockAspect=True, invertY=True,
                                     enableMouse=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image_item)
        self.box.addItem(self.heat_item)
        self.heat: np.ndarray | None = None

    def show(self, image: np.ndarray, heat: np.ndarray, title: str) -> None:
        self.heat = np.asarray(heat, np.float32)
        self.image_item.setImage(grey_image(image), levels=(0.0, 1.0), autoLevels=False)
        self.heat_item.setImage(heat_overlay(self.heat), autoLevels=False)
        self.title.setText(title)
        self.box.autoRange(padding=0.02)

    def clear(self, title: str = "") -> None:
        self.heat = None
        self.image_item.clear()
        self.heat_item.clear()
        self.title.setText(title)


class CamView(QWidget):
    """``camView``: Grad-CAM of the chosen layer for one class over the shown image."""

    class_chosen = Signal(object)  # a class index, or None for the predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("camView")
        self.cam = None  # the ClassActivationMap shown
        self.class_combo = QComboBox()
        self.class_combo.setObjectName("camClassCombo")
        self.class_combo.setToolTip("The class whose evidence the heatmap shows")
        self.set_class_names(())
        self.class_combo.currentIndexChanged.connect(
            lambda _index: self.class_chosen.emit(self.target_class))
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("camGraphics")
        self.graphics.setBackground("w")
        self.picture = CamPicture(self.graphics.ci, 0, 0)
        self.info_label = QLabel("Grad-CAM shows where the chosen layer's maps pushed the "
                                 "network towards a class.")
        self.info_label.setObjectName("camInfoLabel")
        self.info_label.setWordWrap(True)
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("<b>Grad-CAM</b> for"))
        chooser.addWidget(self.class_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(chooser)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.info_label)

    def set_class_names(self, names: tuple[str, ...]) -> None:
        keep = self.target_class if self.class_combo.count() else None
        self.class_names = tuple(names)
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("the predicted class", None)
        for index, name in enumerate(self.class_names):
            self.class_combo.addItem(name, index)
        found = self.class_combo.findData(keep)
        self.class_combo.setCurrentIndex(max(found, 0))
        self.class_combo.blockSignals(False)

    @property
    def target_class(self) -> int | None:
        return self.class_combo.currentData()

    def choose_class(self, target: int | None) -> None:
        """Pick a class as a user would (None: the predicted class)."""
        self.class_combo.setCurrentIndex(max(self.class_combo.findData(target), 0))

    def show_cam(self, cam, image: np.ndarray, where: str) -> None:
        """Show ``cam`` (a ClassActivationMap) over ``image`` (C, H, W); ``where`` says which
        network it comes from."""
        self.cam = cam
        target, predicted = self._name(cam.target_class), self._name(cam.predicted)
        self.picture.show(image, cam.heatmap, f"{target} at {cam.layer}")
        empty = "" if cam.heatmap.max() > 0 else " Nothing in these maps pushed towards it."
        self.info_label.setText(
            f"Grad-CAM of <b>{target}</b> at <b>{cam.layer}</b>: p({target}) = "
            f"{100 * cam.score:.1f} %, predicted {predicted} · {where}.{empty}")

    def show_message(self, text: str) -> None:
        self.info_label.setText(text)

    def clear(self, text: str) -> None:
        self.cam = None
        self.picture.clear()
        self.info_label.setText(text)

    def _name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)


class MistakeView(QWidget):
    """``mistakeView``: for a test image of the gallery, Grad-CAM of the class the network
    said beside Grad-CAM of its true class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mistakeView")
        self.cams: tuple = ()  # the ClassActivationMaps shown: (said, truth)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.said = CamPicture(self.graphics.ci, 0, 0)
        self.truth = CamPicture(self.graphics.ci, 0, 1)
        self.info_label = QLabel("Click an image of the gallery to see why the network said "
                                 "what it said.")
        self.info_label.setObjectName("mistakeInfoLabel")
        self.info_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info_label)
        layout.addWidget(self.graphics, 1)

    def show_maps(self, image: np.ndarray, said, truth, names: tuple[str, ...], index: int,
                  where: str) -> None:
        """``said`` and ``truth`` are ClassActivationMaps of the predicted and true class."""
        self.cams = (said, truth)
        def name(label: int) -> str:
            return names[label] if 0 <= label < len(names) else str(label)

        self.said.show(image, said.heatmap, f"why {name(said.target_class)}? "
                       f"(p = {100 * said.score:.0f} %)")
        self.truth.show(image, truth.heatmap, f"where {name(truth.target_class)}? "
                        f"(p = {100 * truth.score:.0f} %)")
        verdict = ("right" if said.target_class == truth.target_class else
                   f"wrong: it is {name(truth.target_class)}")
        self.info_label.setText(
            f"Test image #{index}: the network says <b>{name(said.target_class)}</b> ({verdict})."
            f" Left: where the maps of {said.layer} pushed towards what it said; right: towards "
            f"the true class · Grad-CAM, {where}.")

    def show_message(self, text: str) -> None:
        self.info_label.setText(text)
