"""The document being edited: the current immutable architecture plus its past and future.

Undo and redo are a matter of moving architectures between two lists, because an
:class:`Architecture` never changes once made. Listeners hear about every change with a
:class:`Change` saying what happened, so views refresh from the document instead of from the
widget that made the edit.

Standard library only; the window wraps it, the tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_gui.errors import UserError
from resnet_gui.arch.model import Architecture

EDIT, UNDO, REDO, RESET, SAVED, LOCK = "edit", "undo", "redo", "reset", "saved", "lock"


class DocumentLocked(UserError):
    """An edit was attempted while the architecture is locked (a training run is live)."""


@dataclass(frozen=True)
class Change:
    """What happened to the document: ``kind`` is one of edit, undo, redo, reset, saved, lock.

    ``label`` names the edit ("Change layer2 width"); ``selection`` is what the editor that
    made the edit wants selected afterwards (None: keep the selection when it still exists).
    """

    kind: str
    label: str = ""
    selection: Any = None
    merged: bool = False  # an edit folded into the previous undo step (same merge key)


@dataclass(frozen=True)
class _Entry:
    arch: Architecture
    label: str  # the edit that produced this version


Listener = Callable[["Document", Change], None]


class Document:
    """An architecture with undo/redo history, a file path and a saved/modified state."""

    def __init__(
        self, arch: Architecture, path: str | Path | None = None, history_limit: int = 1000
    ) -> None:
        self._current = _Entry(arch, "")
        self._past: list[_Entry] = []
        self._future: list[_Entry] = []
        self._saved = arch
        self._merge_key: object = None
        self._listeners: list[Listener] = []
        self.history_limit = history_limit
        self.path: Path | None = Path(path) if path is not None else None
        self.locked_reason: str = ""

    # -- state ---------------------------------------------------------------------------

    @property
    def arch(self) -> Architecture:
        return self._current.arch

    @property
    def is_modified(self) -> bool:
        return self._current.arch != self._saved

    @property
    def locked(self) -> bool:
        return bool(self.locked_reason)

    @property
    def can_undo(self) -> bool:
        return bool(self._past) and not self.locked

    @property
    def can_redo(self) -> bool:
        return bool(self._future) and not self.locked

    @property
    def undo_label(self) -> str:
        return self._current.label if self._past else ""

    @property
    def redo_label(self) -> str:
        return self._future[-1].label if self._future else ""

    @property
    def display_name(self) -> str:
        return self.path.name if self.path is not None else f"{self.arch.name} (unsaved)"

    # -- listeners -----------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(self, change)

    # -- editing -------------------------------------------------------------------------

    def _check_unlocked(self) -> None:
        if self.locked:
            raise DocumentLocked(
                f"the architecture is locked while {self.locked_reason}; "
                "stop the run to edit it"
            )

    def apply(
        self,
        arch: Architecture,
        label: str,
        selection: Any = None,
        merge_key: object = None,
    ) -> bool:
        """Make ``arch`` the current version; returns False when nothing changed.

        Consecutive edits with the same non-None ``merge_key`` (a spin box being stepped
        from 64 to 128) become one undo step.
        """
        self._check_unlocked()
        if arch == self._current.arch:
            return False
        merged = merge_key is not None and merge_key == self._merge_key and bool(self._past)
        if not merged:
            self._past.append(self._current)
            if len(self._past) > self.history_limit:
                del self._past[0]
        self._current = _Entry(arch, label)
        self._future.clear()
        self._merge_key = merge_key
        self._notify(Change(EDIT, label, selection, merged))
        return True

    def edit(self, function: Callable[..., Any], *args: Any, label: str,
             merge_key: object = None, **kwargs: Any) -> bool:
        """Apply ``function(arch, *args, **kwargs)``; it returns an Architecture or
        ``(Architecture, selection)``. Errors from the function propagate unchanged."""
        self._check_unlocked()
        result = function(self.arch, *args, **kwargs)
        selection = None
        if isinstance(result, tuple):
            result, selection = result
        return self.apply(result, label, selection=selection, merge_key=merge_key)

    def undo(self) -> bool:
        if not self._past:
            return False
        self._check_unlocked()
        label = self._current.label
        self._future.append(self._current)
        self._current = self._past.pop()
        self._merge_key = None
        self._notify(Change(UNDO, label))
        return True

    def redo(self) -> bool:
        if not self._future:
            return False
        self._check_unlocked()
        self._past.append(self._current)
        self._current = self._future.pop()
        self._merge_key = None
        self._notify(Change(REDO, self._current.label))
        return True

    def reset(self, arch: Architecture, path: str | Path | None = None, label: str = "") -> None:
        """Start over with ``arch`` (New, Open): history cleared, nothing to save yet."""
        self._check_unlocked()
        self._current = _Entry(arch, label)
        self._past.clear()
        self._future.clear()
        self._merge_key = None
        self.path = Path(path) if path is not None else None
        self._saved = arch
        self._notify(Change(RESET, label))

    def mark_saved(self, path: str | Path) -> None:
        self.path = Path(path)
        self._saved = self._current.arch
        self._merge_key = None
        self._notify(Change(SAVED, str(path)))

    def set_locked(self, locked: bool, reason: str = "") -> None:
        """Lock the architecture (``reason`` says why, e.g. "a training run is live")."""
        reason = (reason or "a training run is live") if locked else ""
        if reason == self.locked_reason:
            return
        self.locked_reason = reason
        self._merge_key = None
        self._notify(Change(LOCK, reason))
