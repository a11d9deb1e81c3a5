"""Work on the idle network off the GUI thread: one helper thread, one job at a time.

The Inspect views ask for feature maps, Grad-CAM, effective receptive fields and predictions
of dropped images. Each of these runs a network forward (and often backward), which may take
a second on a large network: too long for the GUI thread. :class:`BackgroundJobs` runs them in
order on one helper thread, so that two jobs never use the same network at once (they switch
it to eval mode and put hooks on it). Jobs have a key ("probe", "cam", ...): a job waiting in
the queue is replaced by a newer one of its key, and a result arrives (in the GUI thread)
only if no newer job of its key was asked for since, so clicking through layers quickly
computes the last one, not every one.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from resnet_gui.errors import UserError

Done = Callable[[Any], None]
Failed = Callable[[str], None]


class BackgroundJobs(QObject):
    """Jobs in a helper thread; ``done(result)`` or ``failed(sentence)`` in the GUI thread."""

    _finished = Signal(str, int, object, object)  # key, ticket, callbacks, outcome

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, Callable[[], Any], Done, Failed]] = {}
        self._tickets: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._finished.connect(self._deliver)

    def submit(self, key: str, compute: Callable[[], Any], done: Done, failed: Failed) -> None:
        """Run ``compute()`` on the helper thread; it replaces a waiting job of ``key``."""
        with self._lock:
            ticket = self._tickets.get(key, 0) + 1
            self._tickets[key] = ticket
            self._pending.pop(key, None)
            self._pending[key] = (ticket, compute, done, failed)
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, daemon=True,
                                                name="resnet-gui inspect")
                self._thread.start()

    def cancel(self, key: str) -> None:
        """Forget a waiting job of ``key`` and drop the result of a running one."""
        with self._lock:
            self._tickets[key] = self._tickets.get(key, 0) + 1
            self._pending.pop(key, None)

    def cancel_all(self) -> None:
        """Forget every waiting job and drop the results of the running one."""
        with self._lock:
            for key in set(self._tickets) | set(self._pending):
                self._tickets[key] = self._tickets.get(key, 0) + 1
            self._pending.clear()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Block until the helper thread has no job left; True when it has none."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                key = next(iter(self._pending))
                ticket, compute, done, failed = self._pending.pop(key)
            outcome = outcome_for_user(compute)
            try:
                self._finished.emit(key, ticket, (done, failed), outcome)
            except RuntimeError:  # the window is gone: nobody is waiting for the result
                pass

    @Slot(str, int, object, object)
    def _deliver(self, key: str, ticket: int, callbacks, outcome) -> None:
        if ticket != self._tickets.get(key):
            return  # a newer job of this key was asked for: this result is out of date
        done, failed = callbacks
        result, problem = outcome
        if problem is None:
            done(result)
        else:
            failed(problem)


def outcome_for_user(compute: Callable[[], Any]) -> tuple[Any, str | None]:
    """(result, None), or (None, a sentence for the user); a helper thread never raises."""
    try:
        return compute(), None
    except UserError as problem:
        return None, str(problem)
    except MemoryError:
        return None, "the computer ran out of memory; pick a smaller network or input"
    except Exception as bug:  # a bug in resnet-gui: say so, keep the window alive
        traceback.print_exc()
        return None, f"the computation failed ({type(bug).__name__}: {bug})"
