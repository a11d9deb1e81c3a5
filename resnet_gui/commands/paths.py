"""Checks of the file paths given on the command line, before any work starts: a folder,
device, pipe or socket where a file belongs, a file to read that is not there, or two outputs
naming one file, is one sentence naming the option.

``-`` names standard output where an option allows it; so does a path that is the terminal
or pipe standard output already is (``/dev/stdout``). Symbolic links are written through (see
:mod:`resnet_gui.files`)."""

from __future__ import annotations

import os
from pathlib import Path

from resnet_gui.errors import UserError
from resnet_gui.files import existing_kind, same_file


# os.path's tests, not Path's: they answer False where the name cannot even be looked up
# (too long for the file system, say) instead of raising.

def _names_a_folder(path: str) -> bool:
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


# File systems allow 255 bytes a name; the atomic writer's temporary file adds about 20.
MAX_NAME_BYTES = 230


def names_standard_output(path: str) -> bool:
    """``-``, or a path naming the terminal or pipe that standard output is (``/dev/stdout``;
    a regular file it is redirected to stays a file, written atomically)."""
    if path == "-":
        return True
    try:
        ours, theirs = os.fstat(1), os.stat(path)
    except (OSError, ValueError):
        return False
    return ((ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)
            and existing_kind(path) is not None)


def file_to_write(option: str, path: str, example: str, dash: bool = False) -> str:
    """``path`` unless it names a folder, device, pipe or socket; ``example`` is a file name
    to suggest; ``dash``: the option takes ``-`` for standard output."""
    if _names_a_folder(path):
        raise UserError(f"{option} {path} is a folder; give a file path such as "
                        f"{Path(path) / example}")
    kind = existing_kind(path)
    if kind is not None:
        stdout = " (or - for standard output)" if dash else ""
        raise UserError(f"{option} {path} is {kind}, not a file; give the path of a file{stdout} "
                        f"such as {example}")
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
    kind = existing_kind(path)
    if kind is not None:
        raise UserError(f"{option} {path} is {kind}, not a file; give the path of {what}")
    if not os.path.isfile(path):
        raise UserError(f"{option} {path} does not exist; give the path of {what}")
    return path


def distinct_outputs(named: list[tuple[str, str]]) -> None:
    """Refuse two options naming one file (also through links), as ``(option, path)``."""
    for index, (option, path) in enumerate(named):
        for other, other_path in named[index + 1:]:
            if same_file(path, other_path):
                raise UserError(f"{option} {path} and {other} {other_path} name the same file; "
                                f"give {option} a file of its own")
