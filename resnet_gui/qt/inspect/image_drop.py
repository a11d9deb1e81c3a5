"""An image file dropped on the Inspect tab (issue 10): its prediction, with the same
preprocessing as ``resnet-gui predict`` (the network's record of how training prepared its
images), its feature maps and its class activation map.

:func:`image_files` reads a drag's file names; :func:`look_at_image_file` is the job run on
the idle network; :class:`PredictionView` shows the most probable classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from resnet_gui.qt.shared.training_worker import ProbeView, prepare_probe

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm"}
TOP = 5  # classes shown, as predict's default


def image_files(mime: QMimeData) -> list[Path]:
    """The local image files a drag carries (by their suffix), in order."""
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]


@dataclass(frozen=True)
class ImageLook:
    """What the Inspect tab shows for an image file."""

    path: Path
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first
    probe: ProbeView  # its maps at the chosen layer, with the block views


def look_at_image_file(network: Any, path: Path, layer: str) -> ImageLook:
    """In the idle jobs' thread: read ``path`` as the network's dataset holds its images,
    classify it as ``predict`` does, and probe ``layer`` (``network``: a session IdleNetwork)."""
    from resnet_gui.engine.explain import probe_prepared_image
    from resnet_gui.engine.trained import top_classes

    images = network.preprocessing.read(path)
    top = top_classes(network.model, network.preprocessing, images, TOP)
    probe = probe_prepared_image(network.model, network.prepare(images), layer)
    return ImageLook(path, top, prepare_probe(probe, origin=path.name))


class PredictionView(QWidget):
    """``imagePrediction``: the dropped image, its name and its most probable classes."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imagePrediction")
        self.look: ImageLook | None = None
        self.thumbnail = QLabel()
        self.thumbnail.setFixedSize(72, 72)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.classes = QLabel("")
        self.classes.setObjectName("imagePredictionClasses")
        self.classes.setTextFormat(Qt.TextFormat.RichText)
        close = QPushButton("Back to test images")
        close.setObjectName("closeImageButton")
        close.setToolTip("Show the test images again")
        close.clicked.connect(self.closed)
        text = QVBoxLayout()
        text.addWidget(self.title)
        text.addWidget(self.classes)
        text.addWidget(close, 0, Qt.AlignmentFlag.AlignLeft)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 6)
        layout.addWidget(self.thumbnail, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(text, 1)
        self.setVisible(False)

    def show_look(self, look: ImageLook, where: str) -> None:
        self.look = look
        pixmap = QPixmap(str(look.path))
        if not pixmap.isNull():
            self.thumbnail.setPixmap(pixmap.scaled(
                72, 72, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        self.title.setText(f"<b>{look.path.name}</b> · {where}")
        self.title.setToolTip(str(look.path))
        rows = "".join(
            f"<tr><td>{name}&nbsp;</td><td align='right'>{100 * p:.1f}&nbsp;%&nbsp;</td>"
            f"<td><table cellspacing='0' cellpadding='0'><tr><td bgcolor='#1f77b4' "
            f"width='{max(1, round(120 * p))}' height='9'></td></tr></table></td></tr>"
            for name, p in look.top)
        self.classes.setText(f"<table cellspacing='1'>{rows}</table>")
        self.setVisible(True)

    def clear(self) -> None:
        self.look = None
        self.setVisible(False)
