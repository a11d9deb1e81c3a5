"""The network's input, as the toolbar shows it: the dataset (which fixes the input channels
and the classes) and the image size.

The Build tab makes the bar; the frame puts it in its toolbar. Choosing a dataset is one
undoable edit; a network whose channels or classes match no dataset shows as "Custom".
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from resnet_gui.arch import edits
from resnet_gui.arch.model import MAX_INPUT_SIZE
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.shared.datasets import DATASETS, DatasetChoice, dataset_named

CUSTOM = "custom"


class InputBar(QWidget):
    """``datasetCombo`` and ``inputSizeSpin``, with a note when images are resized."""

    datasetChanged = Signal(str)  # the dataset's name, after its edit

    def __init__(self, controller: EditorController, dataset: DatasetChoice,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.dataset = dataset
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
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        row.addWidget(QLabel("Dataset"))
        row.addWidget(self.dataset_combo)
        row.addSpacing(10)
        row.addWidget(QLabel("Input"))
        row.addWidget(self.input_spin)
        row.addWidget(self.input_note)
        controller.documentChanged.connect(lambda _change: self.refresh())
        self.refresh()

    def set_dataset(self, name: str) -> None:
        """Choose the dataset: it sets the network's input channels and classes (undoable)."""
        choice = dataset_named(name)
        self.dataset = choice
        changed = self.controller.edit(edits.set_input, in_channels=choice.channels,
                                       num_classes=choice.classes,
                                       label=f"Use {choice.name}")
        if not changed:
            self._sync_dataset_combo()
        self.datasetChanged.emit(choice.name)

    def refresh(self) -> None:
        """Show the document's input: its size, its dataset or "Custom", and whether it may
        be edited (not while a run trains)."""
        with QSignalBlocker(self.input_spin):
            self.input_spin.setValue(self.controller.arch.input_size[0])
        self._sync_dataset_combo()
        unlocked = not self.controller.document.locked
        self.dataset_combo.setEnabled(unlocked)
        self.input_spin.setEnabled(unlocked)

    def _sync_dataset_combo(self) -> None:
        arch = self.controller.arch
        matches = (arch.in_channels, arch.num_classes) == (self.dataset.channels,
                                                           self.dataset.classes)
        with QSignalBlocker(self.dataset_combo):
            custom = self.dataset_combo.findData(CUSTOM)
            if matches:
                if custom >= 0:
                    self.dataset_combo.removeItem(custom)
                self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(self.dataset.name))
            else:
                text = f"Custom ({arch.in_channels} ch, {arch.num_classes} classes)"
                if custom < 0:
                    self.dataset_combo.addItem(text, CUSTOM)
                    custom = self.dataset_combo.count() - 1
                self.dataset_combo.setItemText(custom, text)
                self.dataset_combo.setCurrentIndex(custom)
        native = self.dataset.image_size
        size = arch.input_size[0]
        self.input_note.setText(
            f"({native}×{native} images resized)" if matches and size != native else "")

    def _on_dataset_chosen(self) -> None:
        name = self.dataset_combo.currentData()
        if name != CUSTOM:
            self.set_dataset(name)

    def _on_input_size(self, value: int) -> None:
        self.controller.edit(edits.set_input, input_size=value, label=f"Input size {value}",
                             merge_key="input_size")
