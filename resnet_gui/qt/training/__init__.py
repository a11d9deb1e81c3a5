"""The training and inspection half of the window (issue 5).

:func:`install_training_panels` adds a Train tab and an Inspect tab to the editor's main
window. The window provides ``add_panel(widget, title)``, ``document`` (the undo/redo
architecture document) and ``set_locked(locked, reason)``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from resnet_gui.engine.runs import RunStore
from resnet_gui.qt.training.inspect_panel import InspectPanel
from resnet_gui.qt.training.panel import TrainingPanel
from resnet_gui.qt.training.session import ArchitectureLink, TrainingSession
from resnet_gui.qt.training.worker import running_training_threads

__all__ = [
    "InspectPanel", "TrainingPanel", "TrainingSession", "install_training_panels",
    "running_training_threads",
]


class CloseGuard(QObject):
    """Closing the window mid-run: ask, stop, wait for the thread; the checkpoint stays."""

    def __init__(self, session: TrainingSession, panel: TrainingPanel, window: QWidget) -> None:
        super().__init__(window)
        self.session, self.panel, self.window = session, panel, window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if watched is self.window and event.type() == QEvent.Type.Close and self.session.active:
            if not self.confirm():
                event.ignore()
                return True
            self.panel.show_note("Stopping the run and saving its checkpoint…")
            self.session.shutdown()
        return False

    def confirm(self) -> bool:
        answer = QMessageBox.question(
            self.window, "Training in progress",
            "A training run is live. Stop it and close the window?\n\n"
            "The run stops after the current batch; its checkpoint and curves are kept in "
            "the run list.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes


def document_link(window: Any) -> ArchitectureLink:
    """The session's view of the window's document: read, apply (undoable), lock, listen."""
    document = window.document

    def subscribe(callback) -> None:
        document.add_listener(lambda _document, _change: callback())

    return ArchitectureLink(
        get=lambda: window.document.arch,
        set=lambda arch, label: window.document.apply(arch, label),
        lock=window.set_locked,
        subscribe=subscribe,
    )


def install_training_panels(window: Any, store: RunStore | None = None,
                            trainer_factory=None, data_loader=None) -> None:
    """Add the Train and Inspect tabs to ``window`` and guard its closing.

    ``store`` (default: the per-user runs folder), ``trainer_factory`` and ``data_loader``
    are for tests and benchmarks.
    """
    session = TrainingSession(document_link(window), store, parent=window,
                              trainer_factory=trainer_factory, data_loader=data_loader)
    panel = TrainingPanel(session)
    inspect = InspectPanel(session, panel.form.recipe)
    window.add_panel(panel, "Train")
    window.add_panel(inspect, "Inspect")
    window.installEventFilter(CloseGuard(session, panel, window))
