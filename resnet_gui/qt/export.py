"""File > Export: the network as PyTorch code or as an ONNX model, written on a worker thread
(tracing for ONNX takes seconds) while the window stays responsive; and the Build canvas as a
PNG or SVG picture, drawn at once on the GUI thread (a scene is drawn where it lives)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox

from resnet_gui.arch.model import Architecture
from resnet_gui.errors import UserError
from resnet_gui.qt.files import last_folder
from resnet_gui.qt.shared.widgets import make_action

if TYPE_CHECKING:
    from resnet_gui.qt.main_window import MainWindow

# kind: (suffix, dialog title, file filter)
EXPORT_KINDS = {
    "py": (".py", "Export as PyTorch code", "Python (*.py)"),
    "onnx": (".onnx", "Export as ONNX", "ONNX model (*.onnx)"),
}


class Exports(QObject):
    """``exportPythonAction`` and ``exportOnnxAction``; one export at a time."""

    finished = Signal(str, str)  # path, error sentence ("" when it worked)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._job: _ExportJob | None = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._bridge = _ExportBridge(self)
        self._bridge.done.connect(self._on_done)
        self.python_action = make_action(window, "Export as &PyTorch code…",
                                         lambda: self.export_dialog("py"),
                                         tip="Write a Python file that builds this network",
                                         name="exportPythonAction")
        self.onnx_action = make_action(window, "Export as &ONNX…",
                                       lambda: self.export_dialog("onnx"),
                                       tip="Write the network as an ONNX model",
                                       name="exportOnnxAction")
        self.canvas_action = make_action(window, "&Canvas as PNG or SVG…",
                                         self.export_canvas_dialog,
                                         tip="Save the network's cards as a picture for "
                                             "slides and papers",
                                         name="exportCanvasAction")

    def export_dialog(self, kind: str) -> None:
        suffix, title, file_filter = EXPORT_KINDS[kind]
        path = self.window.ask_save_path(title, suffix, file_filter)
        if path:
            self.export_to(kind, path)

    def export_canvas_dialog(self) -> None:
        from resnet_gui.qt.shared.picture_export import PICTURE_FILTER, ask_export_path

        suggested = str(Path(last_folder(self.window.settings))
                        / f"{self.window.document.arch.name}.png")
        path = ask_export_path(self.window, "Export the canvas", suggested, PICTURE_FILTER)
        if path:
            self.export_canvas(path)

    def export_canvas(self, path: str | Path) -> bool:
        """Draw the Build canvas into ``path`` (.png or .svg); True when written. A problem
        is one sentence in the status bar (and a message box)."""
        from resnet_gui.qt.build.canvas_export import canvas_picture
        from resnet_gui.qt.shared.picture_export import picture_format, write_picture

        try:
            write_picture(path, canvas_picture(self.window.canvas, picture_format(path)))
        except UserError as problem:
            self.window.show_error(problem)
            return False
        self.window.statusBar().showMessage(f"Exported the canvas to {path}", 8000)
        return True

    def export_to(self, kind: str, path: str | Path) -> bool:
        """Start writing ``path``; ``finished(path, error)`` says when it is done, and the
        window says so too. False if an export is still running."""
        status = self.window.statusBar()
        if self._job is not None:
            status.showMessage("An export is still running; wait for it to finish.", 5000)
            return False
        arch = self.window.document.arch
        status.showMessage(f"Exporting {arch.name} to {path}…")
        self._set_enabled(False)
        self._job = _ExportJob(self._bridge, arch, kind, str(path))
        self._pool.start(self._job)
        return True

    def wait(self) -> None:
        """Block until a running export has written its file (the window is closing)."""
        self._pool.waitForDone()

    def _set_enabled(self, enabled: bool) -> None:
        self.python_action.setEnabled(enabled)
        self.onnx_action.setEnabled(enabled)

    def _on_done(self, path: str, error: str) -> None:
        self._job = None
        self._set_enabled(True)
        status = self.window.statusBar()
        if error:
            status.showMessage(f"Export failed: {error}", 10000)
            if not self.window.quiet_errors:
                QMessageBox.warning(self.window, "Export failed", error)
        else:
            status.showMessage(f"Exported {path}", 8000)
        self.finished.emit(path, error)


class _ExportBridge(QObject):
    done = Signal(str, str)


class _ExportJob(QRunnable):
    """Writes one export file off the GUI thread; a user mistake comes back as its sentence."""

    def __init__(self, bridge: _ExportBridge, arch: Architecture, kind: str, path: str) -> None:
        super().__init__()
        self.bridge, self.arch, self.kind, self.path = bridge, arch, kind, path

    def run(self) -> None:
        error = ""
        try:
            from resnet_gui.engine.export import export

            export(self.arch, self.kind, self.path)
        except UserError as problem:
            error = str(problem)
        except Exception as bug:  # a bug in export must not take the window down
            error = f"the export failed unexpectedly ({type(bug).__name__}: {bug})"
        self.bridge.done.emit(self.path, error)
