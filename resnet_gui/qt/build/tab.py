"""The Build tab: the palette on the left, the canvas over the layer table in the middle, the
inspector on the right.

The tab owns the editor controller of the window's document. It offers the frame two things
to place: its actions (:class:`resnet_gui.qt.build.actions.BuildActions`, made by the frame)
and the input bar for the toolbar.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from resnet_gui.arch import edits
from resnet_gui.arch.document import Document
from resnet_gui.arch.edits import Part
from resnet_gui.qt.build.canvas import ArchitectureCanvas
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.build.input_bar import InputBar
from resnet_gui.qt.build.inspector import Inspector
from resnet_gui.qt.build.layer_table import LayerTablePanel
from resnet_gui.qt.build.mime import BLOCK, HEAD, SHORTCUT, STAGE, STEM, Payload
from resnet_gui.qt.build.palette import BlockPalette
from resnet_gui.qt.shared.datasets import DatasetChoice

# Where the splitters' positions are remembered (the keys predate the tabs).
SPLITTER_KEYS = ("window/main_splitter", "window/centre_splitter")


class BuildTab(QWidget):
    """``buildTab``: edit the architecture; ``controller`` holds the document, the selection
    and the live analysis."""

    def __init__(self, document: Document, dataset: DatasetChoice,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("buildTab")
        self.controller = EditorController(document, parent=self)
        self.palette_widget = BlockPalette()
        self.palette_widget.partActivated.connect(self.add_part)
        self.canvas = ArchitectureCanvas(self.controller)
        self.lock_banner = self._make_lock_banner()
        self.table_panel = LayerTablePanel(self.controller)
        self.inspector = Inspector(self.controller)
        self.input_bar = InputBar(self.controller, dataset)
        self._lay_out()
        self.controller.lockChanged.connect(self._on_lock)

    # -- layout --------------------------------------------------------------------------

    @staticmethod
    def _make_lock_banner() -> QLabel:
        banner = QLabel()
        banner.setObjectName("lockBanner")
        banner.setWordWrap(True)
        banner.setStyleSheet(
            "QLabel { color: #7a4a0c; background: #fdf0dc; border-bottom: 1px solid #f0c68a;"
            " padding: 5px 10px; }")
        banner.hide()
        return banner

    def _lay_out(self) -> None:
        canvas_box = QWidget()
        canvas_layout = QVBoxLayout(canvas_box)
        canvas_layout.setContentsMargins(0, 0, 0, 0)
        canvas_layout.setSpacing(0)
        canvas_layout.addWidget(self.lock_banner)
        canvas_layout.addWidget(self.canvas, 1)

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

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.main_splitter)

    def apply_default_proportions(self, size: QSize) -> None:
        """Share a window of ``size`` between the palette, the canvas and the inspector."""
        unit = self.fontMetrics().averageCharWidth()
        palette = max(200, 27 * unit)
        inspector = max(340, 44 * unit)
        self.main_splitter.setSizes([palette, max(400, size.width() - palette - inspector),
                                     inspector])
        height = size.height() - 120
        self.centre_splitter.setSizes([int(height * 0.58), int(height * 0.42)])

    def restore_state(self, settings: QSettings) -> None:
        for splitter, key in zip((self.main_splitter, self.centre_splitter), SPLITTER_KEYS):
            state = settings.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                splitter.restoreState(state)

    def save_state(self, settings: QSettings) -> None:
        for splitter, key in zip((self.main_splitter, self.centre_splitter), SPLITTER_KEYS):
            settings.setValue(key, splitter.saveState())

    # -- reacting ------------------------------------------------------------------------

    def _on_lock(self, locked: bool, reason: str) -> None:
        self.lock_banner.setText(f"🔒 The architecture is locked while {reason}. Stop the run "
                                 "to edit it; the next run uses the edited version.")
        self.lock_banner.setVisible(locked)
        self.palette_widget.set_locked(locked)

    # -- editing from the palette and the toolbar ----------------------------------------

    def add_part(self, category: str, value: str) -> bool:
        """Add a palette part without dragging: next to the selection, or at the end."""
        arch = self.controller.arch
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
