"""One lab experiment at a time on a helper thread, with progress and Cancel.

An engine experiment takes ``progress=`` (called from its own thread) and ``stop=`` (a
``threading.Event``) and returns a result; :class:`ExperimentWorker` runs it off the GUI
thread and delivers its progress, its result or the sentence that explains why it failed as
signals in the GUI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from resnet_gui.qt.shared.background import outcome_for_user

# compute(progress, stop) -> result, in the helper thread
Experiment = Callable[[Callable[[Any], None], threading.Event], Any]


class ExperimentWorker(QObject):
    """``progress(Progress)``, then ``finished(result)`` or ``failed(sentence)``."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    _done = Signal(object, object)  # result, problem

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done.connect(self._deliver)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def start(self, experiment: Experiment) -> None:
        if self._thread is not None:
            raise RuntimeError("an experiment is already running")
        self._stop = threading.Event()
        stop = self._stop

        def work() -> None:
            result, problem = outcome_for_user(lambda: experiment(self._report, stop))
            try:
                self._done.emit(result, problem)
            except RuntimeError:  # the window is gone: nobody waits for the result
                pass

        self._thread = threading.Thread(target=work, name="resnet-gui lab", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the experiment to stop; it ends after its current step with what it has."""
        self._stop.set()

    def wait(self, timeout_s: float = 60.0) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def _report(self, progress: Any) -> None:
        try:
            self.progress.emit(progress)
        except RuntimeError:
            pass

    def _deliver(self, result: Any, problem: str | None) -> None:
        self._thread = None
        if problem is None:
            self.finished.emit(result)
        else:
            self.failed.emit(problem)
