"""The inspector: the fields of the selected stem, stage, block or head, and what the last
change cost in parameters and multiply-adds (the Cost box is cost_table.py).

Every field forwards its new value to the controller in one call; the inspector refreshes
from the controller with signals blocked, so a refresh never echoes back as an edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.build.cost_table import CostTable
from resnet_gui.qt.shared.icons import block_icon, icon
from resnet_gui.arch import edits
from resnet_gui.arch.edits import IDENTITY, Part
from resnet_gui.arch.model import (
    BLOCK_DESCRIPTIONS,
    BLOCK_KINDS,
    MAX_BLOCKS_PER_STAGE,
    MAX_KERNEL,
    MAX_STRIDE,
    MAX_WIDTH,
    POOL_KINDS,
    SHORTCUT_DESCRIPTIONS,
    SHORTCUT_KINDS,
    STEM_DESCRIPTIONS,
    STEM_KINDS,
)

SHORTCUT_NOTE = {
    None: "none: a plain block adds nothing back",
    IDENTITY: "identity: the input is added back unchanged",
    "projection": "projection: a 1×1 convolution reshapes the input",
    "zero-pad": "zero-padding: subsample, pad the new channels with zeros",
    "avgpool-projection": "average pool, then a 1×1 convolution",
}


def _spin(minimum: int, maximum: int, tooltip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(minimum, maximum)
    spin.setKeyboardTracking(False)  # one edit per typed number, not one per digit
    spin.setToolTip(tooltip)
    spin.setAccelerated(True)
    return spin


def _combo(items: tuple[str, ...], descriptions: dict[str, str] | None = None) -> QComboBox:
    combo = QComboBox()
    for item in items:
        combo.addItem(item, item)
        if descriptions and item in descriptions:
            combo.setItemData(combo.count() - 1, descriptions[item], Qt.ItemDataRole.ToolTipRole)
    return combo


def _set_combo(combo: QComboBox, value: str | None) -> None:
    with QSignalBlocker(combo):
        combo.setCurrentIndex(combo.findData(value) if value is not None else -1)


def _set_spin(spin, value) -> None:
    with QSignalBlocker(spin):
        spin.setValue(value)


def _set_check(check: QCheckBox, value: bool) -> None:
    with QSignalBlocker(check):
        check.setChecked(value)


def _form() -> tuple[QWidget, QFormLayout]:
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return page, form


def _note() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet("QLabel { color: #5b6474; }")
    return label


class Inspector(QWidget):
    """objectName ``inspector``."""

    def __init__(self, controller: EditorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        self.controller = controller
        self.part: Part | None = None

        self.pages = QStackedWidget()
        self.pages.addWidget(self._network_page())
        self.pages.addWidget(self._stem_page())
        self.pages.addWidget(self._stage_page())
        self.pages.addWidget(self._block_page())
        self.pages.addWidget(self._head_page())
        self.cost_table = CostTable()
        self.cost_labels = self.cost_table.labels
        self._lay_out(self._make_heading(), self._make_problem_notes())

        controller.selectionChanged.connect(self.refresh)
        controller.documentChanged.connect(self.refresh)
        controller.analysisChanged.connect(self.refresh_costs)
        controller.lockChanged.connect(lambda *_: self.refresh())
        self.refresh()

    def _make_heading(self) -> QHBoxLayout:
        self.icon_label = QLabel()
        self.title = QLabel()
        title_font = self.title.font()
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.subtitle = _note()
        heading = QHBoxLayout()
        heading.addWidget(self.icon_label)
        heading.addWidget(self.title, 1)
        return heading

    def _make_problem_notes(self) -> tuple[QLabel, QLabel]:
        """The reason the network cannot be built, and the note that editing is locked."""
        self.problem = QLabel()
        self.problem.setObjectName("inspectorProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(
            "QLabel { color: #991b1b; background: #fde2e2; border: 1px solid #f5a5a5;"
            " border-radius: 4px; padding: 6px; }")
        self.problem.hide()
        self.locked_note = QLabel()
        self.locked_note.setWordWrap(True)
        self.locked_note.setStyleSheet(
            "QLabel { color: #7a4a0c; background: #fdf0dc; border: 1px solid #f0c68a;"
            " border-radius: 4px; padding: 6px; }")
        self.locked_note.hide()
        return self.problem, self.locked_note

    def _lay_out(self, heading: QHBoxLayout, notes: tuple[QLabel, QLabel]) -> None:
        problem, locked_note = notes
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addLayout(heading)
        layout.addWidget(self.subtitle)
        layout.addWidget(locked_note)
        layout.addWidget(self.pages)
        layout.addWidget(problem)
        layout.addWidget(self.cost_table)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # -- editing helpers -----------------------------------------------------------------

    def _edit(self, function: Callable[..., Any], *args: Any, label: str, field: str = "",
              **kwargs: Any) -> None:
        """One inspector edit; stepping the same field of the same part is one undo step."""
        merge_key = (self.part, field) if field else None
        self.controller.edit(function, *args, label=label, merge_key=merge_key, **kwargs)

    def _stage_edit(self, field: str, value: Any, what: str) -> None:
        part = self.part
        if part is None or part.kind != edits.STAGE:
            return
        self._edit(edits.set_stage, part.stage_index, label=f"Change layer{part.stage_index + 1} "
                   f"{what}", field=field, **{field: value})

    def _stem_edit(self, field: str, value: Any, what: str) -> None:
        self._edit(edits.set_stem, label=f"Change the stem {what}", field=field, **{field: value})

    def _head_edit(self, field: str, value: Any, what: str) -> None:
        self._edit(edits.set_head, label=f"Change the head {what}", field=field, **{field: value})

    # -- pages ---------------------------------------------------------------------------

    def _network_page(self) -> QWidget:
        page, form = _form()
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("networkName")
        self.name_edit.editingFinished.connect(
            lambda: self._edit(edits.set_name, self.name_edit.text().strip() or "custom",
                               label="Rename the network"))
        form.addRow("Name", self.name_edit)
        self.network_note = _note()
        form.addRow(self.network_note)
        return page

    def _stem_page(self) -> QWidget:
        page, form = _form()
        self.stem_kind = _combo(STEM_KINDS, STEM_DESCRIPTIONS)
        self.stem_kind.currentIndexChanged.connect(
            lambda: self._stem_edit("kind", self.stem_kind.currentData(), "kind"))
        self.stem_width = _spin(1, MAX_WIDTH, "Output channels of the stem")
        self.stem_width.valueChanged.connect(lambda v: self._stem_edit("width", v, "width"))
        self.stem_kernel = _spin(1, MAX_KERNEL, "Kernel size of the single convolution")
        self.stem_kernel.valueChanged.connect(lambda v: self._stem_edit("kernel", v, "kernel"))
        self.stem_stride = _spin(1, MAX_STRIDE, "Stride of the first convolution")
        self.stem_stride.valueChanged.connect(lambda v: self._stem_edit("stride", v, "stride"))
        self.stem_padding = _spin(-1, MAX_KERNEL, "Padding; auto keeps 'same'-style kernel // 2")
        self.stem_padding.setSpecialValueText("auto")
        self.stem_padding.valueChanged.connect(
            lambda v: self._stem_edit("padding", None if v < 0 else v, "padding"))
        self.stem_bias = QCheckBox("Bias on the convolution")
        self.stem_bias.toggled.connect(lambda v: self._stem_edit("bias", v, "bias"))
        self.stem_norm = QCheckBox("Batch norm")
        self.stem_norm.toggled.connect(lambda v: self._stem_edit("batch_norm", v, "batch norm"))
        self.stem_pool = QCheckBox("3×3 max pool, stride 2")
        self.stem_pool.toggled.connect(lambda v: self._stem_edit("max_pool", v, "max pool"))
        form.addRow("Kind", self.stem_kind)
        form.addRow("Width", self.stem_width)
        form.addRow("Kernel", self.stem_kernel)
        form.addRow("Stride", self.stem_stride)
        form.addRow("Padding", self.stem_padding)
        form.addRow("", self.stem_bias)
        form.addRow("", self.stem_norm)
        form.addRow("", self.stem_pool)
        return page

    def _stage_page(self) -> QWidget:
        page, form = _form()
        self.stage_kind = _combo(BLOCK_KINDS, BLOCK_DESCRIPTIONS)
        self.stage_kind.setObjectName("stageBlockKind")
        self.stage_kind.setPlaceholderText("mixed kinds")
        self.stage_kind.setToolTip("Morph every block of the stage into this kind")
        for index, kind in enumerate(BLOCK_KINDS):
            self.stage_kind.setItemIcon(index, block_icon(kind))
        self.stage_kind.currentIndexChanged.connect(
            lambda: self._stage_edit("block", self.stage_kind.currentData(), "block kind"))
        self.stage_blocks = _spin(1, MAX_BLOCKS_PER_STAGE, "How many blocks the stage has")
        self.stage_blocks.setObjectName("stageBlocks")
        self.stage_blocks.valueChanged.connect(
            lambda v: self._stage_edit("num_blocks", v, "block count"))
        self.stage_width = _spin(1, MAX_WIDTH, "Channels inside the blocks (a bottleneck "
                                 "outputs 4× this)")
        self.stage_width.setObjectName("stageWidth")
        self.stage_width.valueChanged.connect(lambda v: self._stage_edit("width", v, "width"))
        self.stage_stride = _spin(1, MAX_STRIDE, "Stride of the stage's first block: 2 halves "
                                  "the resolution")
        self.stage_stride.setObjectName("stageStride")
        self.stage_stride.valueChanged.connect(lambda v: self._stage_edit("stride", v, "stride"))
        self.stage_shortcut = _combo(SHORTCUT_KINDS, SHORTCUT_DESCRIPTIONS)
        self.stage_shortcut.setObjectName("stageShortcut")
        self.stage_shortcut.setToolTip("Used where a block changes the shape; elsewhere the "
                                       "shortcut is the identity")
        self.stage_shortcut.currentIndexChanged.connect(
            lambda: self._stage_edit("shortcut_kind", self.stage_shortcut.currentData(),
                                     "shortcut"))
        self.stage_shortcut_norm = QCheckBox("Batch norm on the shortcut")
        self.stage_shortcut_norm.toggled.connect(
            lambda v: self._stage_edit("shortcut_batch_norm", v, "shortcut batch norm"))
        self.stage_shortcut_bias = QCheckBox("Bias on the shortcut convolution")
        self.stage_shortcut_bias.toggled.connect(
            lambda v: self._stage_edit("shortcut_bias", v, "shortcut bias"))
        self.stage_bias = QCheckBox("Biases on the block convolutions")
        self.stage_bias.toggled.connect(lambda v: self._stage_edit("conv_bias", v, "conv bias"))
        self.stage_note = _note()
        form.addRow("Block kind", self.stage_kind)
        form.addRow("Blocks", self.stage_blocks)
        form.addRow("Width", self.stage_width)
        form.addRow("Stride", self.stage_stride)
        form.addRow("Shortcut", self.stage_shortcut)
        form.addRow("", self.stage_shortcut_norm)
        form.addRow("", self.stage_shortcut_bias)
        form.addRow("", self.stage_bias)
        form.addRow(self.stage_note)
        return page

    def _block_page(self) -> QWidget:
        page, form = _form()
        self.block_kind = _combo(BLOCK_KINDS, BLOCK_DESCRIPTIONS)
        self.block_kind.setObjectName("blockKind")
        for index, kind in enumerate(BLOCK_KINDS):
            self.block_kind.setItemIcon(index, block_icon(kind))
        self.block_kind.currentIndexChanged.connect(self._on_block_kind)
        self.block_note = _note()
        self.block_stage_button = QPushButton("Edit the stage…")
        self.block_stage_button.clicked.connect(
            lambda: self.part and self.controller.select(Part.stage(self.part.stage_index)))
        form.addRow("Kind", self.block_kind)
        form.addRow(self.block_note)
        form.addRow("", self.block_stage_button)
        return page

    def _on_block_kind(self) -> None:
        part = self.part
        if part is None or part.kind != edits.BLOCK:
            return
        kind = self.block_kind.currentData()
        self._edit(edits.set_blocks_kind, part.stage_index, part.block_index, part.count, kind,
                   label=f"Make {part.describe(self.controller.arch)} {kind}")

    def _head_page(self) -> QWidget:
        page, form = _form()
        self.head_pool = _combo(POOL_KINDS)
        self.head_pool.setToolTip("How each final feature map becomes one number")
        self.head_pool.currentIndexChanged.connect(
            lambda: self._head_edit("pool", self.head_pool.currentData(), "pooling"))
        self.head_dropout = QDoubleSpinBox()
        self.head_dropout.setRange(0.0, 0.95)
        self.head_dropout.setSingleStep(0.05)
        self.head_dropout.setDecimals(2)
        self.head_dropout.setKeyboardTracking(False)
        self.head_dropout.setSpecialValueText("none")
        self.head_dropout.valueChanged.connect(
            lambda v: self._head_edit("dropout", round(v, 4), "dropout"))
        self.head_note = _note()
        form.addRow("Pooling", self.head_pool)
        form.addRow("Dropout", self.head_dropout)
        form.addRow(self.head_note)
        return page

    # -- refresh -------------------------------------------------------------------------

    def refresh(self, *_args) -> None:
        controller = self.controller
        arch = controller.arch
        part = controller.selection
        if not edits.part_exists(arch, part):
            part = None
        self.part = part
        locked = controller.document.locked
        self.pages.setEnabled(not locked)
        self.locked_note.setVisible(locked)
        self.locked_note.setText(f"Editing is locked while {controller.document.locked_reason}.")
        if part is None:
            self.pages.setCurrentIndex(0)
            self.icon_label.setPixmap(icon("app").pixmap(28, 28))
            self.title.setText(arch.name)
            self.subtitle.setText("The whole network. Select a card on the canvas to edit it.")
            with QSignalBlocker(self.name_edit):
                self.name_edit.setText(arch.name)
            stages = "".join(
                f"<tr><td><b>layer{index + 1}</b>&nbsp;</td><td>{stage.block or 'mixed'} "
                f"×{stage.num_blocks} · {stage.width} wide"
                + (f" · /{stage.stride}" if stage.stride > 1 else "")
                + f" · {stage.shortcut.kind}</td></tr>"
                for index, stage in enumerate(arch.stages))
            self.network_note.setText(
                f"Input {arch.in_channels} × {arch.input_size[0]} × {arch.input_size[1]}, "
                f"{arch.num_classes} classes, {len(arch.stages)} stages, "
                f"{arch.num_blocks} blocks:<table style='margin: 6px 0'>{stages}</table>"
                "Drag parts from the palette onto the canvas. Delete removes the selection, "
                "Ctrl+D duplicates it, Ctrl+Z undoes any edit.")
        elif part.kind == edits.STEM:
            self._refresh_stem(arch)
        elif part.kind == edits.STAGE:
            self._refresh_stage(arch, part)
        elif part.kind == edits.BLOCK:
            self._refresh_block(arch, part)
        else:
            self._refresh_head(arch)
        self._fit_page()
        self.refresh_costs()

    def _fit_page(self) -> None:
        """Size the page stack to the page shown, not to the tallest page."""
        current = self.pages.currentIndex()
        for index in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if index == current else \
                QSizePolicy.Policy.Ignored
            self.pages.widget(index).setSizePolicy(policy, policy)
        self.pages.adjustSize()

    def _refresh_stem(self, arch) -> None:
        stem = arch.stem
        self.pages.setCurrentIndex(1)
        self.icon_label.setPixmap(icon("stem-deep" if stem.kind == "deep" else
                                       "stem-imagenet" if stem.kernel >= 5 else "stem-cifar")
                                  .pixmap(28, 28))
        self.title.setText("Stem")
        self.subtitle.setText(STEM_DESCRIPTIONS[stem.kind] if stem.kind in STEM_DESCRIPTIONS
                              else "")
        _set_combo(self.stem_kind, stem.kind)
        _set_spin(self.stem_width, stem.width)
        _set_spin(self.stem_kernel, stem.kernel)
        self.stem_kernel.setEnabled(stem.kind != "deep")
        _set_spin(self.stem_stride, stem.stride)
        _set_spin(self.stem_padding, -1 if stem.padding is None else stem.padding)
        self.stem_padding.setEnabled(stem.kind != "deep")
        _set_check(self.stem_bias, stem.bias)
        _set_check(self.stem_norm, stem.batch_norm)
        _set_check(self.stem_pool, stem.max_pool)

    def _refresh_stage(self, arch, part: Part) -> None:
        stage = arch.stages[part.stage_index]
        self.pages.setCurrentIndex(2)
        self.icon_label.setPixmap(icon("stage").pixmap(28, 28))
        self.title.setText(f"Stage layer{part.stage_index + 1}")
        self.subtitle.setText(f"{stage.num_blocks} blocks, {stage.out_channels} channels out. "
                              "Changing the block kind morphs the whole stage.")
        _set_combo(self.stage_kind, stage.block)
        _set_spin(self.stage_blocks, stage.num_blocks)
        _set_spin(self.stage_width, stage.width)
        _set_spin(self.stage_stride, stage.stride)
        _set_combo(self.stage_shortcut, stage.shortcut.kind)
        _set_check(self.stage_shortcut_norm, stage.shortcut.batch_norm)
        _set_check(self.stage_shortcut_bias, stage.shortcut.bias)
        _set_check(self.stage_bias, stage.conv_bias)
        kinds = {edits.block_shortcut(arch, part.stage_index, position)
                 for position in range(stage.num_blocks)}
        used = sorted((SHORTCUT_NOTE[kind] for kind in kinds), key=len)
        self.stage_note.setText("Shortcuts in this stage: " + "; ".join(used) + ".")

    def _refresh_block(self, arch, part: Part) -> None:
        stage = arch.stages[part.stage_index]
        kind = stage.blocks[part.block_index]
        self.pages.setCurrentIndex(3)
        self.icon_label.setPixmap(block_icon(kind).pixmap(28, 28))
        self.title.setText(part.describe(arch).capitalize())
        runs = f"{part.count} identical blocks, folded into one card. " if part.count > 1 else ""
        self.subtitle.setText(runs + BLOCK_DESCRIPTIONS.get(kind, ""))
        _set_combo(self.block_kind, kind)
        shortcut = edits.block_shortcut(arch, part.stage_index, part.block_index)
        channels_in = edits.block_in_channels(arch, part.stage_index, part.block_index)
        stride = stage.stride if part.block_index == 0 else 1
        out = stage.width * (4 if "bottleneck" in kind else 1)
        self.block_note.setText(
            f"{channels_in} → {out} channels, stride {stride}.<br>Shortcut: "
            f"{SHORTCUT_NOTE[shortcut]}.<br>The width, stride and shortcut kind belong to "
            "the stage.")

    def _refresh_head(self, arch) -> None:
        self.pages.setCurrentIndex(4)
        self.icon_label.setPixmap(icon(f"head-{arch.head.pool}").pixmap(28, 28))
        self.title.setText("Head")
        self.subtitle.setText("Global pooling, optional dropout, then a fully connected "
                              "layer to the classes.")
        _set_combo(self.head_pool, arch.head.pool)
        _set_spin(self.head_dropout, arch.head.dropout)
        self.head_note.setText(f"{arch.num_classes} classes, set by the dataset."
                               + (" Pre-activation blocks end un-normalised, so the head "
                                  "starts with BN and ReLU." if arch.final_preactivation else ""))

    def refresh_costs(self, *_args) -> None:
        """Before and after the last change, and why the network cannot be built (when the
        problem lies in what is selected, or nothing is)."""
        controller = self.controller
        self.cost_table.show_costs(controller)
        problem = controller.problem
        shown = problem is not None and _problem_concerns(controller.problem_part,
                                                          controller.selection)
        if shown:
            where = f"{problem.path}: " if problem.path else ""
            self.problem.setText(f"<b>Cannot build this network.</b> {where}{problem.reason}")
        self.problem.setVisible(shown)


def _problem_concerns(where: Part | None, part: Part | None) -> bool:
    """Whether a problem found in ``where`` is shown with ``part`` selected."""
    if part is None or where is None or where == part:
        return True
    if where.kind != edits.BLOCK or where.stage_index != part.stage_index:
        return False
    return part.kind == edits.STAGE or (part.kind == edits.BLOCK
                                        and where.block_index in part.block_range)
