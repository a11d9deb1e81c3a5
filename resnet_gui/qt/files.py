"""The File menu's commands on the window's document: new from a preset, open, open recent,
save and save as, and the question about unsaved changes.

The questions themselves are the window's methods (``ask_unsaved_changes``,
``ask_open_path``, ``ask_save_path``), so that tests can answer them; the dialogs they show
are the functions at the end of this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QFileDialog, QMenu, QMessageBox, QStyle, QWidget

from resnet_gui.arch import serialize
from resnet_gui.arch.document import Document
from resnet_gui.arch.presets import PRESETS, build_preset
from resnet_gui.arch.recipe import RECIPE_PRESETS
from resnet_gui.errors import UserError
from resnet_gui.qt.checkpoints import is_checkpoint, open_checkpoint
from resnet_gui.qt.preset_dialog import PresetDialog
from resnet_gui.qt.shared.icons import icon
from resnet_gui.qt.shared.widgets import make_action

if TYPE_CHECKING:
    from resnet_gui.qt.main_window import MainWindow

MAX_RECENT = 8
FILE_FILTER = ("Architecture or checkpoint (*.json *.pt *.pth);;Architecture JSON (*.json);;"
               "Checkpoint (*.pt *.pth);;All files (*)")
SAVE_FILTER = "Architecture JSON (*.json);;All files (*)"
PIXMAP = QStyle.StandardPixmap


class DocumentFiles:
    """``newAction``, ``openAction``, ``saveAction``, ``saveAsAction``, the ``presetMenu``
    and the recent-files menu, and what they do."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.new_action = make_action(window, "&New from preset…", self.new_from_preset_dialog,
                                      QKeySequence.StandardKey.New,
                                      "Start from a named architecture", PIXMAP.SP_FileIcon,
                                      "newAction")
        self.open_action = make_action(window, "&Open…", self.open_dialog,
                                       QKeySequence.StandardKey.Open,
                                       "Open an architecture JSON file or a checkpoint",
                                       PIXMAP.SP_DialogOpenButton, "openAction")
        self.save_action = make_action(window, "&Save", self.save, QKeySequence.StandardKey.Save,
                                       "Save the architecture as JSON",
                                       PIXMAP.SP_DialogSaveButton, "saveAction")
        self.save_as_action = make_action(window, "Save &As…", self.save_as_dialog,
                                          QKeySequence.StandardKey.SaveAs,
                                          "Save the architecture under a new name",
                                          name="saveAsAction")
        self.preset_menu = self._make_preset_menu()
        self.recent_menu = QMenu("Open &recent", window)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

    @property
    def document(self) -> Document:
        return self.window.document

    def _make_preset_menu(self) -> QMenu:
        menu = QMenu("New from p&reset", self.window)
        menu.setObjectName("presetMenu")
        menu.setToolTipsVisible(True)
        for name, preset in PRESETS.items():
            action = menu.addAction(icon(f"block-{preset.block}"), name)
            action.setToolTip(preset.description)
            action.setStatusTip(f"{name}: {preset.description}")
            action.setData(name)
            action.triggered.connect(lambda _=False, chosen=name: self.new_from_preset(chosen))
        return menu

    def set_locked(self, locked: bool) -> None:
        """No other network may replace the document while a run trains it."""
        for action in (self.new_action, self.open_action, self.preset_menu.menuAction(),
                       self.recent_menu.menuAction()):
            action.setEnabled(not locked)

    def _say(self, text: str, timeout_ms: int) -> None:
        self.window.statusBar().showMessage(text, timeout_ms)

    # -- commands ------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; True when it is fine to discard the current document."""
        if not self.document.is_modified:
            return True
        answer = self.window.ask_unsaved_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_from_preset_dialog(self) -> None:
        dialog = PresetDialog(self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.chosen():
            self.new_from_preset(dialog.chosen())

    def new_from_preset(self, name: str) -> bool:
        if self.document.locked or not self.maybe_save():
            return False
        dataset = self.window.dataset
        try:
            arch = build_preset(name, dataset.channels, dataset.classes)
        except UserError as error:
            self.window.show_error(error)
            return False
        self.document.reset(arch, None, label=f"New {name}")
        self._say(f"New {name}: {PRESETS[name].description}{self._use_recipe_of(name)}", 8000)
        return True

    def _use_recipe_of(self, name: str) -> str:
        """A preset with a recipe of its name (fmnist-fast, fmnist-94) brings that plan to the
        Train tab, as `resnet-gui train NAME` uses it; says so, or nothing."""
        recipe = RECIPE_PRESETS.get(name)
        tabs = getattr(self.window, "training_tabs", None)
        if recipe is None or tabs is None:  # (a live run locked the document: not here)
            return ""
        tabs.train.form.use_recipe(recipe)
        return f"; the Train tab takes its recipe ({recipe.epochs} epochs)"

    def open_dialog(self) -> None:
        path = self.window.ask_open_path()
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, ask: bool = True) -> bool:
        if is_checkpoint(path):  # a trained network: its architecture, run and weights
            return open_checkpoint(self.window, path, ask)
        if self.document.locked or (ask and not self.maybe_save()):
            return False
        try:
            arch = serialize.load_file(path)
        except UserError as error:
            self.window.show_error(error)
            return False
        self.document.reset(arch, Path(path), label=f"Open {Path(path).name}")
        self.remember(Path(path))
        self._say(f"Opened {path}", 5000)
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as_dialog()
        return self.save_to(self.document.path)

    def save_as_dialog(self) -> bool:
        path = self.window.ask_save_path()
        return self.save_to(path) if path else False

    def save_to(self, path: str | Path) -> bool:
        try:
            serialize.save_file(self.document.arch, path)
        except UserError as error:
            self.window.show_error(error)
            return False
        self.document.mark_saved(path)
        self.remember(Path(path))
        self._say(f"Saved {path}", 5000)
        return True

    # -- recent files --------------------------------------------------------------------

    def remember(self, path: Path) -> None:
        """Put ``path`` first in Open recent, and its folder first in the file dialogs."""
        settings = self.window.settings
        path = path.resolve()
        settings.setValue("files/last", str(path))
        recent = [entry for entry in self.recent_files() if entry != str(path)]
        settings.setValue("files/recent", [str(path), *recent][:MAX_RECENT])

    def recent_files(self) -> list[str]:
        value = self.window.settings.value("files/recent", [])
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


# -- the dialogs behind the window's questions ----------------------------------------------


def ask_unsaved_changes(parent: QWidget, document: Document) -> str:
    """'save', 'discard' or 'cancel'."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent, "Unsaved changes",
        f"{document.display_name} has unsaved changes. Save them first?",
        buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
    return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")


def last_folder(settings) -> str:
    """The folder of the file opened or saved last, else the home folder."""
    last = settings.value("files/last", "", str)
    return str(Path(last).parent) if last else str(Path.home())


def ask_open_path(parent: QWidget, folder: str) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, "Open architecture or checkpoint", folder,
                                          FILE_FILTER)
    return path


def ask_save_path(parent: QWidget, suggested: str, title: str, suffix: str,
                  file_filter: str) -> str:
    """A path to write, given ``suffix`` when the user typed none."""
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, file_filter)
    if path and not Path(path).suffix:
        path += suffix
    return path
