"""Pieces every Lab view shares: the checkpoint field, the Run/Cancel bar with its progress
and status sentence, and the labels of the plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from resnet_gui.engine.runs import RunStore
from resnet_gui.errors import UserError

CHECKPOINT_FILTER = "resnet-gui checkpoints (*.pt);;All files (*)"
ERROR_STYLE = "color: #b91c1c;"
RESNET_COLOUR, PLAIN_COLOUR = "#1f77b4", "#d62728"
DOWNSAMPLING_COLOUR = "#ff7f0e"


class CheckpointField(QWidget):
    """A checkpoint path: typed, chosen in a file dialog, or the newest run's checkpoint."""

    changed = Signal(str)

    def __init__(self, label: str, store: Callable[[], RunStore | None], plain: bool | None,
                 name: str, parent: QWidget | None = None) -> None:
        """``plain``: which run "Last run" picks (a plain network's, a residual one's, or
        None: the newest of any)."""
        super().__init__(parent)
        self.store, self.plain = store, plain
        self.edit = QLineEdit()
        self.edit.setObjectName(name)
        self.edit.setPlaceholderText("a checkpoint (.pt) written by a training run")
        self.edit.textChanged.connect(self.changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        self.last_button = QPushButton("Last run")
        self.last_button.setToolTip("The checkpoint of the newest trained run in the run list")
        self.last_button.clicked.connect(self.use_last_run)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(label))
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)
        layout.addWidget(self.last_button)
        self.note = ""  # what "Last run" last said

    @property
    def path(self) -> str:
        return self.edit.text().strip()

    def set_path(self, path: str | Path) -> None:
        self.edit.setText(str(path))

    def browse(self) -> None:
        start = str(Path(self.path).parent) if self.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", start,
                                              CHECKPOINT_FILTER)
        if path:
            self.set_path(path)

    def use_last_run(self) -> bool:
        """Fill in the newest stored run's checkpoint; False (and a note) when there is none."""
        store = self.store()
        runs = store.list() if store is not None else []
        for summary in runs:
            plain = "plain" in summary.name.lower()
            if summary.checkpoint and Path(summary.checkpoint).is_file() and (
                    self.plain is None or plain == self.plain):
                self.set_path(summary.checkpoint)
                self.note = f"{summary.name}, run {summary.run_id}"
                return True
        kind = {True: "plain ", False: "residual ", None: ""}[self.plain]
        self.note = f"no {kind}run in the run list has a checkpoint yet; train one first"
        return False


def required_checkpoint(field: CheckpointField, what: str) -> str:
    if not field.path:
        raise UserError(f"choose the {what} checkpoint first (Browse…, or Last run for the "
                        "newest trained run)")
    return field.path


class RunBar(QWidget):
    """Run, Cancel, a progress bar and one status sentence (red for a problem)."""

    def __init__(self, run_text: str, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton(run_text)
        self.run_button.setObjectName(f"{name}RunButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName(f"{name}CancelButton")
        self.cancel_button.setEnabled(False)
        self.bar = QProgressBar()
        self.bar.setObjectName(f"{name}Progress")
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.status = QLabel()
        self.status.setObjectName(f"{name}Status")
        self.status.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.run_button)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.status, 3)

    def running(self, message: str) -> None:
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.bar.setValue(0)
        self.say(message)

    def idle(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def show_progress(self, progress) -> None:
        self.bar.setValue(int(1000 * progress.fraction))
        self.say(progress.message)

    def problem(self, sentence: str) -> None:
        """A user's mistake or a failed experiment: one red sentence."""
        self.say(sentence[:1].upper() + sentence[1:], problem=True)

    def say(self, sentence: str, problem: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if problem else "")
        self.status.setText(sentence)


class Redrawer(QObject):
    """Redraws at most every ``interval_ms`` while something changed: live progress arrives
    far more often than a plot needs redrawing."""

    def __init__(self, redraw: Callable[[], None], interval_ms: int, parent: QObject) -> None:
        super().__init__(parent)
        self.redraw, self.dirty = redraw, False
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def mark(self) -> None:
        self.dirty = True

    def _tick(self) -> None:
        if self.dirty:
            self.dirty = False
            self.redraw()


def plot_widget(title: str, x_label: str, y_label: str, name: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setObjectName(name)
    item = plot.getPlotItem()
    item.setTitle(title, color="#111827", size="10pt")
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.2)
    for axis in ("left", "bottom"):
        item.getAxis(axis).setPen("#6b7280")
        item.getAxis(axis).setTextPen("#374151")
    return plot
