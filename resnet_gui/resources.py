"""Where the shipped resources (icons, the Fashion-MNIST sample) are on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parent.parent / "resources",  # a source checkout / editable install
    Path(sys.prefix) / "share" / "resnet-gui" / "resources",  # a regular install
)


def resources_dir() -> Path:
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    return _CANDIDATES[0]


def resource_path(name: str) -> Path:
    return resources_dir() / name
