"""Drag-and-drop payloads between the palette and the canvas (JSON in custom MIME types)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from PySide6.QtCore import QMimeData

PART_MIME = "application/x-resnet-gui-part"  # a new part from the palette
MOVE_MIME = "application/x-resnet-gui-move"  # a stage or block dragged on the canvas

# Palette categories and the values each takes.
STEM, STAGE, BLOCK, HEAD, SHORTCUT = "stem", "stage", "block", "head", "shortcut"


@dataclass(frozen=True)
class Payload:
    """``new`` parts come from the palette (category + value); moves name a stage (and a block)."""

    category: str
    value: str = ""
    stage: int = -1
    block: int = -1
    is_move: bool = False


def part_mime(category: str, value: str = "") -> QMimeData:
    mime = QMimeData()
    mime.setData(PART_MIME, json.dumps({"category": category, "value": value}).encode())
    mime.setText(f"{category}: {value}" if value else category)
    return mime


def move_mime(stage: int, block: int = -1) -> QMimeData:
    mime = QMimeData()
    mime.setData(MOVE_MIME, json.dumps({"stage": stage, "block": block}).encode())
    return mime


def read_payload(mime: QMimeData | None) -> Payload | None:
    """The payload of a drag, or None for anything that is not ours (text, files...)."""
    if mime is None:
        return None
    try:
        if mime.hasFormat(PART_MIME):
            data = json.loads(bytes(mime.data(PART_MIME)).decode())
            return Payload(category=str(data["category"]), value=str(data.get("value", "")))
        if mime.hasFormat(MOVE_MIME):
            data = json.loads(bytes(mime.data(MOVE_MIME)).decode())
            block = int(data.get("block", -1))
            return Payload(category=BLOCK if block >= 0 else STAGE, stage=int(data["stage"]),
                           block=block, is_move=True)
    except (ValueError, KeyError, TypeError):
        return None
    return None
