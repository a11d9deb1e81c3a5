"""The main window: the frame around the tabs. It holds the menus, the toolbar, the tabs and
the status bar, and wires the tabs together; each tab's own work lives in its package.

The frame owns the architecture document and the settings. The Build tab
(:mod:`resnet_gui.qt.build`) edits the document; the Train and Inspect tabs are added with
:meth:`MainWindow.add_panel` by :mod:`resnet_gui.qt.training_tabs`. The File menu's commands
are in :mod:`resnet_gui.qt.files` and :mod:`resnet_gui.qt.export`.
"""

from __future__ import annotations

import gc
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QToolBar,
    QWidget,
)

from resnet_gui import __version__
from resnet_gui.arch.document import Document
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.resolve import locate_architecture
from resnet_gui.qt import checkpoints, files
from resnet_gui.qt.build.actions import BuildActions
from resnet_gui.qt.build.tab import BuildTab
from resnet_gui.qt.export import Exports
from resnet_gui.qt.shared.collector import GuiThreadCollector
from resnet_gui.qt.shared import formatting
from resnet_gui.qt.shared.datasets import DEFAULT_DATASET, DatasetChoice, dataset_named
from resnet_gui.qt.shared.field_undo import FieldUndo
from resnet_gui.qt.shared.icons import icon
from resnet_gui.qt.shared.settings import app_settings
from resnet_gui.qt.shared.widgets import make_action

DEFAULT_PRESET = "d2l-resnet18"
DEFAULT_SIZE = QSize(1600, 1000)


def load_architecture(name_or_path: str, dataset: DatasetChoice = DEFAULT_DATASET) -> tuple[
        Architecture, Path | None]:
    """A preset (built for ``dataset``) or an architecture JSON file, read as the command
    line reads ARCH."""
    return locate_architecture(name_or_path, dataset=dataset)


def fill_menu(menu: QMenu | QToolBar, entries) -> None:
    """Add actions and submenus in order; None is a separator."""
    for entry in entries:
        if entry is None:
            menu.addSeparator()
        elif isinstance(entry, QMenu):
            menu.addMenu(entry)
        else:
            menu.addAction(entry)


class MainWindow(QMainWindow):
    """The application window. ``window.document`` is the architecture being edited."""

    datasetChanged = Signal(str)
    dataFolderChanged = Signal(str)
    exportFinished = Signal(str, str)  # path, error sentence ("" when it worked)

    def __init__(self, arch: Architecture, path: Path | None = None,
                 settings: QSettings | None = None, dataset: DatasetChoice | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else app_settings()
        self.document = Document(arch, path)
        self._frozen_after_first_analysis = False
        self._collector = GuiThreadCollector(self)
        self.quiet_errors = False  # tests: report errors in the status bar only, no dialogs
        self.setWindowIcon(icon("app"))
        self.setDocumentMode(True)
        self.build_tab = BuildTab(self.document, dataset or dataset_named(
            self.settings.value("data/dataset", "", str)))
        self._name_the_build_tab_parts()
        self.files = files.DocumentFiles(self)
        self.exports = Exports(self)
        self.exports.finished.connect(self.exportFinished)
        self.build_actions = BuildActions(self.build_tab, self)
        self._build_frame_actions()
        self._build_tabs()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect_the_build_tab()
        self._on_document_changed()
        self._on_analysis()
        self._restore_settings()
        # Ctrl+Z undoes the network's last edit from any field whose value was applied.
        self.field_undo = FieldUndo((self.build_actions.undo, self.build_actions.redo), self)
        self.field_undo.watch(self)
        self.setAcceptDrops(True)  # checkpoints, architectures and images (qt/checkpoints.py)

    def _name_the_build_tab_parts(self) -> None:
        """The Build tab's parts as the window's attributes (tests, benchmarks, the status bar)."""
        build = self.build_tab
        self.controller = build.controller
        self.canvas = build.canvas
        self.inspector = build.inspector
        self.lock_banner = build.lock_banner
        self.palette_widget = build.palette_widget
        self.table_panel = build.table_panel
        self.layer_table = build.table_panel.table
        self.totals_label = build.table_panel.totals_label
        self.main_splitter = build.main_splitter
        self.centre_splitter = build.centre_splitter
        self.dataset_combo = build.input_bar.dataset_combo
        self.input_spin = build.input_bar.input_spin

    # -- layout --------------------------------------------------------------------------

    def _build_frame_actions(self) -> None:
        self.data_folder_action = make_action(self, "&Data folder…", self.choose_data_folder,
                                              tip="Where datasets are downloaded and kept")
        self.quit_action = make_action(self, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.about_action = make_action(self, "&About resnet-gui", self.about)
        self.getting_started_action = make_action(
            self, "&Getting started", lambda: self.show_help("getting-started"),
            QKeySequence.StandardKey.HelpContents, "What to do first, tab by tab",
            name="gettingStartedAction")
        self.shortcuts_action = make_action(
            self, "&Keyboard shortcuts", lambda: self.show_help("shortcuts"),
            QKeySequence("Ctrl+/"), "Every key the window knows", name="shortcutsAction")
        self.export_py_action = self.exports.python_action
        self.export_onnx_action = self.exports.onnx_action
        self.preset_menu = self.files.preset_menu
        self.recent_menu = self.files.recent_menu

    def _build_tabs(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.setTabBarAutoHide(True)  # one tab: no tab bar; Train/Inspect bring it back
        self.tabs.addTab(self.build_tab, icon("stage"), "Build")
        self.setCentralWidget(self.tabs)
        self.build_tab.apply_default_proportions(DEFAULT_SIZE)

    def add_panel(self, widget: QWidget, title: str, panel_icon: QIcon | None = None) -> int:
        """Add a tab beside "Build" (the training and inspection panels); returns its index."""
        if hasattr(self, "field_undo"):
            self.field_undo.watch(widget)
        if panel_icon is None:
            return self.tabs.addTab(widget, title)
        return self.tabs.addTab(widget, panel_icon, title)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        documents = self.files
        file_menu = bar.addMenu("&File")
        fill_menu(file_menu, (documents.new_action, documents.preset_menu, None,
                              documents.open_action, documents.recent_menu,
                              documents.save_action, documents.save_as_action, None))
        self.export_menu = file_menu.addMenu("&Export")  # the Train tab adds its exports
        self.export_menu.setObjectName("exportMenu")
        fill_menu(self.export_menu, (self.export_py_action, self.export_onnx_action,
                                     self.exports.canvas_action))
        fill_menu(file_menu, (None, self.data_folder_action, None, self.quit_action))
        fill_menu(bar.addMenu("&Edit"), self.build_actions.edit_menu)
        fill_menu(bar.addMenu("&View"), self.build_actions.view_menu)
        fill_menu(bar.addMenu("&Help"), (self.getting_started_action, self.shortcuts_action,
                                          None, self.about_action))

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setIconSize(QSize(18, 18))
        fill_menu(toolbar, (self.files.new_action, self.files.open_action,
                            self.files.save_action, None, *self.build_actions.toolbar, None))
        toolbar.addWidget(self.build_tab.input_bar)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.status_totals = QLabel()
        self.status_totals.setObjectName("statusTotals")
        self.status_state = QLabel()
        self.status_state.setObjectName("analysisState")
        status.addPermanentWidget(self.status_state)
        status.addPermanentWidget(self.status_totals)

    # -- reacting to the Build tab -------------------------------------------------------

    def _connect_the_build_tab(self) -> None:
        controller = self.controller
        controller.documentChanged.connect(self._on_document_changed)
        controller.analysisChanged.connect(self._on_analysis)
        controller.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        controller.lockChanged.connect(lambda locked, _reason: self.files.set_locked(locked))
        self.canvas.hoverMessage.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.build_tab.input_bar.datasetChanged.connect(self._on_dataset_changed)

    def _on_document_changed(self, *_args) -> None:
        document = self.document
        self.setWindowModified(document.is_modified)
        self.setWindowTitle(f"{document.display_name}[*] — resnet-gui")

    def _on_dataset_changed(self, name: str) -> None:
        self.settings.setValue("data/dataset", name)
        self.datasetChanged.emit(name)

    def _on_analysis(self) -> None:
        controller = self.controller
        analysis = controller.analysis
        if analysis is not None and not self._frozen_after_first_analysis:
            # The first analysis (on a thread in this process) leaves torch's caches behind;
            # freeze them too, so that garbage collections never walk them (see app.py).
            self._frozen_after_first_analysis = True
            gc.freeze()
        if controller.problem is not None:
            self.status_state.setText("<span style='color:#b91c1c'>● invalid</span>")
            self.status_state.setToolTip(str(controller.problem))
        elif not controller.analysis_is_current:
            self.status_state.setText("<span style='color:#9aa3b2'>● analysing…</span>")
            self.status_state.setToolTip("")
        else:
            self.status_state.setText("<span style='color:#047857'>● ready</span>")
            self.status_state.setToolTip("Shapes and counts are up to date")
        if analysis is not None:
            self.status_totals.setText(
                f"{formatting.count(analysis.total_params)} parameters · "
                f"{formatting.short(analysis.total_macs)} multiply-adds · "
                f"{formatting.size_in_bytes(analysis.activation_bytes)} per example")

    # -- what the other tabs, tests and benchmarks ask of the window ---------------------

    @property
    def dataset(self) -> DatasetChoice:
        return self.build_tab.input_bar.dataset

    def set_dataset(self, name: str) -> None:
        """Choose the dataset: it sets the network's input channels and classes (undoable)."""
        self.build_tab.input_bar.set_dataset(name)

    def set_locked(self, locked: bool, reason: str = "") -> None:
        """Lock editing while a training run is live (``reason`` is shown to the user)."""
        self.controller.set_locked(locked, reason or "a training run is live")

    def new_from_preset(self, name: str) -> bool:
        return self.files.new_from_preset(name)

    def open_file(self, path: str | Path, ask: bool = True) -> bool:
        return self.files.open_file(path, ask)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        checkpoints.drag_enter(self, event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        checkpoints.drop(self, event)

    def save(self) -> bool:
        return self.files.save()

    def save_to(self, path: str | Path) -> bool:
        return self.files.save_to(path)

    def maybe_save(self) -> bool:
        return self.files.maybe_save()

    def recent_files(self) -> list[str]:
        return self.files.recent_files()

    def export_to(self, kind: str, path: str | Path) -> bool:
        """Export on a worker thread; ``exportFinished(path, error)`` says when it is done."""
        return self.exports.export_to(kind, path)

    # -- questions and messages (tests replace the questions) ----------------------------

    def ask_unsaved_changes(self) -> str:
        """'save', 'discard' or 'cancel'."""
        return files.ask_unsaved_changes(self, self.document)

    def ask_open_path(self) -> str:
        return files.ask_open_path(self, files.last_folder(self.settings))

    def ask_save_path(self, title: str = "Save architecture", suffix: str = ".json",
                      file_filter: str = files.SAVE_FILTER) -> str:
        suggested = str(Path(files.last_folder(self.settings)) / f"{self.document.arch.name}{suffix}")
        return files.ask_save_path(self, suggested, title, suffix, file_filter)

    def show_error(self, error: Exception) -> None:
        self.statusBar().showMessage(str(error), 10000)
        if not self.quiet_errors:
            QMessageBox.warning(self, "resnet-gui", str(error))

    def show_help(self, page: str):
        """Open a help page ("getting-started" or "shortcuts"); returns its dialog."""
        from resnet_gui.qt.help import show_help

        return show_help(self, page)

    def about(self) -> None:
        QMessageBox.about(
            self, "About resnet-gui",
            f"<b>resnet-gui {__version__}</b><p>Build, analyse, train and inspect residual "
            "networks, after the D2L chapter on ResNets.</p>")

    # -- the data folder -----------------------------------------------------------------

    def data_folder(self) -> str:
        """Where datasets are kept: the folder chosen in File > Data folder, else the engine's
        rule (``RESNET_GUI_DATA``, else the per-user data folder)."""
        from resnet_gui.engine.data import default_data_dir

        return str(default_data_dir(self.settings.value("data/folder", "", str) or None))

    def choose_data_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.data_folder())
        if folder:
            self.set_data_folder(folder)

    def set_data_folder(self, folder: str) -> None:
        self.settings.setValue("data/folder", folder)
        self.statusBar().showMessage(f"Datasets will be kept in {folder}", 5000)
        self.dataFolderChanged.emit(folder)

    # -- settings and closing ------------------------------------------------------------

    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:  # 1600 x 1000, or nine tenths of a smaller screen
            screen = self.screen().availableGeometry() if self.screen() else None
            size = DEFAULT_SIZE if screen is None else DEFAULT_SIZE.boundedTo(
                QSize(int(screen.width() * 0.9), int(screen.height() * 0.9)))
            self.resize(size)
            self.build_tab.apply_default_proportions(size)
        self.build_tab.restore_state(self.settings)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.build_tab.save_state(self.settings)
        self.settings.setValue("data/dataset", self.dataset.name)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.save_settings()
        self.controller.shutdown()
        self.exports.wait()  # an export writes its file before the window goes
        event.accept()

    def wait_until_settled(self, timeout_s: float = 30.0) -> bool:
        """Process events until the analysis of the current version is shown (screenshots,
        tests)."""
        import time

        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            QApplication.processEvents()
            if self.controller.is_settled and not self.table_panel.refresh_pending:
                QApplication.processEvents()
                return True
            time.sleep(0.005)
        return False
