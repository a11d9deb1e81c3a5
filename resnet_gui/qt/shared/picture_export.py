"""Pictures for slides and papers: a pyqtgraph plot or a graphics scene as PNG or SVG.

Plots go through pyqtgraph's own exporters (``ImageExporter``, ``SVGExporter``), which know
how to draw its items without their on-screen clipping; other scenes (the Build canvas) are
rendered by Qt into a ``QImage`` or a ``QSvgGenerator``. Either way the picture is made in
memory and written with the project's atomic writer: never half a file, never a folder or a
device replaced.

The save dialog asks before replacing the file the user typed; where we add the suffix
ourselves ("loss" becomes "loss.png"), :func:`ask_picture_path` asks about that file too.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QGraphicsScene, QMessageBox, QWidget

from resnet_gui.errors import UserError
from resnet_gui.files import atomic_write_bytes

PICTURE_FILTER = "PNG image (*.png);;SVG drawing (*.svg)"
CSV_FILTER = "CSV table (*.csv)"
FORMATS = (".png", ".svg")
PNG_SCALE = 2  # pixels per screen pixel: sharp on slides and high-density screens


def picture_format(path: str | Path) -> str:
    """``"png"`` or ``"svg"`` from ``path``'s suffix; a UserError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{Path(path).name} is neither .png nor .svg; save the picture with "
                        "one of those suffixes")
    return suffix[1:]


def image_bytes(image: QImage) -> bytes:
    """``image`` encoded as PNG."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise UserError("the picture could not be encoded as PNG; try SVG instead")
    buffer.close()
    return bytes(data.data())


def plot_picture(item, fmt: str) -> bytes:
    """A pyqtgraph item (a PlotItem, or a widget's whole scene) as PNG or SVG bytes."""
    from pyqtgraph.exporters import ImageExporter, SVGExporter

    if fmt == "svg":
        _tolerate_closed_paths()
        return SVGExporter(item).export(toBytes=True)
    exporter = ImageExporter(item)
    width = int(exporter.parameters()["width"])
    exporter.parameters()["width"] = max(1, width * PNG_SCALE)  # the height follows
    return image_bytes(exporter.export(toBytes=True))


def explicit_closes(path_data: str) -> str:
    """SVG path data with each close ("Z") written as a line back to its subpath's start:
    the same shape, in the only commands pyqtgraph 0.14's exporter can read."""
    tokens, start = [], None
    for token in path_data.split():
        if token in ("Z", "z"):
            if start is not None:
                tokens.append(f"L{start}")
            continue
        if token[:1] in ("M", "m"):
            start = token[1:]
        tokens.append(token)
    return " ".join(tokens)


def _tolerate_closed_paths() -> None:
    """pyqtgraph 0.14's SVGExporter fails on the "Z" that Qt 6.10 and later write at the end
    of closed paths (pyqtgraph issue 3495, fixed upstream after 0.14.0): rewrite those
    closes before it reads the coordinates. Installed once; a fixed pyqtgraph never sees a
    "Z" here, since this runs before its own reading."""
    import sys

    module = sys.modules["pyqtgraph.exporters.SVGExporter"]
    original = module.correctCoordinates
    if getattr(original, "closes_rewritten", False):
        return

    def correct_coordinates(node, defs, item, options):
        for path in node.getElementsByTagName("path"):
            path.setAttribute("d", explicit_closes(path.getAttribute("d")))
        return original(node, defs, item, options)

    correct_coordinates.closes_rewritten = True
    module.correctCoordinates = correct_coordinates


def scene_picture(scene: QGraphicsScene, source: QRectF, fmt: str, title: str,
                  background: str = "white") -> bytes:
    """The ``source`` part of ``scene`` as PNG or SVG bytes, on ``background``."""
    background = QColor(background)
    size = source.size().toSize()
    if size.isEmpty():
        raise UserError("there is nothing to draw; add a layer first")
    if fmt == "svg":
        from PySide6.QtSvg import QSvgGenerator

        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        generator = QSvgGenerator()
        generator.setOutputDevice(buffer)
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setTitle(title)
        generator.setDescription("Drawn by resnet-gui")
        _paint(scene, source, generator, QRectF(0, 0, size.width(), size.height()), background)
        buffer.close()
        return bytes(data.data())
    image = QImage(QSize(size.width() * PNG_SCALE, size.height() * PNG_SCALE),
                   QImage.Format.Format_ARGB32)
    image.fill(background)
    _paint(scene, source, image, QRectF(image.rect()), background)
    return image_bytes(image)


def _paint(scene: QGraphicsScene, source: QRectF, device, target: QRectF,
           background: QColor) -> None:
    painter = QPainter(device)
    try:
        painter.setRenderHints(QPainter.RenderHint.Antialiasing
                               | QPainter.RenderHint.TextAntialiasing
                               | QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(target, background)
        scene.render(painter, target, source, Qt.AspectRatioMode.KeepAspectRatio)
    finally:
        painter.end()


def write_picture(path: str | Path, data: bytes) -> None:
    """Write an exported file atomically (a UserError names what went wrong)."""
    atomic_write_bytes(Path(path), data)


# -- asking where --------------------------------------------------------------------------


def ask_export_path(parent: QWidget, title: str, suggested: str, file_filter: str) -> str:
    """A path to write, or "" when cancelled. A typed name without a suffix gets the chosen
    filter's; if that file exists the user is asked before it is replaced (the dialog only
    asked about the name as typed)."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, suggested, file_filter)
    if not path or Path(path).suffix:
        return path
    suffix = chosen.rsplit("*", 1)[-1].rstrip(")").strip() if "*" in chosen else ""
    path += suffix
    if suffix and Path(path).exists():
        answer = QMessageBox.question(
            parent, title, f"{Path(path).name} already exists. Replace it?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return ""
    return path
