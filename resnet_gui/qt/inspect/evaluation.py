"""After a run: the confusion matrix (click a cell to see its test images), per-class
accuracy, and the test images the network got most confidently wrong."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.engine.events import Evaluation
from resnet_gui.qt.inspect.images import ImageStrip
from resnet_gui.qt.shared.test_images import TestImages

GALLERY_SIZE = 64  # images shown for a cell or as "most confidently wrong"


class ConfusionModel(QAbstractTableModel):
    """Rows are true classes, columns predictions; cells hold counts, shaded by row share."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.confusion = np.zeros((0, 0), np.int64)
        self.class_names: tuple[str, ...] = ()

    def set_confusion(self, confusion: np.ndarray, class_names: tuple[str, ...]) -> None:
        self.beginResetModel()
        self.confusion = np.asarray(confusion, np.int64)
        self.class_names = tuple(class_names)
        self._row_totals = np.maximum(self.confusion.sum(axis=1, keepdims=True), 1)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self.confusion.shape[0]

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else self.confusion.shape[1]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        count = int(self.confusion[index.row(), index.column()])
        share = count / float(self._row_totals[index.row(), 0])
        if role == Qt.ItemDataRole.DisplayRole:
            return str(count)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            # Correct predictions in blue, confusions in red, darker for a larger share.
            base = (31, 119, 180) if index.row() == index.column() else (214, 39, 40)
            alpha = 0.0 if count == 0 else 0.12 + 0.88 * share
            return QBrush(QColor(*base, int(255 * alpha)))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor("white" if share > 0.55 else "#222"))
        if role == Qt.ItemDataRole.ToolTipRole:
            true, predicted = self._name(index.row()), self._name(index.column())
            return (f"{count} test images of {true} predicted as {predicted} "
                    f"({100 * share:.1f} % of {true}); click to see them")
        return None

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole:
            name = self._name(section)
            return name
        if role == Qt.ItemDataRole.ToolTipRole:
            kind = "true class" if orientation == Qt.Orientation.Vertical else "predicted"
            return f"{kind}: {self._name(section)}"
        return None

    def _name(self, section: int) -> str:
        return self.class_names[section] if section < len(self.class_names) else str(section)

    @property
    def total(self) -> int:
        return int(self.confusion.sum())


class EvaluationView(QWidget):
    """``confusionMatrixView``, ``perClassAccuracyPlot`` and the image gallery beneath."""

    cell_selected = Signal(int, int)  # true class, predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.evaluation: Evaluation | None = None
        self.images: TestImages | None = None
        self.predictions: np.ndarray | None = None

        self._make_matrix()
        self._make_accuracy_plot()
        self._make_gallery()
        self._lay_out()

    # -- building ------------------------------------------------------------------------

    def _make_matrix(self) -> None:
        """The confusion matrix: click a cell to see its images below."""
        self.model = ConfusionModel(self)
        self.table = QTableView()
        self.table.setObjectName("confusionMatrixView")
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumSize(320, 240)
        self.table.clicked.connect(lambda index: self.show_cell(index.row(), index.column()))

    def _make_accuracy_plot(self) -> None:
        """Per-class test accuracy as horizontal bars."""
        self.accuracy_plot = pg.PlotWidget(background="w")
        self.accuracy_plot.setObjectName("perClassAccuracyPlot")
        plot = self.accuracy_plot.getPlotItem()
        plot.setTitle("Per-class test accuracy", color="#333", size="10pt")
        plot.setLabel("bottom", "%")
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.invertY(True)
        left = plot.getAxis("left")
        left.setStyle(hideOverlappingLabels=False, autoExpandTextSpace=True)
        left.setTextPen("#222")
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[],
                                    brush=pg.mkBrush("#1f77b4"), pen=pg.mkPen(None))
        plot.addItem(self.bars)
        self.accuracy_plot.setMinimumWidth(260)
        self._bar_labels: list[pg.TextItem] = []

    def _make_gallery(self) -> None:
        self.gallery_label = QLabel("Train a network to see its mistakes.")
        self.gallery_label.setObjectName("galleryLabel")
        self.gallery_label.setWordWrap(True)
        self.gallery = ImageStrip(size=56, wrap=True, caption_lines=3)
        self.gallery.setObjectName("mistakesGallery")
        self.gallery.setMinimumHeight(140)

    def _lay_out(self) -> None:
        """The matrix beside the accuracy plot, over the gallery."""
        top = QSplitter(Qt.Orientation.Horizontal)
        matrix = QWidget()
        matrix_layout = QVBoxLayout(matrix)
        matrix_layout.setContentsMargins(0, 0, 0, 0)
        matrix_layout.addWidget(QLabel("<b>Confusion matrix</b> — rows: true class, "
                                       "columns: predicted"))
        matrix_layout.addWidget(self.table, 1)
        top.addWidget(matrix)
        top.addWidget(self.accuracy_plot)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        top.setSizes([900, 500])
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.gallery_label)
        bottom_layout.addWidget(self.gallery, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # -- inputs --------------------------------------------------------------------------

    def set_test_images(self, images: TestImages | None) -> None:
        self.images = images

    def set_evaluation(self, evaluation: Evaluation, class_names: tuple[str, ...],
                       predictions: np.ndarray | None = None) -> None:
        """Show an evaluation. ``predictions`` (one class per test image), when known, lets
        every cell list its images; without it the cells off the diagonal use the
        evaluation's list of wrong images."""
        self.evaluation = evaluation
        self.predictions = None if predictions is None else np.asarray(predictions, np.int64)
        names = tuple(class_names) or tuple(str(i) for i in range(len(evaluation.confusion)))
        self.model.set_confusion(evaluation.confusion, names)
        accuracy = 100.0 * np.nan_to_num(np.asarray(evaluation.per_class_accuracy, np.float64))
        count = len(accuracy)
        self.bars.setOpts(x0=np.zeros(count), y=np.arange(count), width=accuracy, height=0.7)
        plot = self.accuracy_plot.getPlotItem()
        plot.getAxis("left").setTicks([[(i, names[i] if i < len(names) else str(i))
                                        for i in range(count)], []])
        for label in self._bar_labels:
            plot.removeItem(label)
        self._bar_labels = []
        for i, value in enumerate(accuracy):
            label = pg.TextItem(f"{value:.1f} %", color="#222", anchor=(0, 0.5))
            label.setPos(float(value) + 1, i)
            plot.addItem(label)
            self._bar_labels.append(label)
        plot.setXRange(0, 112, padding=0.0)  # room for the value beside a full bar
        plot.setYRange(-0.6, count - 0.4, padding=0)
        self.show_most_wrong()

    def clear(self) -> None:
        self.evaluation = None
        self.model.set_confusion(np.zeros((0, 0), np.int64), ())
        self.bars.setOpts(x0=[], y=[], width=[])
        for label in self._bar_labels:
            self.accuracy_plot.getPlotItem().removeItem(label)
        self._bar_labels = []
        self.gallery.clear()
        self.gallery_label.setText("Train a network to see its mistakes.")

    # -- what the gallery shows ----------------------------------------------------------

    def show_most_wrong(self) -> None:
        evaluation = self.evaluation
        if evaluation is None:
            return
        indices = np.asarray(evaluation.wrong_indices, np.int64)[:GALLERY_SIZE]
        predicted = np.asarray(evaluation.wrong_predicted, np.int64)[:GALLERY_SIZE]
        confidence = np.asarray(evaluation.wrong_confidence, np.float64)[:GALLERY_SIZE]
        if self.images is None or not len(indices):
            self.gallery.clear()
            self.gallery_label.setText("No wrong test images to show." if self.images is not None
                                       else "Test images are not loaded.")
            return
        names = self.model.class_names
        captions, tips = [], []
        for index, guess, sure in zip(indices, predicted, confidence):
            true = self.images.class_name(int(self.images.labels[index]))
            guessed = names[guess] if guess < len(names) else str(guess)
            captions.append(f"{guessed} {100 * sure:.0f}%\n≠ {true}")
            tips.append(f"test image #{index}: predicted {guessed} with {100 * sure:.1f} % "
                        f"confidence; it is {true}")
        self.gallery.set_images(self.images, indices, captions, tips)
        self.gallery_label.setText(
            f"<b>Most confidently wrong</b>: {len(indices)} test images, most confident first "
            "(caption: predicted, confidence, ≠ true class). Click a matrix cell for its images.")

    def cell_indices(self, true: int, predicted: int) -> np.ndarray | None:
        """Test-image indices of one cell, or None when this evaluation cannot tell."""
        if self.images is None or self.evaluation is None:
            return None
        labels = self.images.labels
        if self.predictions is not None and len(self.predictions) == len(labels):
            return np.flatnonzero((labels == true) & (self.predictions == predicted))
        wrong = np.asarray(self.evaluation.wrong_indices, np.int64)
        guesses = np.asarray(self.evaluation.wrong_predicted, np.int64)
        if true != predicted:
            picked = wrong[(labels[wrong] == true) & (guesses == predicted)]
            # Only a complete list of wrong images answers for every cell.
            return picked if len(picked) == self.model.confusion[true, predicted] else None
        if len(wrong) == self.model.total - int(np.trace(self.model.confusion)):
            return np.setdiff1d(np.flatnonzero(labels == true), wrong)
        return None

    def show_cell(self, true: int, predicted: int) -> None:
        self.cell_selected.emit(true, predicted)
        names = self.model.class_names
        true_name, predicted_name = names[true], names[predicted]
        count = int(self.model.confusion[true, predicted])
        indices = self.cell_indices(true, predicted)
        what = (f"{true_name} classified correctly" if true == predicted
                else f"{true_name} predicted as {predicted_name}")
        if indices is None:
            self.gallery.clear()
            self.gallery_label.setText(f"<b>{what}</b>: {count} test images (this evaluation "
                                       "does not list them individually).")
            return
        shown = indices[:GALLERY_SIZE]
        self.gallery.set_images(self.images, shown, [f"#{i}" for i in shown])
        more = f", the first {len(shown)} shown" if len(indices) > len(shown) else ""
        self.gallery_label.setText(f"<b>{what}</b>: {count} test images{more}.")
