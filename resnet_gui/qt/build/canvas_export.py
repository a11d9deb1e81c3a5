"""The Build canvas as a picture (PNG or SVG): the network as cards, for slides and papers.

The whole scene is drawn, whatever part of it the view shows and at whatever zoom, on white,
without the selection outline or a drop indicator (they describe the editing, not the
network). The cards' pixmap caches are off while drawing, so that an SVG holds lines and
text rather than pictures of them, and a PNG is drawn sharp at its own scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtWidgets import QGraphicsItem

from resnet_gui.qt.build.canvas import ArchitectureCanvas
from resnet_gui.qt.shared.picture_export import scene_picture


@contextmanager
def _as_published(canvas: ArchitectureCanvas) -> Iterator[None]:
    """No card selected, no drop indicator and no pixmap caches while drawing; the
    selection and the caches come back afterwards."""
    no_cache = QGraphicsItem.CacheMode.NoCache
    selected = [card for card in canvas.cards if card.selected]
    cached = [(item, item.cacheMode()) for item in canvas.scene().items()
              if item.cacheMode() != no_cache]
    canvas.indicator.hide()
    for card in selected:
        card.selected = False
        card.update()
    for item, _mode in cached:
        item.setCacheMode(no_cache)
    try:
        yield
    finally:
        for item, mode in cached:
            item.setCacheMode(mode)
        for card in selected:
            card.selected = True
            card.update()


def canvas_picture(canvas: ArchitectureCanvas, fmt: str) -> bytes:
    """The canvas's whole scene as ``fmt`` ("png" or "svg") bytes."""
    name = canvas.controller.arch.name
    with _as_published(canvas):
        return scene_picture(canvas.scene(), canvas.scene().sceneRect(), fmt,
                             f"{name} — resnet-gui")
