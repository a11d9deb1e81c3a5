"""The frame's wiring of the Train and Inspect tabs (issue 5).

:func:`install_training_panels` makes the one training session both tabs share, adds the
Train and Inspect tabs to the main window and ties them to the Build tab's document and
dataset choice. The window provides ``add_panel(widget, title)``, ``document`` (the
undo/redo architecture document) and ``set_locked(locked, reason)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.runs import RunStore
from resnet_gui.errors import UserError
from resnet_gui.qt.shared.datasets import DATASETS
from resnet_gui.qt.shared.growth import GrowthOffer
from resnet_gui.qt.inspect.panel import InspectPanel
from resnet_gui.qt.train.panel import TrainingPanel
from resnet_gui.qt.shared.session import ArchitectureLink, TrainingSession

__all__ = ["EDITOR_DATASETS", "install_training_panels"]


class CloseGuard(QObject):
    """Closing the window mid-run: ask, stop, wait for the thread; the checkpoint stays."""

    def __init__(self, session: TrainingSession, panel: TrainingPanel, window: QWidget) -> None:
        super().__init__(window)
        self.session, self.panel, self.window = session, panel, window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if watched is not self.window or event.type() != QEvent.Type.Close:
            return False
        if self.session.active:
            if not self.confirm():
                event.ignore()
                return True
            self.panel.show_note("Stopping the run and saving its checkpoint…")
            self.session.shutdown()
        # A time-per-epoch probe in flight is a few seconds at most: let it end first.
        self.panel.estimator.cancel()
        self.panel.estimator.wait()
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


@dataclass(frozen=True)
class TrainingTabs:
    """The session and the two tabs, as the window holds them."""

    session: TrainingSession
    train: TrainingPanel
    inspect: InspectPanel


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
    # What the frame reaches (opening a checkpoint, dropping an image; see checkpoints.py).
    window.training_tabs = TrainingTabs(session, panel, inspect)
    window.add_panel(panel, "Train")
    window.add_panel(inspect, "Inspect")
    window.installEventFilter(CloseGuard(session, panel, window))
    panel.heatmap.block_clicked.connect(lambda block: _inspect_block(window, inspect, block))
    export_menu = getattr(window, "export_menu", None)
    if export_menu is not None:  # File > Export: the Train tab's after the network's
        export_menu.addSeparator()
        for action in panel.exports.actions():
            export_menu.addAction(action)
    _remember_training_settings(window, panel)
    _share_dataset_choice(window, panel)
    _offer_growth(window, session, panel)


def _offer_growth(window: Any, session: TrainingSession, panel: TrainingPanel) -> None:
    """A block dropped into the trained network's stage offers to keep its weights."""
    controller = getattr(window, "controller", None)
    if controller is None or not hasattr(controller, "blockInserted"):
        return
    offer = window.growth_offer = GrowthOffer(session, window)
    controller.blockInserted.connect(offer.block_inserted)
    offer.said.connect(panel.show_note)
    status_bar = getattr(window, "statusBar", None)
    if status_bar is not None:
        offer.said.connect(lambda text: status_bar().showMessage(text, 15000))


def _inspect_block(window: Any, inspect: InspectPanel, block: str) -> None:
    """A heatmap cell was clicked: show its block in the Inspect tab."""
    tabs = getattr(window, "tabs", None)
    if tabs is not None:
        tabs.setCurrentWidget(inspect)
    inspect.show_layer(block)


RECIPE_SETTING = "train/recipe"


def _remember_training_settings(window: Any, panel: TrainingPanel) -> None:
    """The Train tab's settings come back at the next launch (the window's QSettings)."""
    settings = getattr(window, "settings", None)
    if settings is None:
        return
    stored = settings.value(RECIPE_SETTING, "", str)
    if stored:
        try:
            panel.form.set_recipe(Recipe.from_dict(json.loads(stored)))
        except (UserError, ValueError, TypeError):
            pass  # settings of another version, or edited by hand: the defaults stand

    def save() -> None:
        try:
            recipe = panel.form.recipe()
        except UserError:
            return  # an unfinished form (no image folder yet) keeps the last good settings
        settings.setValue(RECIPE_SETTING, json.dumps(recipe.to_dict()))

    panel.form.changed.connect(save)


# The editor's dataset names (its toolbar) and the recipe's.
EDITOR_DATASETS = {dataset.name: dataset.key for dataset in DATASETS}


def _share_dataset_choice(window: Any, panel: TrainingPanel) -> None:
    """One dataset choice for the window: the editor's toolbar (which sets the network's
    channels and classes) and the Train tab's setting follow each other; the data folder
    chosen in the editor's menu is the Train tab's default."""
    form = panel.form
    settings = getattr(window, "settings", None)
    folder = settings.value("data/folder", "", str) if settings is not None else ""
    if folder and not form.folder_edit.text():
        form.folder_edit.setText(folder)
    folder_changed = getattr(window, "dataFolderChanged", None)
    if folder_changed is not None:  # File > Data folder, or resnet-gui --data-dir DIR
        folder_changed.connect(form.set_data_folder)
    changed = getattr(window, "datasetChanged", None)
    set_dataset = getattr(window, "set_dataset", None)
    if changed is None or set_dataset is None:
        return
    by_recipe = {value: name for name, value in EDITOR_DATASETS.items()}

    def editor_chose(name: str) -> None:
        value = EDITOR_DATASETS.get(name)
        index = form.dataset_combo.findData(value)
        if value is not None and index >= 0 and form.dataset_combo.currentIndex() != index:
            form.dataset_combo.setCurrentIndex(index)

    def form_chose() -> None:
        name = by_recipe.get(form.dataset_combo.currentData())
        current = getattr(getattr(window, "dataset", None), "name", None)
        if name is not None and name != current and not panel.session.active:
            set_dataset(name)

    changed.connect(editor_chose)
    form.dataset_combo.currentIndexChanged.connect(lambda _index: form_chose())
    current = getattr(getattr(window, "dataset", None), "name", None)
    if current in EDITOR_DATASETS:
        editor_chose(current)
