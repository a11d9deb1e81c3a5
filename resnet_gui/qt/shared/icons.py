"""Icons of the parts, drawn as SVG files in resources/icons."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon

from resnet_gui.resources import resource_path


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """``icon("block-basic")``; an empty icon if the file is missing (never an error)."""
    path = resource_path(f"icons/{name}.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


def block_icon(kind: str) -> QIcon:
    return icon(f"block-{kind}")


def shortcut_icon(kind: str | None) -> QIcon:
    return icon(f"shortcut-{kind or 'identity'}")
