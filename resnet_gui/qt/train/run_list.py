"""The list of stored runs: tick to overlay their curves, reopen one, delete one."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.engine.runs import RunSummary

RUN_ID_ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ("Run", "Test acc", "Time", "Epochs", "Status", "Started")
STATUS_TEXT = {
    "running": "running",
    "completed": "done",
    "stopped": "stopped",
    "max_steps": "step limit",
    "diverged": "diverged",
    "error": "error",
    "did_not_learn": "did not learn",
}
STATUS_COLOURS = {"error": "#b00020", "diverged": "#b00020", "did_not_learn": "#b45309"}


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _swatch(colour: QColor | None) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(colour if colour is not None else QColor(0, 0, 0, 0))
    return QIcon(pixmap)


class RunList(QWidget):
    """``runList``: one row per stored run, newest first."""

    overlay_toggled = Signal(str, bool)  # run id, ticked
    reopen_requested = Signal(str)
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setObjectName("runList")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _: self._reopen(item))
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())

        self.reopen_button = QPushButton("Reopen")
        self.reopen_button.setObjectName("reopenRunButton")
        self.reopen_button.setToolTip("Load this run's architecture and training settings")
        self.reopen_button.clicked.connect(lambda: self._reopen(self.tree.currentItem()))
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("deleteRunButton")
        self.delete_button.setToolTip("Delete this run, its curves and its checkpoint")
        self.delete_button.clicked.connect(self._delete)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.reopen_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self.live_run_id: str | None = None
        # What the live run's row shows between its saves: (seconds, epochs done, state).
        self._live_progress: tuple[float, float, str] | None = None
        self._update_buttons()

    # -- content -------------------------------------------------------------------------

    def set_runs(self, runs: list[RunSummary], ticked: set[str] = frozenset()) -> None:
        current = self.current_run_id()
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            for summary in runs:
                self.tree.addTopLevelItem(self._make_item(summary, summary.run_id in ticked))
        finally:
            self.tree.blockSignals(False)
        if current is not None:
            self.select(current)
        self._update_buttons()

    def update_run(self, summary: RunSummary) -> None:
        """Refresh one row (or add it at the top) without touching the others."""
        item = self._item(summary.run_id)
        self.tree.blockSignals(True)
        try:
            if item is None:
                self.tree.insertTopLevelItem(0, self._make_item(summary, False))
            else:
                self._fill(item, summary)
        finally:
            self.tree.blockSignals(False)
        self._update_buttons()

    def run_ids(self) -> list[str]:
        return [self.tree.topLevelItem(i).data(0, RUN_ID_ROLE)
                for i in range(self.tree.topLevelItemCount())]

    def current_run_id(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, RUN_ID_ROLE) if item is not None else None

    def select(self, run_id: str) -> None:
        item = self._item(run_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def set_ticked(self, run_id: str, ticked: bool) -> None:
        """Tick or untick a row as a user would (emits ``overlay_toggled``)."""
        item = self._item(run_id)
        if item is not None:
            item.setCheckState(0, Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def is_ticked(self, run_id: str) -> bool:
        item = self._item(run_id)
        return item is not None and item.checkState(0) == Qt.CheckState.Checked

    def set_colour(self, run_id: str, colour: QColor | None) -> None:
        item = self._item(run_id)
        if item is not None:
            self.tree.blockSignals(True)
            item.setIcon(0, _swatch(colour))
            self.tree.blockSignals(False)

    def set_live_run(self, run_id: str | None) -> None:
        if run_id != self.live_run_id:
            self._live_progress = None
        self.live_run_id = run_id
        self._update_buttons()

    def set_live_progress(self, seconds: float, epochs: float, state: str) -> None:
        """The live run's time, epochs and state ("running", "paused"), between the epoch
        ends at which its record is saved."""
        self._live_progress = (seconds, epochs, state)
        item = self._item(self.live_run_id) if self.live_run_id else None
        if item is not None:
            self._fill_live(item, int(item.text(3).split("/")[-1] or 0))

    # -- internals -----------------------------------------------------------------------

    def _item(self, run_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, RUN_ID_ROLE) == run_id:
                return item
        return None

    def _make_item(self, summary: RunSummary, ticked: bool) -> QTreeWidgetItem:
        item = QTreeWidgetItem()
        item.setData(0, RUN_ID_ROLE, summary.run_id)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        item.setIcon(0, _swatch(None))
        for column in range(1, 4):
            item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._fill(item, summary)
        return item

    def _fill(self, item: QTreeWidgetItem, summary: RunSummary) -> None:
        accuracy = summary.test_accuracy
        item.setText(0, summary.name)
        item.setText(1, "–" if accuracy is None or not math.isfinite(accuracy)
                     else f"{100 * accuracy:.2f} %")
        item.setText(2, format_duration(summary.seconds))
        item.setText(3, f"{summary.epochs_done}/{summary.epochs_planned}")
        live = summary.run_id == self.live_run_id
        status = STATUS_TEXT.get(summary.status, summary.status)
        if summary.status == "running" and not live:
            status = "interrupted"  # no live trainer: the process ended mid-run
        item.setText(4, status)
        if live and summary.status == "running":
            self._fill_live(item, summary.epochs_planned)
        item.setText(5, summary.created_text)
        recipe_hint = f"{summary.dataset}, {summary.epochs_planned} epochs"
        tip = f"{summary.name} · {recipe_hint}"
        if summary.message:
            tip += f"\n{summary.message}"
        for column in range(len(COLUMNS)):
            item.setToolTip(column, tip)
        if summary.status in STATUS_COLOURS:
            item.setForeground(4, QColor(STATUS_COLOURS[summary.status]))

    def _fill_live(self, item: QTreeWidgetItem, epochs_planned: int) -> None:
        if self._live_progress is None:
            return
        seconds, epochs, state = self._live_progress
        blocked = self.tree.blockSignals(True)  # a text change is no tick
        try:
            item.setText(2, format_duration(seconds))
            item.setText(3, f"{epochs:.1f}/{epochs_planned}" if epochs % 1 else
                         f"{int(epochs)}/{epochs_planned}")
            item.setText(4, state)
        finally:
            self.tree.blockSignals(blocked)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.overlay_toggled.emit(item.data(0, RUN_ID_ROLE),
                                      item.checkState(0) == Qt.CheckState.Checked)

    def _reopen(self, item: QTreeWidgetItem | None) -> None:
        if item is not None:
            self.reopen_requested.emit(item.data(0, RUN_ID_ROLE))

    def _delete(self) -> None:
        run_id = self.current_run_id()
        if run_id is not None and run_id != self.live_run_id:
            self.delete_requested.emit(run_id)

    def _update_buttons(self) -> None:
        run_id = self.current_run_id()
        self.reopen_button.setEnabled(run_id is not None)
        self.delete_button.setEnabled(run_id is not None and run_id != self.live_run_id)
