"""The Lab tab (issue 11): three experiments that show why residual connections work, each a
thin view over :mod:`resnet_gui.engine.lab` running on a helper thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from resnet_gui.qt.lab.context import LabContext
from resnet_gui.qt.lab.degradation_view import DegradationView
from resnet_gui.qt.lab.landscape_view import LandscapeView
from resnet_gui.qt.lab.lesion_view import LesionView


class LabTab(QWidget):
    def __init__(self, context: LabContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("labTab")
        self.degradation = DegradationView(context)
        self.lesion = LesionView(context)
        self.landscape = LandscapeView(context)
        self.views = QTabWidget()
        self.views.setObjectName("labViews")
        self.views.addTab(self.degradation, "Degradation (He et al. 2015)")
        self.views.addTab(self.lesion, "Lesion study (Veit et al. 2016)")
        self.views.addTab(self.landscape, "Loss landscape (Li et al. 2018)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.views)

    @property
    def busy(self) -> bool:
        return any(view.worker.busy for view in (self.degradation, self.lesion, self.landscape))

    def shutdown(self) -> None:
        """Cancel what runs and wait for it (a training run saves its checkpoint first)."""
        for view in (self.degradation, self.lesion, self.landscape):
            view.worker.cancel()
        for view in (self.degradation, self.lesion, self.landscape):
            view.worker.wait()


class _StopOnClose(QObject):
    def __init__(self, tab: LabTab, window: QWidget) -> None:
        super().__init__(window)
        self.tab, self.window = tab, window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.tab.shutdown()
        return False


def lab_context(window: Any) -> LabContext:
    """The window's data folder and the training session's run store and run list."""
    tabs = getattr(window, "training_tabs", None)
    session = tabs.session if tabs is not None else None
    folder = getattr(window, "data_folder", None)
    return LabContext(
        data_folder=folder if callable(folder) else (lambda: None),
        store=lambda: session.store if session is not None else None,
        runs_changed=(session.runs_changed.emit if session is not None else (lambda: None)),
        training_live=lambda: bool(session is not None and session.active),
    )


def install_lab_tab(window: Any) -> LabTab:
    """Add the Lab tab to ``window`` (after the Train and Inspect tabs, whose run list it
    shares) and stop its experiments when the window closes."""
    tab = LabTab(lab_context(window))
    window.lab_tab = tab
    window.add_panel(tab, "Lab")
    window.installEventFilter(_StopOnClose(tab, window))
    return tab
