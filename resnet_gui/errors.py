"""The project's own error types: each carries one sentence for the user.

Anything a user can cause (a bad file, a wrong option, missing data, a diverging run) raises a
subclass of :class:`UserError`. The command line prints ``str(error)`` on one line of stderr and
exits with ``error.exit_code``; the window shows the same sentence in a message. Anything else
escaping is a bug in resnet-gui, not a user mistake.

Standard library only: every layer may import this module.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; ``str(self)`` names the problem and the fix."""

    exit_code = 1


class UsageError(UserError):
    """A command line that cannot be parsed: an unknown option, a missing or mistyped value."""

    exit_code = 2


class ArchitectureError(UserError, ValueError):
    """An architecture that cannot be built or analysed.

    ``path`` names the field (``stages[2].num_blocks``) or the layer (``layer3.0.conv1``) at
    fault, when there is one, so that the window can point at it.
    """

    exit_code = 2

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class FileWriteError(UserError):
    """A file that could not be written; any earlier version of it is unchanged.

    ``reason`` says why ("the disk is full"); ``before_writing`` is true when the folder or
    the temporary file could not even be created.
    """

    def __init__(self, message: str, reason: str, before_writing: bool) -> None:
        super().__init__(message)
        self.reason, self.before_writing = reason, before_writing


class DataError(UserError):
    """A dataset that is missing, unreadable or inconsistent."""


class CheckpointError(UserError):
    """A checkpoint that cannot be written, read, or applied to this architecture."""


class TrainingError(UserError):
    """A run that cannot go on (divergence, out of memory below the smallest batch)."""


class ExportError(UserError):
    """An export that cannot be produced with the installed packages."""


class WeightsError(UserError):
    """Starting weights that cannot be found, read, or fitted to the network."""