"""Checks of the file paths given on the command line, before any work starts: a folder
where a file belongs, or a file to read that is not there, is one sentence naming the option."""

from __future__ import annotations

import os
from pathlib import Path

from resnet_gui.errors import UserError


def _names_a_folder(path: str) -> bool:
    return path.endswith(("/", os.sep)) or Path(path).is_dir()


def file_to_write(option: str, path: str, example: str) -> str:
    """``path`` unless it names a folder; ``example`` is a file name to suggest inside it."""
    if _names_a_folder(path):
        raise UserError(f"{option} {path} is a folder; give a file path such as "
                        f"{Path(path) / example}")
    # The folder it goes in (created when missing): caught now rather than at the first save,
    # after a run has trained for an epoch.
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{option} {path}: {folder} is a file, not a folder; choose another "
                        "path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write in {folder}; choose a folder you can "
                        "write to")
    return path


def file_to_read(option: str, path: str, example: str, what: str) -> str:
    """``path`` when it is an existing file; ``what`` says what such a file is."""
    if Path(path).is_dir():
        raise UserError(f"{option} {path} is a folder; give {what} in it, such as "
                        f"{Path(path) / example}")
    if not Path(path).is_file():
        raise UserError(f"{option} {path} does not exist; give the path of {what}")
    return path
