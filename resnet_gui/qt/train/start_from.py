"""Where a run's weights start, in the Train tab: random, torchvision's ImageNet weights (for
the presets that are torchvision's networks), or a file; what stays frozen, and the rate of
the pretrained layers. The fields map to the recipe's ``weights``, ``freeze`` and
``pretrained_lr_scale``; the engine (engine/weights.py) loads and checks them at Start.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import FREEZE_STEM, IMAGENET_WEIGHTS, Recipe
from resnet_gui.errors import UserError

RANDOM, FILE = None, "file"
START_CHOICES = ((RANDOM, "Random weights"), (IMAGENET_WEIGHTS, "ImageNet weights"),
                 (FILE, "File…"))
WEIGHTS_FILTER = "Weights (*.pt *.pth *.pth.tar);;All files (*)"
IMAGENET_TIP = ("torchvision's ImageNet weights, from torch hub's cache (downloaded there when "
                "the network allows); a new head for this dataset's classes")
NOT_TORCHVISION_TIP = ("ImageNet weights exist only for torchvision's networks: choose the "
                       "resnet18, 34, 50, 101 or 152 preset (File > New from preset) to use them.")
RANDOM_FREEZE_TIP = "Freezing keeps learned layers fixed: start from ImageNet weights or a file."


def imagenet_available(arch: Architecture) -> bool:
    """Whether torchvision has ImageNet weights for ``arch`` (whatever its classes)."""
    from resnet_gui.engine.weights import torchvision_name

    return torchvision_name(arch) is not None


class StartFromFields(QObject):
    """The "Start from", weights file, "Freeze up to" and pretrained-rate fields of the
    recipe form; the form lays them out and calls :meth:`show` and :meth:`read`."""

    changed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("startFromCombo")
        for value, label in START_CHOICES:
            self.start_combo.addItem(label, value)
        self.start_combo.setToolTip("Where the network's weights start")
        self.file_edit = QLineEdit()
        self.file_edit.setObjectName("weightsFileEdit")
        self.file_edit.setPlaceholderText("a state dict (.pth) or a resnet-gui checkpoint")
        self.file_button = QToolButton()
        self.file_button.setText("…")
        self.file_button.setToolTip("Choose a weights file")
        self.file_label = QLabel("Weights file")
        self.freeze_combo = QComboBox()
        self.freeze_combo.setObjectName("freezeCombo")
        self.rate_spin = QDoubleSpinBox()
        self.rate_spin.setObjectName("pretrainedLrScaleSpin")
        self.rate_spin.setRange(0.001, 1.0)
        self.rate_spin.setDecimals(3)
        self.rate_spin.setSingleStep(0.05)
        self.rate_spin.setPrefix("× ")
        self.rate_spin.setToolTip("The learned layers' learning rate as a fraction of the "
                                  "head's: lower keeps more of what they learned")
        self.file_row = QWidget()
        row = QHBoxLayout(self.file_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.file_edit)
        row.addWidget(self.file_button)
        # Replaceable in tests: the path a file dialog returns ("" when cancelled).
        self.ask_file = lambda start: QFileDialog.getOpenFileName(
            self.parent_widget, "Start from weights", start, WEIGHTS_FILTER)[0]
        self._stages = 0
        self.set_architecture_stages(4)
        self.start_combo.currentIndexChanged.connect(self._start_chosen)
        self.file_button.clicked.connect(self.browse)
        self.file_edit.editingFinished.connect(self._edited)
        self.freeze_combo.currentIndexChanged.connect(self._edited)
        self.rate_spin.valueChanged.connect(self._edited)
        self.update_enabled()

    def rows(self) -> list[tuple[object, QWidget]]:
        """(label, field) rows for the form."""
        return [("Start from", self.start_combo), (self.file_label, self.file_row),
                ("Freeze up to", self.freeze_combo), ("Pretrained rate", self.rate_spin)]

    def widgets(self) -> list[QWidget]:
        return [self.start_combo, self.file_edit, self.file_button, self.freeze_combo,
                self.rate_spin]

    # -- the architecture decides what is offered --------------------------------------

    def set_architecture(self, arch: Architecture) -> None:
        """ImageNet weights only for torchvision's networks; freezing up to its stages."""
        allowed = imagenet_available(arch)
        model = self.start_combo.model()
        if isinstance(model, QStandardItemModel):
            item = model.item(self.start_combo.findData(IMAGENET_WEIGHTS))
            item.setEnabled(allowed)
            item.setToolTip(IMAGENET_TIP if allowed else NOT_TORCHVISION_TIP)
        self.set_architecture_stages(len(arch.stages))

    @property
    def imagenet_enabled(self) -> bool:
        model = self.start_combo.model()
        return bool(model.flags(model.index(self.start_combo.findData(IMAGENET_WEIGHTS), 0))
                    & Qt.ItemFlag.ItemIsEnabled)

    def set_architecture_stages(self, count: int) -> None:
        if count == self._stages:
            return
        current = self.freeze_combo.currentData()
        self.freeze_combo.blockSignals(True)
        self.freeze_combo.clear()
        self.freeze_combo.addItem("Nothing", None)
        self.freeze_combo.addItem("The stem", FREEZE_STEM)
        for index in range(1, count + 1):
            self.freeze_combo.addItem(f"layer{index}" if index > 1 else "layer1 (and the stem)",
                                      f"layer{index}")
        self._stages = count
        _choose(self.freeze_combo, current)
        self.freeze_combo.blockSignals(False)

    # -- recipe <-> widgets --------------------------------------------------------------

    def show(self, recipe: Recipe) -> None:
        """Show the recipe's fields (the caller blocks signals)."""
        weights = recipe.weights
        if weights is None or weights == IMAGENET_WEIGHTS:
            _choose(self.start_combo, weights)
        else:
            _choose(self.start_combo, FILE)
            self.file_edit.setText(weights)
        _choose(self.freeze_combo, recipe.freeze)
        self.rate_spin.setValue(recipe.pretrained_lr_scale)
        self.update_enabled()

    def read(self) -> dict[str, object]:
        """The recipe's ``weights``, ``freeze`` and ``pretrained_lr_scale``; raises UserError
        for a file choice without a file."""
        choice = self.start_combo.currentData()
        weights = choice
        if choice == FILE:
            weights = self.file_edit.text().strip()
            if not weights:
                raise UserError("choose the weights file to start from (a state dict or a "
                                "resnet-gui checkpoint) with the … button beside Weights file")
        return {"weights": weights,
                "freeze": self.freeze_combo.currentData() if weights else None,
                "pretrained_lr_scale": float(self.rate_spin.value())}

    def update_enabled(self, idle: bool = True) -> None:
        """The file row only for a file; freezing and the rate only for learned weights."""
        choice = self.start_combo.currentData()
        self.file_label.setVisible(choice == FILE)
        self.file_row.setVisible(choice == FILE)
        learned = choice is not RANDOM
        self.freeze_combo.setEnabled(idle and learned)
        self.rate_spin.setEnabled(idle and learned)
        self.freeze_combo.setToolTip("The stem and the stages up to this one stay fixed "
                                     "(batch norms in eval mode)" if learned else
                                     RANDOM_FREEZE_TIP)

    # -- internals -----------------------------------------------------------------------

    def browse(self) -> bool:
        """Ask for a weights file; False when cancelled."""
        path = self.ask_file(self.file_edit.text())
        if not path:
            return False
        self.file_edit.setText(path)
        self._edited()
        return True

    def _start_chosen(self) -> None:
        if self.start_combo.currentData() == FILE and not self.file_edit.text().strip() \
                and not self.browse():
            self.start_combo.setCurrentIndex(self.start_combo.findData(RANDOM))
            return
        self._edited()

    def _edited(self, *_: object) -> None:
        self.update_enabled(self.start_combo.isEnabled())
        self.changed.emit()


def _choose(combo: QComboBox, value: object) -> None:
    index = combo.findData(value)
    if index < 0:  # a stored stage this network lacks: shown, and refused at Start
        combo.addItem(str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)
