"""The analysis, run in a separate process so that it never competes with the window for
Python's GIL.

The analysis is pure Python over meta tensors; on a worker *thread* it holds the GIL for
most of its ~200 ms on resnet152, and every paint of the window then waits for it (event-loop
stalls of up to a second were measured on a 2-core machine). One warm worker process per
application answers instead. It is started after the window's first analysis (which runs
on a thread, so the window is filled in as soon as possible) and warms up in the background;
until it is ready, analyses keep running on the thread.

No Qt here: the worker process imports this module to find its functions.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from resnet_gui.errors import ArchitectureError


def warm_up() -> bool:
    """Runs in the worker: import torch and the analysis once, single-threaded."""
    import torch

    torch.set_num_threads(1)  # leave the other cores to the window (meta tensors need none)
    from resnet_gui.engine.analysis import analyse
    from resnet_gui.arch.presets import build_preset

    # The first call through torch's meta kernels costs seconds; pay it before any edit.
    for name in ("resnet18", "resnet50", "preact-resnet50", "resnet20"):
        analyse(build_preset(name, 1, 10, 32))
    return True


def analyse_in_worker(arch) -> tuple[Any, str, str, bool]:
    """(analysis, reason, path, is_architecture_error): errors travel as plain text, because
    an ArchitectureError's path would not survive pickling."""
    from resnet_gui.engine.analysis import analyse

    try:
        return analyse(arch), "", "", False
    except ArchitectureError as error:
        return None, error.reason, error.path, True


def rebuild_error(reason: str, path: str) -> ArchitectureError:
    return ArchitectureError(reason, path)


class WorkerProcess:
    """The application's one analysis process, started on first use and shared by every
    window. ``ready`` turns true once it has imported torch."""

    _lock = threading.Lock()
    _executor: ProcessPoolExecutor | None = None
    _ready = threading.Event()
    _failures = 0
    MAX_FAILURES = 3  # a process that keeps dying is given up on; threads take over
    enabled = True  # False: threads only (a one-shot screenshot has no use for a process)

    @classmethod
    def start(cls) -> None:
        with cls._lock:
            if not cls.enabled or cls._executor is not None or \
                    cls._failures >= cls.MAX_FAILURES:
                return
            try:
                # spawn, not fork: the window's process has Qt and torch threads running.
                context = multiprocessing.get_context("spawn")
                cls._executor = ProcessPoolExecutor(max_workers=1, mp_context=context)
                warm: Future = cls._executor.submit(warm_up)
            except (OSError, RuntimeError, ValueError):
                cls._failures = cls.MAX_FAILURES
                cls._executor = None
                return
            warm.add_done_callback(cls._on_warm)
            atexit.register(cls.stop)

    @classmethod
    def _on_warm(cls, future: Future) -> None:
        if future.cancelled() or future.exception() is not None:
            cls._broken()
        else:
            cls._ready.set()

    @classmethod
    def _broken(cls) -> None:
        with cls._lock:
            cls._ready.clear()
            cls._failures += 1
            executor, cls._executor = cls._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    @classmethod
    def ready(cls) -> bool:
        return cls._ready.is_set() and cls._executor is not None

    @classmethod
    def wait_ready(cls, timeout: float) -> bool:
        return cls._ready.wait(timeout)

    @classmethod
    def submit(cls, arch) -> Future | None:
        """A future for ``analyse_in_worker(arch)``, or None when the process cannot take it."""
        with cls._lock:
            executor = cls._executor if cls._ready.is_set() else None
            if executor is None:
                return None
            try:
                return executor.submit(analyse_in_worker, arch)
            except RuntimeError:  # broken or shut down
                pass
        cls._broken()
        return None

    @classmethod
    def stop(cls) -> None:
        """End the process now, even mid-analysis (its results are no longer wanted)."""
        with cls._lock:
            executor, cls._executor = cls._executor, None
            cls._ready.clear()
        if executor is None:
            return
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
