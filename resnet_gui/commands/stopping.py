"""Stop signals: SIGINT (Ctrl-C), SIGTERM (``timeout``, ``docker stop``, Slurm) and SIGHUP (the
terminal closed).

During ``train`` (:class:`StopOnSignal`) the first one asks the trainer to stop after the
current batch and save; a second one, or one before there is a trainer, aborts with
:class:`Aborted` (exit 128 + the signal's number), though never in the middle of writing a file
(:func:`resnet_gui.files.abort_when_written`).

Around a whole command-line process (:func:`handle_for_process`) a stop signal outside a run
aborts the same way, and once the command is done (:func:`ignore_while_exiting`) further ones
are ignored: the process is on its way out, and a signal during the interpreter's shutdown
would otherwise end in a traceback or a different exit code.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from resnet_gui.commands.console import say
from resnet_gui.files import abort_when_written

_for_process = False  # handle_for_process() was called: this is a command-line process


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Aborted(KeyboardInterrupt):
    """A stop signal that ends the command at once (after any file being written is whole);
    ``message`` says what became of the work."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
        self.message = message


# SIGHUP: the terminal closed (not on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class StopOnSignal:
    """The first SIGINT, SIGTERM or SIGHUP asks the trainer to stop after this batch and save;
    a second one (or one before there is a trainer) aborts, once no file is half-written."""

    def __init__(self) -> None:
        self.trainer = None
        self.signum: int | None = None
        self.aborting = False
        self.previous: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.signum is None else 128 + self.signum

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.aborting:
            return  # already on its way out
        name = signal_name(signum)
        if self.signum is not None or self.trainer is None:
            message = (f"aborted by {name}; the last checkpoint saved is kept"
                       if self.trainer is not None
                       else f"stopped by {name} before training began; nothing was saved")
            abort_when_written(lambda: self._abort(signum, message))
            return
        self.signum = signum
        say(f"\nresnet-gui: {name}: stopping after this batch and saving (a second signal "
            "aborts)")
        self.trainer.request_stop()

    def _abort(self, signum: int, message: str) -> None:
        self.aborting = True
        raise Aborted(signum, message)

    def __exit__(self, *exc) -> None:
        if self.signum is not None and _for_process:
            ignore_while_exiting()  # stopped as asked and saved: a second signal changes nothing
        else:
            for signum, previous in self.previous.items():
                signal.signal(signum, previous)
        self.previous.clear()


def _abort_outside_a_run(signum, frame) -> None:
    abort_when_written(lambda: _raise(Aborted(signum, f"stopped by {signal_name(signum)}")))


def _raise(error: BaseException) -> None:
    raise error


def handle_for_process() -> None:
    """Stop signals end a command-line process cleanly (exit 128 + N, one line) rather than
    by the default action; call it in the main thread at the start of a command."""
    global _for_process
    _for_process = True
    for signum in STOP_SIGNALS:
        signal.signal(signum, _abort_outside_a_run)


def ignore_while_exiting() -> None:
    """The command is done: later stop signals are ignored while the process exits."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
