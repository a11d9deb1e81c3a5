"""Checks of the file paths given on the command line, before any work starts: a folder
where a file belongs, or a file to read that is not there, is one sentence naming the option."""

from __future__ import annotations

import os
from pathlib import Path

from resnet_gui.errors import UserError


# os.path's tests, not Path's: they answer False where the name cannot even be looked up
# (too long for the file system, say) instead of raising.

def _names_a_folder(path: str) -> bool:
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


# File systems allow 255 bytes a name; the atomic writer's temporary file adds about 20.
MAX_NAME_BYTES = 230


def file_to_write(option: str, path: str, example: str) -> str:
    """``path`` unless it names a folder; ``example`` is a file name to suggest inside it."""
    if _names_a_folder(path):
        raise UserError(f"{option} {path} is a folder; give a file path such as "
                        f"{Path(path) / example}")
    if len(os.fsencode(Path(path).name)) > MAX_NAME_BYTES:
        raise UserError(f"{option}: the file name is longer than the {MAX_NAME_BYTES} bytes "
                        f"resnet-gui can save under; choose a shorter name such as {example}")
    # The folder it goes in (created when missing): caught now rather than at the first save,
    # after a run has trained for an epoch.
    folder = Path(path).absolute().parent
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    if not os.path.isdir(folder):
        raise UserError(f"{option} {path}: {folder} is a file, not a folder; choose another "
                        "path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write in {folder}; choose a folder you can "
                        "write to")
    if os.path.isfile(path) and not os.stat(path).st_mode & 0o222:
        raise UserError(f"{option} {path} is read-only; make it writable or choose another "
                        "name")
    return path


def file_to_read(option: str, path: str, example: str, what: str) -> str:
    """``path`` when it is an existing file; ``what`` says what such a file is."""
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder; give {what} in it, such as "
                        f"{Path(path) / example}")
    if not os.path.isfile(path):
        raise UserError(f"{option} {path} does not exist; give the path of {what}")
    return path
