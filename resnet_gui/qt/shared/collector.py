"""Reference cycles are collected in the GUI thread, never in a worker thread.

Python collects cycles in whichever thread happens to allocate when a threshold is crossed. A
cycle holding a Qt object (a closed dialog, a menu) collected in the training thread destroys
that object there: QObject's destructor then waits for Qt's lock while the GUI thread, holding
it, waits for the GIL, and the window hangs (seen in a test run, py-spy showing
gc_collect_main in the worker inside QObject::~QObject). While a window lives, automatic
collection is off and a timer in the GUI thread collects with Python's own thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 250  # cyclic garbage waits at most this long
_live = 0  # collectors alive: automatic collection is back on when the last one goes


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        global _live
        if _live == 0:
            gc.disable()
        _live += 1
        self.destroyed.connect(_released)
        self._timer = QTimer(self)
        self._timer.timeout.connect(collect_due_generation)
        self._timer.start(INTERVAL_MS)


def collect_due_generation() -> int | None:
    """The collection Python would have made by now, if any; returns its generation."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if counts[0] <= thresholds[0]:
        return None
    generation = next(g for g in (2, 1, 0) if g == 0 or counts[g] >= thresholds[g])
    gc.collect(generation)
    return generation


def _released(*_args) -> None:
    global _live
    _live -= 1
    if _live == 0:
        gc.enable()
