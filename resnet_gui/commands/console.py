"""Standard output and standard error when they go away.

What is decided per stream:

- standard error carries progress and notes: when it is closed (``2>&1 >/dev/null | head -2``
  once head exits) the messages are dropped and the work goes on; nothing is saved there;
- standard output carries a command's result (``summary``, ``export --out -``, ``train --log
  -``): when it is closed or full the result is lost, which is one sentence on standard error
  and a non-zero exit, never a traceback and never exit 0.
"""

from __future__ import annotations

import errno
import os
import sys

from resnet_gui.errors import UserError


class OutputLostError(UserError):
    """Standard output was closed or full: the command's result did not arrive whole."""


def _to_devnull(fileno: int) -> None:
    """Point a standard stream's descriptor at /dev/null: what is still buffered for it (and
    Python flushes at exit) then goes nowhere instead of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - /dev/null always opens
        return
    if devnull == fileno:  # the descriptor was closed: /dev/null took its number
        return
    try:
        os.dup2(devnull, fileno)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(devnull)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):  # a test's capture buffer has none
        return None


def stderr_lost() -> None:
    """Standard error went away: drop what follows for it."""
    fileno = _fileno(sys.stderr) if sys.stderr is not None else None
    if fileno is not None:
        _to_devnull(fileno)


def say(text: str) -> None:
    """One message on standard error; dropped, not fatal, when standard error is gone."""
    if sys.stderr is None:
        return
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # closed pipe, or a stream already closed
        stderr_lost()


def stdout_problem(error: OSError) -> str:
    if error.errno == errno.EPIPE:
        return "standard output was closed before everything was written (the reader, " \
               "such as head, stopped reading); the output is incomplete"
    reason = ("the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT)
              else error.strerror or str(error))
    return (f"could not write to standard output ({reason}); the output is incomplete; "
            "redirect it to a file on a disk with free space")


def write_stdout(text: str) -> None:
    """``text`` on standard output, flushed now: a closed or full output is an
    :class:`OutputLostError` here, not an error at interpreter exit."""
    if sys.stdout is None:
        raise OutputLostError("standard output is closed, so there is nowhere to write the "
                              "result; run the command without closing it (no >&-)")
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as error:
        fileno = _fileno(sys.stdout)
        if fileno is not None:
            _to_devnull(fileno)
        raise OutputLostError(stdout_problem(error)) from None


def reserve_standard_streams() -> dict[int, bool]:
    """Open /dev/null on standard descriptors 0-2 that the caller left closed, so that no file
    this process opens takes their number (and receives what was meant for the terminal).
    Returns which of them were closed."""
    closed = {}
    for fileno in (0, 1, 2):
        try:
            os.fstat(fileno)
            closed[fileno] = False
        except OSError:
            closed[fileno] = True
            _to_devnull(fileno)
    return closed
