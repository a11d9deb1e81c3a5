"""The training settings form: every field of a :class:`Recipe` a user tunes, both ways.

``recipe()`` reads the widgets into a validated recipe; ``set_recipe()`` shows one (with
signals blocked, so showing is never mistaken for editing). The form holds no logic beyond
mapping widgets to recipe fields: the network's input size is the Build tab's (a recipe that
names a size hands it over with ``input_size_requested``), and what the "auto" settings will
be for this run is shown with :meth:`RecipeForm.show_plan`.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.arch.datasets import DATASETS, FOLDER_PREFIX
from resnet_gui.arch.recipe import (
    AUTO_GRAD_CLIP,
    CHAPTER_RECIPE,
    RECIPE_PRESETS,
    Recipe,
    clips_gradients,
    validate_recipe,
)
from resnet_gui.qt.shared.process_worker import THIS_PROCESS, ProcessChoice, process_choices
from resnet_gui.qt.train.start_from import StartFromFields

DATASET_CHOICES = (
    *((dataset.key, dataset.name) for dataset in DATASETS),
    ("folder", "Image folder…"),
)
OPTIMIZER_CHOICES = (("sgd", "SGD (momentum)"), ("adamw", "AdamW"))
SCHEDULE_CHOICES = (
    ("constant", "Constant (the chapter)"),
    ("step", "Step decay"),
    ("cosine", "Cosine"),
    ("onecycle", "One-cycle"),
)
INIT_CHOICES = (("kaiming", "Kaiming"), ("xavier", "Xavier (the chapter)"))
PRECISION_CHOICES = (
    ("auto", "Automatic"),
    ("fp32", "fp32"),
    ("bf16", "bf16 (mixed)"),
    ("fp16", "fp16 (mixed)"),
)


def available_devices() -> list[tuple[str, str]]:
    """(recipe value, label) for "auto", the CPU, and every CUDA device and MPS present."""
    import torch

    devices = [("auto", "Automatic"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            devices.append((f"cuda:{index}", f"cuda:{index} — {torch.cuda.get_device_name(index)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append(("mps", "Apple GPU (MPS)"))
    return devices


def default_data_dir_text() -> str:
    """The folder the engine reads when the field is left empty (for the placeholder)."""
    try:
        from resnet_gui.engine.data import default_data_dir

        return str(default_data_dir())
    except Exception:  # the engine cannot say (e.g. an unreadable home): no hint
        return os.environ.get("RESNET_GUI_DATA", "")


def device_default_recipe() -> Recipe:
    """Settings that train well here: the `fmnist-fast` recipe (one-cycle Nesterov SGD, batch
    256, 93 % on Fashion-MNIST in under five minutes on a 2-core CPU); device and precision
    "auto" pick the GPU and bf16/fp16 where there is one."""
    return RECIPE_PRESETS["fmnist-fast"]


# A setting left to the plan (None), or given.
AUTO_CHOICES = ((None, "Auto"), (True, "On"), (False, "Off"))


def _auto_text(planned: bool | None) -> str:
    return "Auto" if planned is None else f"Auto ({'on' if planned else 'off'} for this run)"


def _combo(name: str, choices) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(name)
    for value, label in choices:
        combo.addItem(label, value)
    return combo


def _select(combo: QComboBox, value: Any) -> None:
    index = combo.findData(value)
    if index < 0:  # a stored value this machine does not list (a CUDA device gone)
        combo.addItem(str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


class ClipSpinBox(QDoubleSpinBox):
    """The gradients' norm limit: its minimum (-1) is "auto", 0 is "off"."""

    AUTO, OFF = -1.0, 0.0

    def __init__(self) -> None:
        super().__init__()
        self.setRange(self.AUTO, 1000.0)
        self.setDecimals(2)
        self.setSingleStep(1.0)
        self.setSpecialValueText("auto")

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt naming)
        return "off" if value == self.OFF else super().textFromValue(value)

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt naming)
        return self.OFF if text.strip().lower() == "off" else super().valueFromText(text)

    def validate(self, text: str, position: int):
        typed = text.strip().lower()
        if typed and "off".startswith(typed):  # typing "off"
            state = QValidator.State.Acceptable if typed == "off" else QValidator.State.Intermediate
            return state, text, position
        return super().validate(text, position)

    def clip(self) -> float | None:
        """The recipe's ``grad_clip``: None for auto."""
        return None if self.value() < self.OFF else float(self.value())

    def show_clip(self, clip: float | None) -> None:
        self.setValue(self.AUTO if clip is None else clip)


def _with_chosen_data(recipe: Recipe, current: Recipe) -> Recipe:
    """``recipe`` with ``current``'s dataset, data folder, subsets and starting weights."""
    return recipe.replace(
        dataset=current.dataset, data_dir=current.data_dir,
        limit_train=current.limit_train, limit_test=current.limit_test,
        **_starting_weights(current))


def _starting_weights(recipe: Recipe) -> dict[str, Any]:
    """Where the weights start: kept when a preset of settings replaces the rest."""
    return {"weights": recipe.weights, "freeze": recipe.freeze,
            "pretrained_lr_scale": recipe.pretrained_lr_scale}


class RecipeForm(QWidget):
    """Dataset, data folder, subset, epochs, batch, optimizer, learning rate and schedule,
    augmentation, precise batch norm, initialisation, device, processes, precision and seed.
    The processes are no part of the recipe: :meth:`processes` says where the run goes."""

    changed = Signal()
    input_size_requested = Signal(int, str)  # pixels, the undoable edit's label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recipeForm")
        self._base = Recipe()  # fields the form does not show keep the shown recipe's values

        self._make_data_fields()
        self._make_training_fields()
        self.start_from = StartFromFields(self)
        self._make_machine_fields()
        self._make_buttons()
        self._lay_out()
        self._connect_edits()
        self.set_recipe(device_default_recipe())

    # -- building ------------------------------------------------------------------------

    def _make_data_fields(self) -> None:
        """Dataset, data folder, training subset, and the images' size as the network sees
        them."""
        self.dataset_combo = _combo("trainDatasetCombo", DATASET_CHOICES)
        self.folder_edit = QLineEdit()
        self.folder_edit.setObjectName("dataFolderEdit")
        self.folder_edit.setClearButtonEnabled(True)
        self.folder_button = QToolButton()
        self.folder_button.setText("…")
        self.folder_button.setToolTip("Choose a folder")
        self.folder_button.clicked.connect(self._browse)
        self.folder_label = QLabel("Data folder")

        self.subset_spin = QSpinBox()
        self.subset_spin.setObjectName("subsetSpin")
        self.subset_spin.setRange(0, 10_000_000)
        self.subset_spin.setSingleStep(1000)
        self.subset_spin.setSpecialValueText("all")
        self.subset_spin.setToolTip("Training images used (class-balanced); 'all' uses every "
                                    "one. A few thousand make a quick try.")
        self.image_size_label = QLabel()
        self.image_size_label.setObjectName("imageSizeLabel")
        self.image_size_label.setWordWrap(True)
        self.image_size_label.setStyleSheet("color: #5b6474;")
        self.image_size_label.setToolTip("The network's input size is the Build tab's Input: "
                                         "change it there (the chapter uses 96)")

    def _make_training_fields(self) -> None:
        """Epochs, batch, optimizer and its settings, schedule, augmentation, initialisation."""
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setObjectName("epochsSpin")
        self.epochs_spin.setRange(1, 10_000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setObjectName("batchSpin")
        self.batch_spin.setRange(0, 65_536)
        self.batch_spin.setSpecialValueText("auto")  # 0: chosen for the run's length
        self.batch_spin.setToolTip("Images per step; 'auto' chooses it for the run's length "
                                   "(small batches for short runs, so that they take enough "
                                   "steps to learn)")
        self.optimizer_combo = _combo("optimizerCombo", OPTIMIZER_CHOICES)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setObjectName("lrSpin")
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(0.0, 10.0)
        self.lr_spin.setSpecialValueText("auto")  # 0: chosen for the optimizer and batch
        self.lr_spin.setSingleStep(0.01)
        self.lr_spin.setToolTip("Peak learning rate; 'auto' chooses it for the optimizer and "
                                "the batch size")
        self.clip_spin = ClipSpinBox()
        self.clip_spin.setObjectName("gradClipSpin")
        self.clip_spin.setToolTip(
            "Largest norm of all gradients together, clipped each step; 'auto' clips at "
            f"{AUTO_GRAD_CLIP:g} when the learning rate is auto too (an untrained network's "
            "first steps stay bounded), and not when you set the rate; 'off' never clips")
        self.momentum_spin = QDoubleSpinBox()
        self.momentum_spin.setObjectName("momentumSpin")
        self.momentum_spin.setRange(0.0, 0.999)
        self.momentum_spin.setDecimals(3)
        self.momentum_spin.setSingleStep(0.05)
        self.weight_decay_spin = QDoubleSpinBox()
        self.weight_decay_spin.setObjectName("weightDecaySpin")
        self.weight_decay_spin.setDecimals(5)
        self.weight_decay_spin.setRange(0.0, 1.0)
        self.weight_decay_spin.setSingleStep(0.0001)
        self.schedule_combo = _combo("scheduleCombo", SCHEDULE_CHOICES)
        self.warmup_spin = QDoubleSpinBox()
        self.warmup_spin.setObjectName("warmupSpin")
        self.warmup_spin.setRange(0.0, 1000.0)
        self.warmup_spin.setDecimals(1)
        self.warmup_spin.setSuffix(" epochs")
        self.augment_combo = _combo("augmentCombo", AUTO_CHOICES)
        self.augment_combo.setToolTip("Random crops and flips of the training images; 'auto' "
                                      "turns them on for long plans only, where they pay off")
        self.precise_bn_combo = _combo("preciseBnCombo", AUTO_CHOICES)
        self.precise_bn_combo.setToolTip(
            "Recompute the batch-norm statistics over training images before each test; "
            "'auto' does so for short plans, whose running averages lag behind the weights")
        self.init_combo = _combo("initCombo", INIT_CHOICES)

    def _make_machine_fields(self) -> None:
        """Device, precision and seed."""
        self.device_combo = _combo("deviceCombo", available_devices())
        self.processes_combo = _combo("processesCombo", ((choice, choice.label)
                                                         for choice in process_choices()))
        self.processes_combo.setToolTip(
            "This process trains in the window. Several processes train the same run through "
            "torchrun (one per GPU, or two on the CPU to try it), the batch size shared among "
            "them; Pause and Stop reach every one, and the trained network comes back for "
            "Inspect when the run ends.")
        self.precision_combo = _combo("precisionCombo", PRECISION_CHOICES)
        self.seed_spin = QSpinBox()
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(0, 2**31 - 1)

    def _make_buttons(self) -> None:
        self.chapter_button = QPushButton("Chapter recipe")
        self.chapter_button.setObjectName("chapterRecipeButton")
        self.chapter_button.setToolTip("The D2L chapter's settings: lr 0.05, batch 128, plain "
                                       "SGD, Xavier initialisation, no augmentation, and a "
                                       "96-pixel input (set in the Build tab; undoable)")
        self.chapter_button.clicked.connect(self.use_chapter_recipe)
        self.defaults_button = QPushButton("Fast defaults")
        self.defaults_button.setObjectName("deviceDefaultsButton")
        self.defaults_button.setToolTip("Settings that train well on this machine")
        self.defaults_button.clicked.connect(self.use_device_defaults)

    def _lay_out(self) -> None:
        folder_row = QHBoxLayout()
        folder_row.setContentsMargins(0, 0, 0, 0)
        folder_row.addWidget(self.folder_edit)
        folder_row.addWidget(self.folder_button)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Dataset", self.dataset_combo)
        form.addRow(self.folder_label, folder_row)
        form.addRow("Training images", self.subset_spin)
        form.addRow("Image size", self.image_size_label)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Optimizer", self.optimizer_combo)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Gradient clip", self.clip_spin)
        form.addRow("Momentum", self.momentum_spin)
        form.addRow("Weight decay", self.weight_decay_spin)
        form.addRow("Schedule", self.schedule_combo)
        form.addRow("Warm-up", self.warmup_spin)
        form.addRow("Augmentation", self.augment_combo)
        form.addRow("Precise batch norm", self.precise_bn_combo)
        form.addRow("Initialisation", self.init_combo)
        for label, field in self.start_from.rows():
            form.addRow(label, field)
        form.addRow("Device", self.device_combo)
        form.addRow("Processes", self.processes_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Seed", self.seed_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.chapter_button)
        buttons.addWidget(self.defaults_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def _connect_edits(self) -> None:
        """Every field's change is one ``changed`` signal."""
        for widget in (self.subset_spin, self.epochs_spin, self.batch_spin, self.seed_spin):
            widget.valueChanged.connect(self._edited)
        for widget in (self.lr_spin, self.clip_spin, self.momentum_spin,
                       self.weight_decay_spin, self.warmup_spin):
            widget.valueChanged.connect(self._edited)
        for widget in (self.dataset_combo, self.optimizer_combo, self.schedule_combo,
                       self.augment_combo, self.precise_bn_combo, self.init_combo,
                       self.device_combo, self.precision_combo, self.processes_combo):
            widget.currentIndexChanged.connect(self._edited)
        self.folder_edit.editingFinished.connect(self._edited)
        self.start_from.changed.connect(self._edited)

    # -- recipe <-> widgets --------------------------------------------------------------

    def set_recipe(self, recipe: Recipe) -> None:
        """Show ``recipe``. A size it names (the chapter's 96) goes to the network's input,
        the one size that trains, through ``input_size_requested``."""
        if recipe.resize is not None:
            self.input_size_requested.emit(recipe.resize, f"Input size {recipe.resize}")
            recipe = recipe.replace(resize=None)
        self._base = recipe
        widgets = self.findChildren(QWidget)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            if recipe.dataset.startswith(FOLDER_PREFIX):
                _select(self.dataset_combo, "folder")
                self.folder_edit.setText(recipe.dataset[len(FOLDER_PREFIX):])
            else:
                _select(self.dataset_combo, recipe.dataset)
                self.folder_edit.setText(recipe.data_dir or "")
            self.subset_spin.setValue(recipe.limit_train or 0)
            self.epochs_spin.setValue(recipe.epochs)
            self.batch_spin.setValue(recipe.batch_size or 0)
            _select(self.optimizer_combo, recipe.optimizer)
            self.lr_spin.setValue(recipe.lr or 0.0)
            self.clip_spin.show_clip(recipe.grad_clip)
            self.momentum_spin.setValue(recipe.momentum)
            self.weight_decay_spin.setValue(recipe.weight_decay)
            _select(self.schedule_combo, recipe.schedule)
            self.warmup_spin.setValue(recipe.warmup_epochs)
            _select(self.augment_combo, recipe.augment)
            _select(self.precise_bn_combo, recipe.precise_bn)
            _select(self.init_combo, recipe.init)
            _select(self.device_combo, recipe.device)
            _select(self.precision_combo, recipe.precision)
            self.seed_spin.setValue(recipe.seed)
            self.start_from.show(recipe)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._update_folder_field()
        self.changed.emit()

    def recipe(self) -> Recipe:
        """The recipe the widgets show; raises UserError naming a bad setting."""
        dataset = self.dataset_combo.currentData()
        folder = self.folder_edit.text().strip() or None
        if dataset == "folder":
            from resnet_gui.errors import UserError

            if not folder:
                raise UserError("choose the image folder to train on (one sub-folder per "
                                "class) in the Image folder field")
            dataset, data_dir = f"{FOLDER_PREFIX}{folder}", self._base.data_dir
        else:
            data_dir = folder
        return validate_recipe(self._base.replace(
            dataset=dataset,
            data_dir=data_dir,
            limit_train=self.subset_spin.value() or None,
            resize=None,  # the network's input size trains (the Build tab's Input)
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value() or None,
            optimizer=self.optimizer_combo.currentData(),
            lr=float(self.lr_spin.value()) or None,
            grad_clip=self.clip_spin.clip(),
            momentum=float(self.momentum_spin.value()),
            weight_decay=float(self.weight_decay_spin.value()),
            schedule=self.schedule_combo.currentData(),
            warmup_epochs=float(self.warmup_spin.value()),
            augment=self.augment_combo.currentData(),
            precise_bn=self.precise_bn_combo.currentData(),
            init=self.init_combo.currentData(),
            device=self.device_combo.currentData(),
            precision=self.precision_combo.currentData(),
            seed=self.seed_spin.value(),
            **self.start_from.read(),
        ))

    def use_chapter_recipe(self) -> None:
        """The chapter's settings, and its 96-pixel input for the network (an undoable edit
        in the Build tab); the dataset, data folder and subset stay as chosen."""
        current = self._current_or_base()
        self.set_recipe(_with_chosen_data(CHAPTER_RECIPE, current).replace(
            device=current.device))

    def use_device_defaults(self) -> None:
        self.set_recipe(_with_chosen_data(device_default_recipe(), self._current_or_base()))

    def use_recipe(self, recipe: Recipe) -> None:
        """``recipe``'s plan; the data, the starting weights, the device, the precision and
        the seed stay as chosen."""
        current = self._current_or_base()
        self.set_recipe(_with_chosen_data(recipe, current).replace(
            device=current.device, precision=current.precision, seed=current.seed))

    def show_plan(self, planned: Recipe | None, image_size_text: str) -> None:
        """Say what "auto" will choose for this run (``planned``: the recipe with every auto
        setting chosen, None when the run's length is not known yet) and the images' size."""
        self.image_size_label.setText(image_size_text)
        if planned is None:
            batch, lr, clip = "auto", "auto", "auto"
        else:
            batch, lr = f"auto ({planned.batch_size})", f"auto ({planned.lr:.4g})"
            clip = f"auto ({planned.grad_clip:g})" if clips_gradients(planned) else "auto (off)"
        self.batch_spin.setSpecialValueText(batch)
        self.lr_spin.setSpecialValueText(lr)
        self.clip_spin.setSpecialValueText(clip)
        for combo, value in ((self.augment_combo, planned and planned.augment),
                             (self.precise_bn_combo, planned and planned.precise_bn)):
            combo.setItemText(combo.findData(None), _auto_text(
                None if planned is None else bool(value)))

    def set_data_folder(self, folder: str) -> None:
        """Where the built-in datasets are kept (File > Data folder, ``--data-dir``); an image
        folder being trained on stays."""
        if self.dataset_combo.currentData() != "folder" and self.folder_edit.text() != folder:
            self.folder_edit.setText(folder)
            self._edited()

    def set_enabled_for_run(self, idle: bool) -> None:
        for child in self.findChildren(QWidget):
            child.setEnabled(idle)
        self.start_from.update_enabled(idle)
        self._update_device_field()

    def set_architecture(self, arch) -> None:
        """What the network allows: ImageNet weights for torchvision's networks, freezing
        up to its stages."""
        self.start_from.set_architecture(arch)

    def processes(self) -> ProcessChoice:
        """Where the run trains: this process, or several (each on the choice's device)."""
        return self.processes_combo.currentData() or THIS_PROCESS

    # -- internals -----------------------------------------------------------------------

    def _current_or_base(self) -> Recipe:
        try:
            return self.recipe()
        except Exception:
            return self._base

    def _edited(self, *_: Any) -> None:
        self._update_folder_field()
        self._update_device_field()
        self.changed.emit()

    def _update_device_field(self) -> None:
        """Several processes take the device of their choice (the CPU, or one GPU each)."""
        several = self.processes().several
        self.device_combo.setEnabled(self.epochs_spin.isEnabled() and not several)
        self.device_combo.setToolTip("Set by Processes: each process has its own device"
                                     if several else "")

    def _update_folder_field(self) -> None:
        if self.dataset_combo.currentData() == "folder":
            self.folder_label.setText("Image folder")
            self.folder_edit.setPlaceholderText("a folder with one sub-folder per class")
        else:
            self.folder_label.setText("Data folder")
            self.folder_edit.setPlaceholderText(default_data_dir_text() or "default")

    def _browse(self) -> None:
        start = self.folder_edit.text() or default_data_dir_text()
        folder = QFileDialog.getExistingDirectory(self, self.folder_label.text(), start)
        if folder:
            self.folder_edit.setText(folder)
            self._edited()
