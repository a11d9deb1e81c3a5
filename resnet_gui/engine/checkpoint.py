"""Checkpoints that survive crashes and full disks, load with ``weights_only=True``, and say in
words why they do not fit another architecture.

A checkpoint is one ``torch.save`` dict of tensors, numbers, strings, lists and dicts (no
pickled classes): model, optimizer, scheduler and scaler states, epoch, position in the epoch,
step, RNG states, the epoch's data order, the architecture JSON and the recipe, and a sha256
checksum of all of it, checked on load (a flipped bit is "damaged", not a silent resume).
Writing goes to a temp file in the same folder (flush, fsync), the current file is kept as
``NAME.prev.pt``, then the temp file replaces it: at every instant a complete checkpoint exists.
A symbolic link is written through (see :mod:`resnet_gui.files`): the ``.prev`` file then sits
beside the link's target.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui.errors import ArchitectureError, CheckpointError, FileWriteError
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.serialize import loads
from resnet_gui.files import (
    atomic_write_bytes,
    create_temporary,
    existing_kind,
    previous_path,
    remove_stale_temporaries,
    write_target,
)

FORMAT = "resnet-gui/checkpoint"
VERSION = 1
# sha256 of everything else in the checkpoint (see state_digest); older files have none.
CHECKSUM_KEY = "checksum"


def _keep_previous(path: Path) -> None:
    """Make ``NAME.prev.pt`` the current checkpoint (a hard link where possible: no copy)."""
    previous = previous_path(path)
    try:
        if os.path.samefile(path, previous):
            return  # a save cut short left them one file: it already is the previous one
    except OSError:
        pass
    if existing_kind(previous) is not None:
        raise OSError(errno.EEXIST, f"{previous} is {existing_kind(previous)}, not a "
                      "checkpoint, so the current checkpoint cannot be kept there")
    fd, staging = create_temporary(path.parent, previous.name)
    os.close(fd)
    try:
        os.unlink(staging)
        try:
            os.link(path, staging)
        except OSError:  # no hard links here (some network and FAT file systems)
            shutil.copy2(path, staging)
        os.replace(staging, previous)
    finally:
        # Also after a replace that did nothing (both names one file already).
        with contextlib.suppress(OSError):
            os.unlink(staging)


def write_checkpoint_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, keeping the file it replaces as ``.prev``."""
    path = Path(path)
    intact = (f"the previous checkpoint {path} is intact" if os.path.exists(path)
              else "no earlier checkpoint existed")
    target = write_target(path)
    remove_stale_temporaries(target.parent, previous_path(target).name)
    try:
        atomic_write_bytes(path, data, before_replace=_keep_previous)
    except FileWriteError as problem:
        if problem.before_writing:
            raise CheckpointError(f"cannot write the checkpoint {path}: {problem.reason}; "
                                  "choose another folder with --checkpoint") from None
        raise CheckpointError(f"could not save the checkpoint {path}: {problem.reason}; "
                              f"{intact}; free some space or choose another folder") from None


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Save ``payload`` with its checksum (see :func:`state_digest`)."""
    state = {"format": FORMAT, "version": VERSION, **payload}
    state[CHECKSUM_KEY] = state_digest(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_checkpoint_bytes(path, buffer.getvalue())


def state_digest(state: dict[str, Any]) -> str:
    """``sha256:`` and the hex digest of every value in ``state`` but the checksum itself:
    each tensor's dtype, shape and bytes, each number, string and container, in a fixed
    order. A flipped bit anywhere in the weights, the optimizer state or the training
    position changes it."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in state.items() if key != CHECKSUM_KEY})
    return "sha256:" + digest.hexdigest()


def _feed(digest: "hashlib._Hash", value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)};".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        digest.update(f"S{len(encoded)};".encode())
        digest.update(encoded)
    elif isinstance(value, float):
        digest.update(f"F{value.hex()};".encode())
    else:  # None, bool, int (and anything else torch.load may return, by its repr)
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def damaged(path: str | os.PathLike, problem: str) -> CheckpointError:
    """``path`` ``problem`` (for example "is damaged (EOFError)"), and what to do instead."""
    previous = previous_path(path)
    hint = f"try the previous one, {previous}" if previous.is_file() else "start a new run"
    return CheckpointError(f"{path} {problem}; {hint}")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's dict, read with ``weights_only=True`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of a .pt file "
                              "written by resnet-gui train --checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged or foreign file
        raise damaged(path, f"is damaged or not a resnet-gui checkpoint "
                      f"({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a resnet-gui checkpoint; give a file written by "
                              "resnet-gui train --checkpoint")
    version = checkpoint.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise damaged(path, f"is damaged: its version is {version!r}, not a whole number")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer resnet-gui (checkpoint version "
                              f"{checkpoint['version']}); update resnet-gui to read it")
    stored = checkpoint.get(CHECKSUM_KEY)
    if stored is not None and (not isinstance(stored, str) or stored != state_digest(checkpoint)):
        raise damaged(path, "is damaged: its contents do not match the checksum saved with "
                      "them")
    return checkpoint


@dataclass(frozen=True)
class SavedProgress:
    """How far the run in a checkpoint got, read without loading its tensors."""

    epoch: int
    epochs: int
    step: int
    position: int

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs and self.position == 0


def progress_of(checkpoint: dict[str, Any], path: str | os.PathLike) -> SavedProgress:
    """How far a loaded checkpoint's run got; fields missing or of the wrong kind are
    "is damaged" (the trainer checks the rest of the state when it restores it)."""
    try:
        recipe = checkpoint["recipe"]
        values = (checkpoint["epoch"], recipe["epochs"], checkpoint["step"],
                  checkpoint.get("position", 0))
        if any(isinstance(value, bool) or not isinstance(value, int) for value in values):
            raise TypeError("not a whole number")
        if min(values) < 0:
            raise ValueError("a negative count")
    except (KeyError, TypeError, ValueError) as error:
        raise damaged(path, "is damaged: its training state cannot be restored "
                      f"({type(error).__name__})") from None
    return SavedProgress(*values)


def saved_progress(path: str | os.PathLike) -> SavedProgress | None:
    """The progress of the resnet-gui checkpoint at ``path``, read without its tensors; None
    when the file is not one (or is too damaged to tell)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
            return None
        return progress_of(checkpoint, path)
    except Exception:  # a foreign or damaged file: torch raises many kinds
        return None


def checkpoint_architecture(checkpoint: dict[str, Any], path: str = "checkpoint") -> Architecture:
    try:
        return loads(checkpoint["architecture"], source=str(path))
    except (KeyError, TypeError, ArchitectureError) as error:
        raise CheckpointError(f"{path} holds no readable architecture ({error}); it cannot be "
                              "loaded") from None


# -- differences in words ----------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}{'es' if word.endswith('s') else 's'}"


def architecture_differences(saved: Architecture, current: Architecture) -> list[str]:
    """What differs between two architectures, as short phrases ("there" = the checkpoint)."""
    found: list[str] = []
    if saved.in_channels != current.in_channels:
        found.append(f"it takes {_plural(saved.in_channels, 'input channel')} there but "
                     f"{current.in_channels} here")
    if saved.num_classes != current.num_classes:
        found.append(f"it predicts {_plural(saved.num_classes, 'class')} there but "
                     f"{current.num_classes} here")
    for name in ("kind", "width", "kernel", "stride", "padding", "bias", "batch_norm",
                 "max_pool"):
        a, b = getattr(saved.stem, name), getattr(current.stem, name)
        if a != b:
            found.append(f"the stem's {name.replace('_', ' ')} is {a} there but {b} here")
    if len(saved.stages) != len(current.stages):
        found.append(f"it has {_plural(len(saved.stages), 'stage')} there but "
                     f"{len(current.stages)} here")
    for index, (a, b) in enumerate(zip(saved.stages, current.stages)):
        label = f"stage {index + 1} (layer{index + 1})"
        if len(a.blocks) != len(b.blocks):
            found.append(f"{label} has {_plural(len(a.blocks), 'block')} there but "
                         f"{len(b.blocks)} here")
        elif a.blocks != b.blocks:
            found.append(f"{label} has {'/'.join(sorted(set(a.blocks)))} blocks there but "
                         f"{'/'.join(sorted(set(b.blocks)))} here")
        if a.width != b.width:
            found.append(f"{label} is {a.width} channels wide there but {b.width} here")
        if a.stride != b.stride:
            found.append(f"{label} has stride {a.stride} there but {b.stride} here")
        if a.shortcut != b.shortcut:
            found.append(f"{label} has a {a.shortcut.kind} shortcut there but a "
                         f"{b.shortcut.kind} one here" if a.shortcut.kind != b.shortcut.kind
                         else f"{label}'s shortcut differs in batch norm or bias")
        if a.conv_bias != b.conv_bias:
            found.append(f"{label} {'has' if a.conv_bias else 'lacks'} convolution biases "
                         f"there but {'has' if b.conv_bias else 'lacks'} them here")
    if saved.head.pool != current.head.pool:
        found.append(f"the head pools by {saved.head.pool} there but by {current.head.pool} here")
    if saved.head.dropout != current.head.dropout:
        found.append(f"the head's dropout is {saved.head.dropout} there but "
                     f"{current.head.dropout} here")
    return found


def state_dict_differences(saved: dict[str, torch.Tensor], current: dict[str, torch.Tensor],
                           limit: int = 3) -> list[str]:
    found = []
    for key in current:
        if key in saved and tuple(saved[key].shape) != tuple(current[key].shape):
            found.append(f"{key} is {'x'.join(map(str, saved[key].shape)) or 'a scalar'} there "
                         f"but {'x'.join(map(str, current[key].shape)) or 'a scalar'} here")
    missing = [key for key in current if key not in saved]
    extra = [key for key in saved if key not in current]
    if missing:
        found.append(f"{_plural(len(missing), 'tensor')} of this network "
                     f"{'is' if len(missing) == 1 else 'are'} not there "
                     f"(first {missing[0]})")
    if extra:
        found.append(f"{_plural(len(extra), 'tensor')} there "
                     f"{'has' if len(extra) == 1 else 'have'} no place here "
                     f"(first {extra[0]})")
    return found[:limit] if len(found) > limit else found


def mismatch_message(path: str | os.PathLike, saved: Architecture, current: Architecture,
                     differences: list[str]) -> str:
    shown = differences[:4]
    more = f" and {len(differences) - 4} more differences" if len(differences) > 4 else ""
    return (f"checkpoint {path} was saved from '{saved.name}', which does not fit "
            f"'{current.name}': {'; '.join(shown)}{more}; load it into the architecture it was "
            "saved with, or start a new run")


def unwrap(model: nn.Module) -> nn.Module:
    """The module under ``torch.compile``'s wrapper, whose state-dict keys have no prefix."""
    return getattr(model, "_orig_mod", model)


def load_weights(model: nn.Module, path: str | os.PathLike,
                 checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model``; a model of another shape is a
    :class:`CheckpointError` that says what differs. Returns the checkpoint."""
    checkpoint = checkpoint if checkpoint is not None else load_checkpoint(path)
    target = unwrap(model)
    saved_state = checkpoint.get("model")
    if not isinstance(saved_state, dict):
        raise CheckpointError(f"{path} holds no model weights; it cannot be loaded")
    current_state = target.state_dict()
    problems = state_dict_differences(saved_state, current_state)
    if problems:
        saved_arch = checkpoint_architecture(checkpoint, str(path))
        current_arch = getattr(target, "arch", None)
        differences = (architecture_differences(saved_arch, current_arch)
                       if isinstance(current_arch, Architecture) else [])
        raise CheckpointError(mismatch_message(
            path, saved_arch, current_arch if isinstance(current_arch, Architecture)
            else saved_arch.replace(name="this network"), differences or problems))
    target.load_state_dict(saved_state)
    return checkpoint
