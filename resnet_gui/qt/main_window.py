"""The main window: menus, toolbar, the Build tab (palette, canvas, layer table, inspector)
and the status bar.

The central area is a tab widget whose first tab is the editor; the training and inspection
panels are added with :meth:`MainWindow.add_panel`.
"""

from __future__ import annotations

import gc
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QRunnable, QSettings, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QSplitter,
    QStyle,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from resnet_gui import __version__
from resnet_gui.errors import UserError
from resnet_gui.qt.shared import formatting
from resnet_gui.qt.build.canvas import ArchitectureCanvas
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.shared.datasets import DATASETS, DEFAULT_DATASET, DatasetChoice, dataset_named
from resnet_gui.qt.shared.icons import icon
from resnet_gui.qt.build.inspector import Inspector
from resnet_gui.qt.build.layer_table import LayerTablePanel
from resnet_gui.qt.build.mime import BLOCK, HEAD, SHORTCUT, STAGE, STEM, Payload
from resnet_gui.qt.build.palette import BlockPalette
from resnet_gui.arch import edits, serialize
from resnet_gui.arch.document import Document
from resnet_gui.arch.edits import Part
from resnet_gui.arch.model import MAX_INPUT_SIZE, Architecture
from resnet_gui.arch.presets import PRESETS, build_preset
from resnet_gui.arch.resolve import locate_architecture

ORGANISATION = "resnet-gui"
APPLICATION = "resnet-gui"
DEFAULT_PRESET = "d2l-resnet18"
DEFAULT_SIZE = QSize(1600, 1000)
MAX_RECENT = 8
FILE_FILTER = "Architecture JSON (*.json);;All files (*)"


def app_settings() -> QSettings:
    """The app's settings (INI, per user). Tests redirect them with QSettings.setPath."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION,
                     APPLICATION)


def load_architecture(name_or_path: str, dataset: DatasetChoice = DEFAULT_DATASET) -> tuple[
        Architecture, Path | None]:
    """A preset (built for ``dataset``) or an architecture JSON file, read as the command
    line reads ARCH."""
    return locate_architecture(name_or_path, dataset=dataset)


class PresetDialog(QDialog):
    """New from preset: every preset with its one-line description."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from preset")
        self.list = QListWidget()
        self.list.setObjectName("presetList")
        self.list.setIconSize(QSize(24, 24))
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        for name, preset in PRESETS.items():
            item = QListWidgetItem(icon(f"block-{preset.block}"), f"{name}\n{preset.description}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(preset.description)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda *_: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Start from a named architecture. Channels and classes follow "
                                "the dataset chosen in the toolbar."))
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(640, 520)

    def chosen(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else ""


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
        self.dataset = dataset or dataset_named(self.settings.value("data/dataset", "", str))
        self.document = Document(arch, path)
        self._frozen_after_first_analysis = False
        self.quiet_errors = False  # tests: report errors in the status bar only, no dialogs
        self._export_job: _ExportJob | None = None
        self._export_pool = QThreadPool(self)
        self._export_pool.setMaxThreadCount(1)
        self._export_bridge = _ExportBridge(self)
        self._export_bridge.done.connect(self._on_export_done)
        self.controller = EditorController(self.document, parent=self)
        self.setWindowIcon(icon("app"))
        self.setDocumentMode(True)
        self._build_editor()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.controller.documentChanged.connect(self._on_document_changed)
        self.controller.analysisChanged.connect(self._on_analysis)
        self.controller.selectionChanged.connect(lambda *_: self._update_actions())
        self.controller.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.controller.lockChanged.connect(self._on_lock)
        self.canvas.hoverMessage.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self._on_document_changed()
        self._on_analysis()
        self._restore_settings()

    # -- layout --------------------------------------------------------------------------

    def _build_editor(self) -> None:
        self.palette_widget = BlockPalette()
        self.palette_widget.partActivated.connect(self.add_part)
        self.canvas = ArchitectureCanvas(self.controller)
        self.lock_banner = QLabel()
        self.lock_banner.setObjectName("lockBanner")
        self.lock_banner.setWordWrap(True)
        self.lock_banner.setStyleSheet(
            "QLabel { color: #7a4a0c; background: #fdf0dc; border-bottom: 1px solid #f0c68a;"
            " padding: 5px 10px; }")
        self.lock_banner.hide()
        canvas_box = QWidget()
        canvas_layout = QVBoxLayout(canvas_box)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.setSpacing(0)
        canvas_layout.addWidget(self.lock_banner)
        canvas_layout.addWidget(self.canvas, 1)
        self.table_panel = LayerTablePanel(self.controller)
        self.layer_table = self.table_panel.table
        self.totals_label = self.table_panel.totals_label
        self.inspector = Inspector(self.controller)

        self.centre_splitter = QSplitter(Qt.Orientation.Vertical)
        self.centre_splitter.setObjectName("centreSplitter")
        self.centre_splitter.addWidget(canvas_box)
        self.centre_splitter.addWidget(self.table_panel)
        self.centre_splitter.setStretchFactor(0, 3)
        self.centre_splitter.setStretchFactor(1, 2)
        self.centre_splitter.setChildrenCollapsible(False)

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(self.palette_widget)
        self.main_splitter.addWidget(self.centre_splitter)
        self.main_splitter.addWidget(self.inspector)
        self.main_splitter.setStretchFactor(0, 0)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setStretchFactor(2, 0)
        self.main_splitter.setChildrenCollapsible(False)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.setTabBarAutoHide(True)  # one tab: no tab bar; Train/Inspect bring it back
        self.tabs.addTab(self.main_splitter, icon("stage"), "Build")
        self.setCentralWidget(self.tabs)
        self._apply_default_proportions(DEFAULT_SIZE)

    def _apply_default_proportions(self, size: QSize) -> None:
        unit = self.fontMetrics().averageCharWidth()
        palette = max(200, 27 * unit)
        inspector = max(340, 44 * unit)
        self.main_splitter.setSizes([palette, max(400, size.width() - palette - inspector),
                                     inspector])
        height = size.height() - 120
        self.centre_splitter.setSizes([int(height * 0.58), int(height * 0.42)])

    def add_panel(self, widget: QWidget, title: str, panel_icon: QIcon | None = None) -> int:
        """Add a tab beside "Build" (the training and inspection panels); returns its index."""
        if panel_icon is None:
            return self.tabs.addTab(widget, title)
        return self.tabs.addTab(widget, panel_icon, title)

    # -- actions -------------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut=None, tip: str = "", standard_icon=None,
                name: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if standard_icon is not None:
            action.setIcon(self.style().standardIcon(standard_icon))
        if name:
            action.setObjectName(name)
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        pixmap = QStyle.StandardPixmap
        self.new_action = self._action("&New from preset…", self.new_from_preset_dialog,
                                       QKeySequence.StandardKey.New,
                                       "Start from a named architecture", pixmap.SP_FileIcon,
                                       "newAction")
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open,
                                        "Open an architecture JSON file",
                                        pixmap.SP_DialogOpenButton, "openAction")
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save,
                                        "Save the architecture as JSON",
                                        pixmap.SP_DialogSaveButton, "saveAction")
        self.save_as_action = self._action("Save &As…", self.save_as_dialog,
                                           QKeySequence.StandardKey.SaveAs,
                                           "Save the architecture under a new name",
                                           name="saveAsAction")
        self.export_py_action = self._action("Export as &PyTorch code…",
                                             lambda: self.export_dialog("py"),
                                             tip="Write a Python file that builds this network",
                                             name="exportPythonAction")
        self.export_onnx_action = self._action("Export as &ONNX…",
                                               lambda: self.export_dialog("onnx"),
                                               tip="Write the network as an ONNX model",
                                               name="exportOnnxAction")
        self.data_folder_action = self._action("&Data folder…", self.choose_data_folder,
                                               tip="Where datasets are downloaded and kept")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = self._action("&Undo", self.controller.undo, QKeySequence("Ctrl+Z"),
                                        "Undo the last edit", pixmap.SP_ArrowBack, "undoAction")
        self.redo_action = self._action("&Redo", self.controller.redo,
                                        QKeySequence("Ctrl+Shift+Z"), "Redo the edit undone",
                                        pixmap.SP_ArrowForward, "redoAction")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.delete_action = self._action("&Delete", self.controller.delete_selection,
                                          QKeySequence.StandardKey.Delete,
                                          "Remove the selected stage or blocks",
                                          pixmap.SP_TrashIcon, "deleteAction")
        self.delete_action.setShortcuts([QKeySequence(Qt.Key.Key_Delete),
                                         QKeySequence(Qt.Key.Key_Backspace)])
        self.duplicate_action = self._action("D&uplicate", self.controller.duplicate_selection,
                                             QKeySequence("Ctrl+D"),
                                             "Duplicate the selected stage, or add one more "
                                             "block like the selected one", name="duplicateAction")
        self.add_stage_action = self._action("Add &stage", lambda: self.add_part(STAGE, ""),
                                             tip="Append a stage that doubles the width",
                                             name="addStageAction")
        self.select_none_action = self._action("Select &none", lambda: self.controller.select(None),
                                               QKeySequence(Qt.Key.Key_Escape))
        self.fit_action = self._action("&Fit to window", self.canvas.fit, QKeySequence("Ctrl+0"),
                                       "Scale the canvas to fit")
        self.zoom_in_action = self._action("Zoom &in", lambda: self.canvas.zoom(1.15),
                                           QKeySequence.StandardKey.ZoomIn)
        self.zoom_out_action = self._action("Zoom &out", lambda: self.canvas.zoom(1 / 1.15),
                                            QKeySequence.StandardKey.ZoomOut)
        self.unfold_action = self._action("&Unfold all repeated blocks",
                                          lambda: self.canvas.expand_all(True))
        self.fold_action = self._action("F&old repeated blocks",
                                        lambda: self.canvas.expand_all(False))
        self.expand_table_action = self._action("&Expand all table rows",
                                                lambda: self.table_panel.set_all_expanded(True))
        self.collapse_table_action = self._action(
            "&Collapse all table rows", lambda: self.table_panel.set_all_expanded(False))
        self.about_action = self._action("&About resnet-gui", self.about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_action)
        self.preset_menu = file_menu.addMenu("New from p&reset")
        self.preset_menu.setObjectName("presetMenu")
        self.preset_menu.setToolTipsVisible(True)
        for name, preset in PRESETS.items():
            action = self.preset_menu.addAction(icon(f"block-{preset.block}"), name)
            action.setToolTip(preset.description)
            action.setStatusTip(f"{name}: {preset.description}")
            action.setData(name)
            action.triggered.connect(lambda _=False, chosen=name: self.new_from_preset(chosen))
        file_menu.addSeparator()
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.save_as_action)
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export")
        export_menu.addAction(self.export_py_action)
        export_menu.addAction(self.export_onnx_action)
        file_menu.addSeparator()
        file_menu.addAction(self.data_folder_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit_menu = bar.addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, None, self.delete_action,
                       self.duplicate_action, self.add_stage_action, None,
                       self.select_none_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)

        view_menu = bar.addMenu("&View")
        for action in (self.fit_action, self.zoom_in_action, self.zoom_out_action, None,
                       self.unfold_action, self.fold_action, None, self.expand_table_action,
                       self.collapse_table_action):
            view_menu.addSeparator() if action is None else view_menu.addAction(action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setIconSize(QSize(18, 18))
        for action in (self.new_action, self.open_action, self.save_action, None,
                       self.undo_action, self.redo_action, None, self.delete_action,
                       self.duplicate_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        toolbar.addSeparator()
        self.dataset_combo = QComboBox()
        self.dataset_combo.setObjectName("datasetCombo")
        self.dataset_combo.setToolTip("The dataset fixes the input channels and the classes")
        for choice in DATASETS:
            self.dataset_combo.addItem(choice.name, choice.name)
            self.dataset_combo.setItemData(self.dataset_combo.count() - 1, choice.description,
                                           Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.currentIndexChanged.connect(self._on_dataset_chosen)
        self.input_spin = QSpinBox()
        self.input_spin.setObjectName("inputSizeSpin")
        self.input_spin.setRange(1, MAX_INPUT_SIZE)
        self.input_spin.setSuffix(" px")
        self.input_spin.setKeyboardTracking(False)
        self.input_spin.setToolTip("Height and width the images are resized to before the "
                                   "network (the chapter uses 96 for Fashion-MNIST)")
        self.input_spin.valueChanged.connect(self._on_input_size)
        self.input_note = QLabel()
        self.input_note.setStyleSheet("QLabel { color: #5b6474; padding-left: 6px; }")
        dataset_box = QWidget()
        row = QHBoxLayout(dataset_box)
        row.setContentsMargins(6, 0, 6, 0)
        row.addWidget(QLabel("Dataset"))
        row.addWidget(self.dataset_combo)
        row.addSpacing(10)
        row.addWidget(QLabel("Input"))
        row.addWidget(self.input_spin)
        row.addWidget(self.input_note)
        toolbar.addWidget(dataset_box)
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

    # -- reacting ------------------------------------------------------------------------

    def _on_document_changed(self, *_args) -> None:
        document = self.document
        arch = document.arch
        self.setWindowModified(document.is_modified)
        self.setWindowTitle(f"{document.display_name}[*] — resnet-gui")
        with _blocked(self.input_spin):
            self.input_spin.setValue(arch.input_size[0])
        self._sync_dataset_combo()
        self._update_actions()

    def _sync_dataset_combo(self) -> None:
        arch = self.document.arch
        matches = (arch.in_channels, arch.num_classes) == (self.dataset.channels,
                                                           self.dataset.classes)
        with _blocked(self.dataset_combo):
            custom = self.dataset_combo.findData("custom")
            if matches:
                if custom >= 0:
                    self.dataset_combo.removeItem(custom)
                self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(self.dataset.name))
            else:
                text = f"Custom ({arch.in_channels} ch, {arch.num_classes} classes)"
                if custom < 0:
                    self.dataset_combo.addItem(text, "custom")
                    custom = self.dataset_combo.count() - 1
                self.dataset_combo.setItemText(custom, text)
                self.dataset_combo.setCurrentIndex(custom)
        native = self.dataset.image_size
        size = arch.input_size[0]
        self.input_note.setText(
            f"({native}×{native} images resized)" if matches and size != native else "")

    def _update_actions(self) -> None:
        document = self.document
        locked = document.locked
        self.undo_action.setEnabled(document.can_undo)
        self.redo_action.setEnabled(document.can_redo)
        self.undo_action.setText(f"&Undo {document.undo_label}".rstrip())
        self.redo_action.setText(f"&Redo {document.redo_label}".rstrip())
        self.undo_action.setIconText("Undo")  # the toolbar keeps its short labels
        self.redo_action.setIconText("Redo")
        self.undo_action.setToolTip(f"Undo {document.undo_label} (Ctrl+Z)".replace("  ", " "))
        self.redo_action.setToolTip(f"Redo {document.redo_label} (Ctrl+Shift+Z)")
        part = self.controller.selection
        editable = part is not None and part.kind in (edits.STAGE, edits.BLOCK) and not locked
        self.delete_action.setEnabled(editable)
        self.duplicate_action.setEnabled(editable)
        for action in (self.add_stage_action, self.new_action, self.open_action,
                       self.preset_menu.menuAction(), self.recent_menu.menuAction()):
            action.setEnabled(not locked)
        self.dataset_combo.setEnabled(not locked)
        self.input_spin.setEnabled(not locked)

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

    def _on_lock(self, locked: bool, reason: str) -> None:
        self.lock_banner.setText(f"🔒 The architecture is locked while {reason}. Stop the run "
                                 "to edit it; the next run uses the edited version.")
        self.lock_banner.setVisible(locked)
        self.palette_widget.set_locked(locked)
        self._update_actions()

    def set_locked(self, locked: bool, reason: str = "") -> None:
        """Lock editing while a training run is live (``reason`` is shown to the user)."""
        self.controller.set_locked(locked, reason or "a training run is live")

    # -- editing from the palette and the toolbar ----------------------------------------

    def add_part(self, category: str, value: str) -> bool:
        """Add a palette part without dragging: next to the selection, or at the end."""
        arch = self.document.arch
        part = self.controller.selection
        controller = self.controller
        stage_index = part.stage_index if part and part.kind in (edits.STAGE, edits.BLOCK) \
            else len(arch.stages) - 1
        if category == STAGE:
            index = stage_index + 1
            return controller.edit(edits.insert_stage, index,
                                   label=f"Insert stage layer{index + 1}") and \
                self._select(Part.stage(index))
        if category == BLOCK:
            stage = arch.stages[stage_index]
            position = part.block_index + part.count if part and part.kind == edits.BLOCK \
                else stage.num_blocks
            return controller.edit(edits.insert_block, stage_index, position, value,
                                   label=f"Insert a {value} block") and \
                self._select(Part.blocks(stage_index, position))
        payload = Payload(category=category, value=value)
        canvas = self.canvas
        if category == SHORTCUT:
            column = canvas.columns[1 + stage_index]
            return canvas.apply_drop(payload, column.rect.center())
        if category in (STEM, HEAD):
            return canvas.apply_drop(payload, canvas.columns[0].rect.center())
        return False

    def _select(self, part: Part) -> bool:
        self.controller.select(part)
        return True

    def _on_dataset_chosen(self) -> None:
        name = self.dataset_combo.currentData()
        if name == "custom":
            return
        self.set_dataset(name)

    def set_dataset(self, name: str) -> None:
        """Choose the dataset: it sets the network's input channels and classes (undoable)."""
        choice = dataset_named(name)
        self.dataset = choice
        self.settings.setValue("data/dataset", choice.name)
        changed = self.controller.edit(edits.set_input, in_channels=choice.channels,
                                       num_classes=choice.classes,
                                       label=f"Use {choice.name}")
        if not changed:
            self._sync_dataset_combo()
        self.datasetChanged.emit(choice.name)

    def _on_input_size(self, value: int) -> None:
        self.controller.edit(edits.set_input, input_size=value, label=f"Input size {value}",
                             merge_key="input_size")

    # -- files ---------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; True when it is fine to discard the current document."""
        if not self.document.is_modified:
            return True
        answer = self.ask_unsaved_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def ask_unsaved_changes(self) -> str:
        """'save', 'discard' or 'cancel' (tests replace this method)."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"{self.document.display_name} has unsaved changes. Save them first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def ask_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Open architecture", self._last_folder(),
                                              FILE_FILTER)
        return path

    def ask_save_path(self, title: str = "Save architecture", suffix: str = ".json",
                      file_filter: str = FILE_FILTER) -> str:
        suggested = str(Path(self._last_folder()) / f"{self.document.arch.name}{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, title, suggested, file_filter)
        if path and not Path(path).suffix:
            path += suffix
        return path

    def _last_folder(self) -> str:
        last = self.settings.value("files/last", "", str)
        return str(Path(last).parent) if last else str(Path.home())

    def show_error(self, error: Exception) -> None:
        self.statusBar().showMessage(str(error), 10000)
        if not self.quiet_errors:
            QMessageBox.warning(self, "resnet-gui", str(error))

    def new_from_preset_dialog(self) -> None:
        dialog = PresetDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.chosen():
            self.new_from_preset(dialog.chosen())

    def new_from_preset(self, name: str) -> bool:
        if self.document.locked or not self.maybe_save():
            return False
        try:
            arch = build_preset(name, self.dataset.channels, self.dataset.classes)
        except UserError as error:
            self.show_error(error)
            return False
        self.document.reset(arch, None, label=f"New {name}")
        self.statusBar().showMessage(f"New {name}: {PRESETS[name].description}", 8000)
        return True

    def open_dialog(self) -> None:
        path = self.ask_open_path()
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, ask: bool = True) -> bool:
        if self.document.locked or (ask and not self.maybe_save()):
            return False
        try:
            arch = serialize.load_file(path)
        except UserError as error:
            self.show_error(error)
            return False
        self.document.reset(arch, Path(path), label=f"Open {Path(path).name}")
        self._remember_file(Path(path))
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as_dialog()
        return self.save_to(self.document.path)

    def save_as_dialog(self) -> bool:
        path = self.ask_save_path()
        return self.save_to(path) if path else False

    def save_to(self, path: str | Path) -> bool:
        try:
            serialize.save_file(self.document.arch, path)
        except UserError as error:
            self.show_error(error)
            return False
        self.document.mark_saved(path)
        self._remember_file(Path(path))
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _remember_file(self, path: Path) -> None:
        path = path.resolve()
        self.settings.setValue("files/last", str(path))
        recent = [entry for entry in self.recent_files() if entry != str(path)]
        self.settings.setValue("files/recent", [str(path), *recent][:MAX_RECENT])

    def recent_files(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(entry) for entry in (value or [])]

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        if not files:
            self.recent_menu.addAction("No recent files").setEnabled(False)
        for entry in files:
            action = self.recent_menu.addAction(entry)
            action.triggered.connect(lambda _=False, chosen=entry: self.open_file(chosen))

    def export_dialog(self, kind: str) -> None:
        suffix, title, file_filter = {
            "py": (".py", "Export as PyTorch code", "Python (*.py)"),
            "onnx": (".onnx", "Export as ONNX", "ONNX model (*.onnx)"),
        }[kind]
        path = self.ask_save_path(title, suffix, file_filter)
        if path:
            self.export_to(kind, path)

    def export_to(self, kind: str, path: str | Path) -> bool:
        """Export on a worker thread (ONNX tracing takes seconds); ``exportFinished(path,
        error)`` says when it is done, and the window says so too. False if one is running."""
        if self._export_job is not None:
            self.statusBar().showMessage("An export is still running; wait for it to finish.",
                                         5000)
            return False
        self.statusBar().showMessage(f"Exporting {self.document.arch.name} to {path}…")
        self.export_py_action.setEnabled(False)
        self.export_onnx_action.setEnabled(False)
        self._export_job = _ExportJob(self._export_bridge, self.document.arch, kind, str(path))
        self._export_pool.start(self._export_job)
        return True

    def _on_export_done(self, path: str, error: str) -> None:
        self._export_job = None
        self.export_py_action.setEnabled(True)
        self.export_onnx_action.setEnabled(True)
        if error:
            self.statusBar().showMessage(f"Export failed: {error}", 10000)
            if not self.quiet_errors:
                QMessageBox.warning(self, "Export failed", error)
        else:
            self.statusBar().showMessage(f"Exported {path}", 8000)
        self.exportFinished.emit(path, error)

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

    def about(self) -> None:
        QMessageBox.about(
            self, "About resnet-gui",
            f"<b>resnet-gui {__version__}</b><p>Build, analyse, train and inspect residual "
            "networks, after the D2L chapter on ResNets.</p>")

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
            self._apply_default_proportions(size)
        for splitter, key in ((self.main_splitter, "window/main_splitter"),
                              (self.centre_splitter, "window/centre_splitter")):
            state = self.settings.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                splitter.restoreState(state)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/main_splitter", self.main_splitter.saveState())
        self.settings.setValue("window/centre_splitter", self.centre_splitter.saveState())
        self.settings.setValue("data/dataset", self.dataset.name)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.save_settings()
        self.controller.shutdown()
        self._export_pool.waitForDone()  # an export writes its file before the window goes
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


class _blocked:
    """``with _blocked(widget):`` - refresh a widget without it emitting edits."""

    def __init__(self, widget: QWidget) -> None:
        self.widget = widget

    def __enter__(self) -> None:
        self.previous = self.widget.blockSignals(True)

    def __exit__(self, *exc) -> None:
        self.widget.blockSignals(self.previous)

