"""Architecture <-> JSON, with a schema version, read strictly against allowlists.

Nothing read from a file is ever imported or evaluated: kinds are checked against the
allowlists in :mod:`resnet_gui.arch.model`, unknown fields are refused with a suggestion, and
every error is an :class:`ArchitectureError` naming the field path.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from pathlib import Path
from typing import Any

from resnet_gui.errors import ArchitectureError
from resnet_gui.files import atomic_write_bytes  # noqa: F401 - imported from here too
from resnet_gui.arch.model import (
    MAX_BLOCKS_PER_STAGE,
    Architecture,
    Head,
    Shortcut,
    Stage,
    Stem,
    validate,
    validate_shortcut,
)

SCHEMA = "resnet-gui/architecture"

SCHEMA_VERSION = 1
# The largest architecture file read: real ones are a few kB, even 512-block stages a few MB.
MAX_FILE_BYTES = 64 * 2**20

_STEM_FIELDS = ("kind", "width", "kernel", "stride", "padding", "bias", "batch_norm", "max_pool")
_SHORTCUT_FIELDS = ("kind", "batch_norm", "bias")
_HEAD_FIELDS = ("pool", "dropout")
_STAGE_FIELDS = ("block", "num_blocks", "blocks", "width", "stride", "shortcut", "conv_bias")
_TOP_FIELDS = (
    "schema", "version", "name", "in_channels", "input_size", "num_classes",
    "stem", "stages", "head", "shortcut",
)


def _shortcut_dict(shortcut: Shortcut) -> dict[str, Any]:
    return {"kind": shortcut.kind, "batch_norm": shortcut.batch_norm, "bias": shortcut.bias}


def to_dict(arch: Architecture) -> dict[str, Any]:
    stages = []
    for stage in arch.stages:
        entry: dict[str, Any] = {}
        if stage.block is not None:
            entry["block"] = stage.block
            entry["num_blocks"] = stage.num_blocks
        else:
            entry["blocks"] = list(stage.blocks)
        entry.update(
            width=stage.width,
            stride=stage.stride,
            shortcut=_shortcut_dict(stage.shortcut),
            conv_bias=stage.conv_bias,
        )
        stages.append(entry)
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "name": arch.name,
        "in_channels": arch.in_channels,
        "input_size": list(arch.input_size),
        "num_classes": arch.num_classes,
        "stem": {name: getattr(arch.stem, name) for name in _STEM_FIELDS},
        "stages": stages,
        "head": {"pool": arch.head.pool, "dropout": arch.head.dropout},
    }


def dumps(arch: Architecture) -> str:
    return json.dumps(to_dict(arch), indent=2) + "\n"


def _check_fields(data: Any, allowed: tuple[str, ...], path: str) -> dict:
    if not isinstance(data, dict):
        raise ArchitectureError(f"must be an object, got {type(data).__name__}", path or "file")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(allowed)}"
            name = str(key) or "''"
            raise ArchitectureError(f"unknown field{hint}", f"{path}.{name}" if path else name)
    return data


def _pick(data: dict, cls, fields: tuple[str, ...], path: str):
    _check_fields(data, fields, path)
    return cls(**{name: data[name] for name in fields if name in data})


def _stage_from_dict(data: Any, path: str, default_shortcut: Shortcut) -> Stage:
    _check_fields(data, _STAGE_FIELDS, path)
    if "blocks" in data:
        if "block" in data or "num_blocks" in data:
            raise ArchitectureError(
                "give either 'blocks' (a list of kinds) or 'block' with 'num_blocks', not both",
                path,
            )
        blocks = data["blocks"]
        if not isinstance(blocks, list):
            raise ArchitectureError(f"must be a list of block kinds, got {blocks!r}", f"{path}.blocks")
        blocks = tuple(blocks)
    else:
        for required in ("block", "num_blocks"):
            if required not in data:
                raise ArchitectureError("missing; every stage names its block kind and count",
                                        f"{path}.{required}")
        count = data["num_blocks"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise ArchitectureError(f"must be a whole number, got {count!r}", f"{path}.num_blocks")
        if not 1 <= count <= MAX_BLOCKS_PER_STAGE:
            raise ArchitectureError(
                f"must be between 1 and {MAX_BLOCKS_PER_STAGE}, got {count}", f"{path}.num_blocks"
            )
        blocks = (data["block"],) * count
    if "width" not in data:
        raise ArchitectureError("missing; every stage has a width", f"{path}.width")
    shortcut = default_shortcut
    if "shortcut" in data:
        shortcut = _pick(data["shortcut"], Shortcut, _SHORTCUT_FIELDS, f"{path}.shortcut")
    return Stage(
        blocks=blocks,
        width=data["width"],
        stride=data.get("stride", 1),
        shortcut=shortcut,
        conv_bias=data.get("conv_bias", False),
    )


def from_dict(data: Any) -> Architecture:
    """Build and validate an architecture from parsed JSON."""
    if not isinstance(data, dict) or "stages" not in data:
        raise ArchitectureError(
            "this file is not a resnet-gui architecture (no 'stages' list); "
            "save one from the app or with 'resnet-gui export PRESET --format json'"
        )
    _check_fields(data, _TOP_FIELDS, "")
    if "schema" in data and data["schema"] != SCHEMA:
        raise ArchitectureError(f"expected {SCHEMA!r}, got {data['schema']!r}", "schema")
    version = data.get("version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArchitectureError(
            f"must be a whole number such as {SCHEMA_VERSION}, got {version!r}", "version"
        )
    if version > SCHEMA_VERSION:
        raise ArchitectureError(
            f"this file has schema version {version!r}, newer than this resnet-gui "
            f"understands ({SCHEMA_VERSION}); update resnet-gui",
            "version",
        )
    default_shortcut = Shortcut()
    if "shortcut" in data:
        default_shortcut = _pick(data["shortcut"], Shortcut, _SHORTCUT_FIELDS, "shortcut")
        validate_shortcut(default_shortcut, "shortcut")  # even where every stage has its own
    stages_data = data["stages"]
    if not isinstance(stages_data, list):
        raise ArchitectureError(f"must be a list of stages, got {type(stages_data).__name__}", "stages")
    stages = tuple(
        _stage_from_dict(stage, f"stages[{i}]", default_shortcut) for i, stage in enumerate(stages_data)
    )
    input_size = data.get("input_size", [224, 224])
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        input_size = [input_size, input_size]
    if not isinstance(input_size, list) or len(input_size) != 2:
        raise ArchitectureError(f"must be [height, width], got {input_size!r}", "input_size")
    arch = Architecture(
        name=data.get("name", "custom"),
        in_channels=data.get("in_channels", 3),
        input_size=tuple(input_size),
        num_classes=data.get("num_classes", 1000),
        stem=_pick(data.get("stem", {}), Stem, _STEM_FIELDS, "stem"),
        stages=stages,
        head=_pick(data.get("head", {}), Head, _HEAD_FIELDS, "head"),
    )
    return validate(arch)


def loads(text: str, source: str = "architecture") -> Architecture:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ArchitectureError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}; fix the file or save it again from the app"
        ) from None
    except RecursionError:
        raise ArchitectureError(
            f"{source} nests its values too deeply to be an architecture; "
            "save one from the app or with 'resnet-gui export PRESET --format json'"
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise ArchitectureError(
            f"{source} holds a number thousands of digits long, far beyond any architecture "
            "setting; fix the file or save it again from the app"
        ) from None
    return from_dict(data)


def load_file(path: str | os.PathLike) -> Architecture:
    path = Path(path)
    try:
        info = path.stat()  # before opening: opening a pipe would wait for a writer
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise ArchitectureError(f"{path} is a device or pipe, not a file; choose a .json "
                                    "file saved by resnet-gui")
        if info.st_size > MAX_FILE_BYTES:
            raise ArchitectureError(f"{path} is {info.st_size / 2**20:,.0f} MiB, far larger "
                                    "than any architecture file; choose a .json file saved by "
                                    "resnet-gui")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ArchitectureError(f"no file at {path}; check the path") from None
    except IsADirectoryError:
        raise ArchitectureError(f"{path} is a folder, not an architecture file; choose a .json file saved by resnet-gui") from None
    except OSError as error:
        raise ArchitectureError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # some editors start UTF-8 files with a BOM
    except UnicodeDecodeError:
        raise ArchitectureError(
            f"{path} is not a text file; choose a .json architecture saved by resnet-gui"
        ) from None
    return loads(text, source=str(path))


def save_file(arch: Architecture, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, dumps(validate(arch)).encode("utf-8"))
