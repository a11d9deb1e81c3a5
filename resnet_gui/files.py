"""Files written safely by every layer: never half a file, never a file that is not ours, no
temporary file outliving its writer, and one writer per file.

What a path to write may name:

- a missing file, or a regular file: it is replaced atomically (a temporary file in the same
  folder, flushed and fsynced, renamed over it, then the folder fsynced);
- a symbolic link: the write goes *through* it. The file the link points at is replaced
  atomically and the link stays a link (a dangling link gets its target created);
- a device, a pipe, a socket or a folder: refused, and nothing is written. (The command line
  maps ``-`` to standard output itself before any of this.)

A file with other hard links is replaced by a new file: its other names keep the old
contents, as with any atomic save.

Temporary files are named ``.NAME.PID-XXXXXX.tmp``. A writer that is killed leaves its own
behind; the next save of ``NAME`` removes those whose process is gone, or that are older than
an hour (a process id can be reused).

Standard library only: every layer may import this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from resnet_gui.errors import FileWriteError, UserError

# The process's umask, read once at import (reading it means setting it, briefly).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

TEMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
# A temporary file this old is stale even when a process of its writer's id is running: no
# save takes an hour, and process ids are reused.
STALE_SECONDS = 3600.0


# -- what a path names -----------------------------------------------------------------------


def special_kind(mode: int) -> str | None:
    """``"a folder"``, ``"a device"``, ... for what is not a regular file; None for a file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def existing_kind(path: str | os.PathLike) -> str | None:
    """What is at ``path`` (through links) when it is not a regular file; None when it is a
    file or nothing is there. Never opens it: opening a pipe would wait for a writer."""
    try:
        return special_kind(os.stat(path).st_mode)
    except OSError:
        return None


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path`` with every symbolic link resolved."""
    return Path(os.path.realpath(path))


def previous_path(path: str | os.PathLike) -> Path:
    """Where a checkpoint keeps the file it replaced: ``run.pt`` -> ``run.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix or '.pt'}")


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """True when both paths name one file: equal after resolving links, or one inode (hard
    links), whether or not the file exists yet."""
    try:
        if os.path.samefile(first, second):
            return True
    except (OSError, ValueError):
        pass
    return write_target(first) == write_target(second)


# -- temporary files -------------------------------------------------------------------------


def create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new private file ``folder/.NAME.PID-XXXXXX.tmp``, open for writing."""
    while True:
        temporary = folder / f".{name}.{os.getpid()}-{secrets.token_hex(3)}{TEMP_SUFFIX}"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), temporary
        except FileExistsError:
            continue


def _process_is_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # a process of another user has it; or no way to know: keep the file
    return False


def _temporary_owner(entry: str, name: str) -> int | None:
    """The writer's process id in ``.NAME.PID-XXXXXX.tmp``; -1 for the older
    ``.NAME.XXXXXXXX.tmp`` (no id: only its age tells); None for any other name."""
    prefix = f".{name}."
    if not entry.startswith(prefix) or not entry.endswith(TEMP_SUFFIX):
        return None
    middle = entry[len(prefix):-len(TEMP_SUFFIX)]
    pid, dash, token = middle.partition("-")
    if dash and pid.isdigit() and len(token) == 6:
        return int(pid)
    if not dash and len(middle) == 8 and all(c.isalnum() or c == "_" for c in middle):
        return -1
    return None


def remove_stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Delete the temporary files of earlier writes of ``name`` in ``folder`` whose writer
    is gone (or that are older than an hour); returns what was removed."""
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        owner = _temporary_owner(entry, name)
        if owner is None:
            continue
        path = folder / entry
        try:
            info = os.lstat(path)
            old = now - info.st_mtime > STALE_SECONDS
            if stat.S_ISREG(info.st_mode) and (old or (owner > 0 and _process_is_gone(owner))):
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


# -- saves that a signal cannot cut in half --------------------------------------------------

_writing = 0
_deferred: list[Callable[[], None]] = []


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """A stretch of writing that an abort (a second Ctrl-C) must not cut: an abort requested
    inside it with :func:`abort_when_written` runs when the stretch ends."""
    global _writing
    _writing += 1
    try:
        yield
    finally:
        _writing -= 1
        if _writing == 0 and _deferred:
            actions = list(_deferred)
            _deferred.clear()
            for action in actions:
                action()


def abort_when_written(action: Callable[[], None]) -> None:
    """Run ``action`` (which raises, to abort) now, or when the write under way is complete."""
    if _writing:
        _deferred.append(action)
    else:
        action()


# -- the atomic writer -----------------------------------------------------------------------


def _refuse_unless_replaceable(path: Path, target: Path) -> os.stat_result | None:
    """The stat of the file to replace (None when there is none), or FileWriteError for a
    device, pipe, socket, folder or write-protected file."""
    try:
        existing = os.stat(target)
    except OSError:
        return None
    kind = special_kind(existing.st_mode)
    if kind is not None:
        raise FileWriteError(f"{path} is {kind}, not a file; choose a file path to write to",
                             f"it is {kind}", before_writing=True)
    # Replacing goes through the folder, so it would pass over a file the user write-protected.
    if not existing.st_mode & 0o222:
        raise FileWriteError(f"{path} is read-only; make it writable or choose another name",
                             "the file is read-only", before_writing=True)
    return existing


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises rather than return 0 here
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


def atomic_write_bytes(path: str | os.PathLike, data: bytes,
                       before_replace: Callable[[Path], None] | None = None) -> None:
    """Write ``data`` to ``path`` so that a crash, a full disk or a signal never leaves half a
    file (see the module docstring for links, devices and temporary files).

    ``before_replace(target)`` runs just before the rename when a file is being replaced (a
    checkpoint keeps the file it replaces there). Raises :class:`FileWriteError`.
    """
    path = Path(path)
    target = write_target(path)
    existing = _refuse_unless_replaceable(path, target)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise FileWriteError(f"cannot write {path}: {reason}; choose another folder",
                             reason, before_writing=True) from None
    remove_stale_temporaries(folder, target.name)
    with uninterruptible():
        try:
            fd, temporary = create_temporary(folder, target.name)
        except OSError as error:
            reason = error.strerror or str(error)
            raise FileWriteError(f"cannot write {path}: {reason}; choose another folder",
                                 reason, before_writing=True) from None
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            # The new file gets the mode the old one had, or the one a plain open() gives.
            os.chmod(temporary, existing.st_mode & 0o7777 if existing is not None
                     else 0o666 & ~_UMASK)
            if before_replace is not None and existing is not None:
                before_replace(target)
            os.replace(temporary, target)
            fsync_folder(folder)
        except BaseException as error:  # a full disk, or an abort: never leave the temp file
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if not isinstance(error, OSError):
                raise
            reason = ("the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT)
                      else "the file would exceed the size limit (ulimit -f)"
                      if error.errno == errno.EFBIG else error.strerror or str(error))
            raise FileWriteError(
                f"could not save {path}: {reason}; any previous version of the file is "
                "unchanged", reason, before_writing=False) from None


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; elsewhere the replace is enough)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- one writer per file ---------------------------------------------------------------------


class FileInUseError(UserError):
    """Another process holds the lock of a file this one would write."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def lock_path(path: str | os.PathLike) -> Path:
    """The lock of the file ``path`` writes to: ``.NAME.lock`` beside it (beside the link's
    target for a link, so that every name of one file shares one lock)."""
    target = write_target(path)
    return target.with_name(f".{target.name}{LOCK_SUFFIX}")


class FileLock:
    """An exclusive ``flock`` on ``.NAME.lock``, holding the owner's process id.

    The lock file is removed on release. Where the platform has no ``flock`` (Windows) the
    lock does nothing.
    """

    def __init__(self, path: str | os.PathLike, label: str) -> None:
        self.path = lock_path(path)
        self.label = label  # how the message names the file ("--checkpoint run.pt")
        self._fd: int | None = None

    def acquire(self) -> "FileLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise UserError(f"{self.label}: cannot create the lock file {self.path} "
                                f"({error.strerror}); choose a folder you can write to"
                                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = _read_pid(fd)
                os.close(fd)
                holder = f"pid {pid}" if pid else "another process"
                raise FileInUseError(
                    f"{self.label} is in use by another resnet-gui run ({holder}); wait for it "
                    "to end, or choose another file", pid) from None
            # The holder before us may have removed the file after we opened it: the lock
            # must be on the file the path names now.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it: see acquire
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
