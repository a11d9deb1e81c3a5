"""ARCH on the command line and in the window: a preset name or an architecture JSON file.

One reading for every entry point (``summary``, ``export``, ``train`` and the window), so that
each accepts the same arguments and refuses the others with the same sentence:

1. an existing file is an architecture file; a resnet-gui checkpoint (a trained network) is
   recognised by its first bytes, before anything reads it as JSON: the entry points that take
   one (``summary``, ``export``, ``train``, ``predict``) check for it first, and everywhere else
   it is refused with one sentence;
2. a preset name builds that preset;
3. a path that is not a file (it has a folder separator or ends in .json) is read as a file,
   which says that nothing is there, or that it is a folder;
4. anything else is a mistyped preset: the error suggests the closest name.
"""

from __future__ import annotations

import os
from pathlib import Path

from resnet_gui.errors import ArchitectureError
from resnet_gui.arch.datasets import Dataset
from resnet_gui.arch.model import Architecture, validate
from resnet_gui.arch.presets import PRESETS, build_preset, get_preset
from resnet_gui.arch.recipe import RECIPE_PRESETS
from resnet_gui.arch.serialize import load_file


# torch.save writes a zip archive; before PyTorch 1.6 it wrote a bare pickle (protocol 2+).
_CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def is_checkpoint_file(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` is a regular file written by ``torch.save`` (a checkpoint or a
    state dict), told from its first bytes without importing torch. JSON never starts so."""
    try:
        if not os.path.isfile(name_or_path):
            return False
        with open(name_or_path, "rb") as handle:
            head = handle.read(4)
    except (OSError, ValueError):  # unreadable, or a name the file system cannot hold
        return False
    return head.startswith(_CHECKPOINT_MAGIC)


def looks_like_path(text: str) -> bool:
    separators = {"/", os.sep, os.altsep} - {None}
    return any(sep in text for sep in separators) or text.lower().endswith(".json")


def locate_architecture(
    name_or_path: str,
    *,
    in_channels: int | None = None,
    num_classes: int | None = None,
    input_size: tuple[int, int] | None = None,
    dataset: Dataset | None = None,
) -> tuple[Architecture, Path | None]:
    """The architecture ``name_or_path`` names, and its file (None for a preset).

    ``in_channels``, ``num_classes`` and ``input_size`` replace the architecture's own, file
    or preset; ``dataset`` sets a preset's channels and classes where those are not given (a
    file keeps its own). Raises :class:`ArchitectureError` with one sentence.
    """
    if not name_or_path.strip():  # Path("") is the current folder: say what is missing
        raise ArchitectureError("ARCH is empty; give a preset name (see 'resnet-gui presets') "
                                "or an architecture JSON file")
    path = Path(name_or_path)
    # os.path, not Path: False, not OSError, for a name too long for the file system.
    if os.path.isfile(path) or looks_like_path(name_or_path):
        if os.path.isdir(path):
            raise ArchitectureError(f"{name_or_path} is a folder; give an architecture JSON "
                                    "file in it, or a preset name")
        if is_checkpoint_file(path):
            raise ArchitectureError(
                f"{name_or_path} is a trained checkpoint, not an architecture file; write its "
                f"architecture with 'resnet-gui export {name_or_path} --format json --out "
                "ARCH.json'")
        arch = load_file(path)  # says "no file at ..." where nothing is there
        changes = {key: value for key, value in (("in_channels", in_channels),
                                                 ("num_classes", num_classes),
                                                 ("input_size", input_size)) if value is not None}
        return (validate(arch.replace(**changes)) if changes else arch), path
    if name_or_path in RECIPE_PRESETS and name_or_path not in PRESETS:
        raise ArchitectureError(
            f"{name_or_path!r} names a training recipe, not an architecture; give a preset "
            f"(see 'resnet-gui presets') or a JSON file, and --recipe {name_or_path} to "
            "resnet-gui train")
    preset = get_preset(name_or_path)  # an unknown name: suggests the closest one
    if dataset is not None:
        in_channels = dataset.channels if in_channels is None else in_channels
        num_classes = dataset.classes if num_classes is None else num_classes
    return build_preset(preset.name, in_channels, num_classes, input_size), None


def resolve_architecture(name_or_path: str, **options) -> Architecture:
    """:func:`locate_architecture` without the file."""
    return locate_architecture(name_or_path, **options)[0]
