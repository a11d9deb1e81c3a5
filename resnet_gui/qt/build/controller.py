"""The editor's controller: the document, the selection and the live analysis.

Widgets get the controller in their constructor, forward user input to it in one line
(``controller.edit(edits.set_stage, 1, width=96, label=...)``) and refresh from its signals.
The analysis runs on a worker thread; a generation counter makes sure only the result for the
newest version of the architecture is ever shown.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from resnet_gui.errors import ArchitectureError, UserError
from resnet_gui.qt.build.analysis_worker import WorkerProcess, rebuild_error
from resnet_gui.arch import edits
from resnet_gui.arch.document import EDIT, LOCK, REDO, RESET, SAVED, UNDO, Change, Document
from resnet_gui.arch.edits import Part
from resnet_gui.arch.model import Architecture, validate


def _default_analyse(arch: Architecture):
    from resnet_gui.engine.analysis import analyse

    return analyse(arch)


class _Bridge(QObject):
    """Lives in the GUI thread; a worker emits on it and Qt queues the call across threads."""

    done = Signal(int, object, object)


class _AnalysisJob(QRunnable):
    def __init__(self, bridge: _Bridge, generation: int, arch: Architecture,
                 analyse: Callable[[Architecture], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._bridge, self._generation, self._arch, self._analyse = bridge, generation, arch, analyse

    def run(self) -> None:
        result, error = None, None
        try:
            result = self._analyse(self._arch)
        except ArchitectureError as problem:
            error = problem
        except Exception as bug:  # never let a worker take the window down
            error = ArchitectureError(
                f"the analysis failed unexpectedly ({type(bug).__name__}: {bug}); "
                "undo the last edit and report this"
            )
        self._bridge.done.emit(self._generation, result, error)


class AnalysisRunner(QObject):
    """Runs one analysis at a time off the GUI thread, newest request first.

    While one runs, further requests replace each other: only the newest waits, so a burst of
    edits costs at most one stale analysis plus the current one. The default analysis runs in
    the application's worker process (see :mod:`resnet_gui.qt.build.analysis_worker`), on a thread
    until that process is ready; a custom ``analyse`` function always runs on a thread.
    """

    finished = Signal(int, object, object, object)  # generation, arch, Analysis, error

    def __init__(self, analyse: Callable[[Architecture], Any] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._use_process = analyse is None
        self._analyse = analyse or _default_analyse
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._on_done)
        self.generation = 0
        self._pending: tuple[int, Architecture] | None = None
        self._running: tuple[int, Architecture] | None = None
        self._closed = False
        self.process_runs = 0  # how many analyses the worker process answered

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending is not None

    def request(self, arch: Architecture) -> int:
        self.generation += 1
        self._pending = (self.generation, arch)
        if self._running is None:
            self._start_next()
        return self.generation

    def cancel(self) -> None:
        """Forget the waiting request and make any running one stale."""
        self.generation += 1
        self._pending = None

    def _start_next(self) -> None:
        if self._pending is None or self._closed:
            return
        self._running, self._pending = self._pending, None
        generation, arch = self._running
        future = WorkerProcess.submit(arch) if self._use_process else None
        if future is not None:
            self.process_runs += 1
            future.add_done_callback(lambda done: self._from_process(generation, arch, done))
            return
        self._pool.start(_AnalysisJob(self._bridge, generation, arch, self._analyse))

    def _from_process(self, generation: int, arch: Architecture, future) -> None:
        """Runs on the executor's thread: unpack, then hand over to the GUI thread."""
        result, error = None, None
        try:
            result, reason, path, is_error = future.result()
            if is_error:
                error = rebuild_error(reason, path)
        except Exception:  # the process died or was stopped: answer on a thread instead
            if self._closed:
                return
            try:
                result = self._analyse(arch)
            except ArchitectureError as problem:
                error = problem
            except Exception as bug:
                error = ArchitectureError(
                    f"the analysis failed unexpectedly ({type(bug).__name__}: {bug}); "
                    "undo the last edit and report this")
        if self._closed:
            return
        try:
            self._bridge.done.emit(generation, result, error)
        except RuntimeError:  # the window is gone
            pass

    @Slot(int, object, object)
    def _on_done(self, generation: int, result: Any, error: Any) -> None:
        arch = self._running[1] if self._running else None
        self._running = None
        if self._use_process and not self._closed:
            WorkerProcess.start()  # after the first result, so the two do not compete
        self._start_next()
        self.finished.emit(generation, arch, result, error)

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Wait for a running analysis (thread or process) to finish."""
        import time

        deadline = time.monotonic() + timeout_ms / 1000
        while self._running is not None and time.monotonic() < deadline:
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.processEvents()
            time.sleep(0.002)
        return self._pool.waitForDone(max(0, int((deadline - time.monotonic()) * 1000)))

    def close(self) -> None:
        self._closed = True
        self._pending = None


def part_cost(analysis: Any, part: Part | None) -> tuple[int, int]:
    """Parameters and multiply-adds of a part, summed over its leaf layers."""
    if analysis is None:
        return 0, 0
    if part is None:
        return analysis.total_params, analysis.total_macs
    params = macs = 0
    for row in analysis.layers:
        if row.is_leaf and part.contains_layer(row.name):
            params += row.params
            macs += row.macs
    return params, macs


class EditorController(QObject):
    """Owns the document's view state: selection, analysis results, the current problem."""

    documentChanged = Signal(object)  # Change
    selectionChanged = Signal(object)  # Part | None
    analysisChanged = Signal()
    lockChanged = Signal(bool, str)
    message = Signal(str)
    # A block dropped into a stage: the architecture before, stage, index, kind (the
    # Train tab offers to keep the trained weights; qt/shared/growth.py).
    blockInserted = Signal(object, int, int, str)

    CACHE_SIZE = 32

    def __init__(self, document: Document, analyse: Callable[[Architecture], Any] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.selection: Part | None = None
        self.analysis: Any = None  # the newest successful analysis (may be of an older version)
        self.problem: ArchitectureError | None = None
        self.problem_part: Part | None = None
        self._results: OrderedDict[Architecture, tuple[Any, Any]] = OrderedDict()
        self._before_arch: Architecture | None = None
        self._last_arch = document.arch
        self.requested_at = time.perf_counter()
        self.shown_at = self.requested_at
        self.runner = AnalysisRunner(analyse, self)
        self.runner.finished.connect(self._on_analysis)
        document.add_listener(self._on_document)
        self._refresh_analysis()

    # -- state ---------------------------------------------------------------------------

    @property
    def arch(self) -> Architecture:
        return self.document.arch

    @property
    def analysis_is_current(self) -> bool:
        entry = self._results.get(self.arch)
        return entry is not None and entry[0] is not None and entry[0] is self.analysis

    @property
    def is_settled(self) -> bool:
        """True once the analysis (or its error) for the current version is shown."""
        return self.arch in self._results and not self.runner.busy

    @property
    def before_analysis(self) -> Any:
        """The analysis of the version before the last change, when known."""
        if self._before_arch is None:
            return None
        entry = self._results.get(self._before_arch)
        return entry[0] if entry else None

    # -- selection -----------------------------------------------------------------------

    def select(self, part: Part | None) -> None:
        if part is not None and not edits.part_exists(self.arch, part):
            part = None
        if part == self.selection:
            return
        self.selection = part
        self.selectionChanged.emit(part)

    # -- editing -------------------------------------------------------------------------

    def edit(self, function: Callable[..., Any], *args: Any, label: str,
             merge_key: object = None, **kwargs: Any) -> bool:
        """Apply a pure edit from :mod:`resnet_gui.arch.edits`; a refusal becomes a message."""
        try:
            return self.document.edit(function, *args, label=label, merge_key=merge_key, **kwargs)
        except UserError as error:
            self.message.emit(str(error))
            return False

    def undo(self) -> bool:
        try:
            return self.document.undo()
        except UserError as error:
            self.message.emit(str(error))
            return False

    def redo(self) -> bool:
        try:
            return self.document.redo()
        except UserError as error:
            self.message.emit(str(error))
            return False

    def delete_selection(self) -> bool:
        part = self.selection
        if part is None:
            self.message.emit("Select a stage or a block to delete it.")
            return False
        return self.edit(edits.delete_part, part, label=f"Delete {part.describe(self.arch)}")

    def duplicate_selection(self) -> bool:
        part = self.selection
        if part is None:
            self.message.emit("Select a stage or a block to duplicate it.")
            return False
        return self.edit(edits.duplicate_part, part, label=f"Duplicate {part.describe(self.arch)}")

    def set_locked(self, locked: bool, reason: str = "") -> None:
        self.document.set_locked(locked, reason)

    # -- reacting to the document --------------------------------------------------------

    def _on_document(self, document: Document, change: Change) -> None:
        if change.kind == LOCK:
            self.lockChanged.emit(document.locked, document.locked_reason)
            self.documentChanged.emit(change)
            return
        if change.kind == SAVED:
            self.documentChanged.emit(change)
            return
        if change.kind == RESET:
            self._before_arch = None
        elif change.kind in (EDIT, UNDO, REDO) and not change.merged:
            self._before_arch = self._last_arch
        self._last_arch = document.arch
        # The selection follows the document before anyone hears of the change, so no view
        # ever sees a selection that points past the end of the new architecture.
        previous = self.selection
        if change.selection is not None:
            self.selection = change.selection
        if change.kind == RESET or not edits.part_exists(document.arch, self.selection):
            self.selection = None
        self.documentChanged.emit(change)
        if self.selection != previous:
            self.selectionChanged.emit(self.selection)
        self._refresh_analysis()

    def _refresh_analysis(self) -> None:
        arch = self.arch
        self.requested_at = time.perf_counter()
        cached = self._results.get(arch)
        if cached is not None:
            self._results.move_to_end(arch)
            self.runner.cancel()
            self._show(*cached)
            return
        try:
            validate(arch)
        except ArchitectureError as error:
            # A request still waiting is left to finish: its figures are the last valid ones.
            self._remember(arch, None, error)
            self._show(None, error)
            return
        self.runner.request(arch)

    def _remember(self, arch: Architecture, analysis: Any, error: Any) -> None:
        self._results[arch] = (analysis, error)
        self._results.move_to_end(arch)
        while len(self._results) > self.CACHE_SIZE:
            self._results.popitem(last=False)

    @Slot(int, object, object, object)
    def _on_analysis(self, generation: int, arch: Architecture, analysis: Any, error: Any) -> None:
        if arch is not None:
            self._remember(arch, analysis, error)
        if generation != self.runner.generation:
            return  # an older version's result: a newer request is on its way
        if arch == self.arch:
            self._show(analysis, error)
        elif analysis is not None and self.problem is not None:
            # The current version failed validation; show the newest valid figures, greyed.
            self.analysis = analysis
            self.analysisChanged.emit()

    def _show(self, analysis: Any, error: ArchitectureError | None) -> None:
        if analysis is not None:
            self.analysis = analysis
        self.problem = error
        self.problem_part = edits.part_for_path(error.path, self.arch) if error else None
        self.shown_at = time.perf_counter()
        self.analysisChanged.emit()

    def shutdown(self) -> None:
        """Wait for a running analysis so that no worker outlives the window."""
        self.runner.cancel()
        self.runner.wait(10000)
        self.runner.close()
