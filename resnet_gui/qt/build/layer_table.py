"""The layer table: every layer's type, output shape, parameters and multiply-adds.

A tree model over the analysis rows (stages hold blocks, blocks hold layers), a view kept in
step with the canvas selection, a line naming the first failing layer when the architecture
is invalid, and the totals.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.qt.shared import formatting
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.arch import edits
from resnet_gui.arch.edits import Part

COLUMNS = ("Layer", "Type", "Output shape", "Parameters", "Multiply-adds", "Receptive field")
NUMERIC = {3, 4, 5}
HEADER_TIPS = {5: "Input pixels one unit of the output sees (theoretical, padding included), "
                  "and the jump: input pixels between neighbouring units"}
STALE = QColor("#9aa3b2")
FAILING_FILL = QColor("#fde2e2")
FAILING_TEXT = QColor("#b91c1c")
GROUP_FILL = QColor("#f1f5fb")


# Plain ints: the view asks for data thousands of times per repaint, and comparing or
# combining Qt's enum members in Python costs more than the answer itself.
DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole.value)
FOREGROUND = int(Qt.ItemDataRole.ForegroundRole.value)
BACKGROUND = int(Qt.ItemDataRole.BackgroundRole.value)
FONT = int(Qt.ItemDataRole.FontRole.value)
TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
ITEM_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


class _Node:
    __slots__ = ("row", "parent", "children", "index_in_parent", "texts", "group")

    def __init__(self, row: Any, parent: "_Node | None") -> None:
        self.row = row
        self.parent = parent
        self.children: list[_Node] = []
        self.index_in_parent = 0
        # The cells, formatted once rather than at every repaint.
        self.texts = (row.name, row.type, formatting.shape(row.output_shape),
                      formatting.count(row.params), formatting.count(row.macs),
                      formatting.receptive_field(row.receptive_field, row.jump)) if row else ()
        self.group = row is not None and not row.is_leaf


class LayerTreeModel(QAbstractItemModel):
    """One top-level row per top-level layer; blocks and their layers as children."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._root = _Node(None, None)
        self._by_name: dict[str, _Node] = {}
        self.analysis: Any = None
        self.stale = False
        self.failing = ""
        self._bold = QFont()
        self._bold.setBold(True)
        self._failing_row = ""
        self._failing_text, self._failing_fill = QBrush(FAILING_TEXT), QBrush(FAILING_FILL)
        self._stale_text, self._group_fill = QBrush(STALE), QBrush(GROUP_FILL)

    # -- filling -------------------------------------------------------------------------

    def set_analysis(self, analysis: Any, stale: bool, failing: str) -> bool:
        """Show ``analysis``; returns True when the rows were rebuilt (expansion is lost)."""
        if analysis is self.analysis:
            if (stale, failing) != (self.stale, self.failing):
                self.stale, self.failing = stale, failing
                self._failing_row = self.failing_row()
                if self._root.children:
                    self.dataChanged.emit(self.index(0, 0), self.index(
                        len(self._root.children) - 1, len(COLUMNS) - 1))
                    self._emit_children_changed(self._root)
            return False
        self.beginResetModel()
        self.analysis, self.stale, self.failing = analysis, stale, failing
        self._root = _Node(None, None)
        self._by_name = {}
        stack = [self._root]  # stack[d] is the parent for depth d
        for row in (analysis.layers if analysis is not None else ()):
            depth = max(0, min(row.depth, len(stack) - 1))
            del stack[depth + 1:]
            parent = stack[depth]
            node = _Node(row, parent)
            node.index_in_parent = len(parent.children)
            parent.children.append(node)
            self._by_name[row.name] = node
            stack.append(node)
        self._failing_row = self.failing_row()
        self.endResetModel()
        return True

    def _emit_children_changed(self, node: _Node) -> None:
        for child in node.children:
            if child.children:
                first = self.createIndex(0, 0, child.children[0])
                last = self.createIndex(len(child.children) - 1, len(COLUMNS) - 1,
                                        child.children[-1])
                self.dataChanged.emit(first, last)
                self._emit_children_changed(child)

    def index_for(self, name: str) -> QModelIndex:
        node = self._by_name.get(name)
        if node is None:
            return QModelIndex()
        return self.createIndex(node.index_in_parent, 0, node)

    def name_at(self, index: QModelIndex) -> str:
        node = self._node(index)
        return node.row.name if node is not None and node.row is not None else ""

    def top_level_names(self) -> list[str]:
        return [node.row.name for node in self._root.children]

    def failing_row(self) -> str:
        """The deepest shown row named by the failing path (itself or an ancestor)."""
        name = self.failing
        while name:
            if name in self._by_name:
                return name
            name = name.rpartition(".")[0]
        return ""

    # -- QAbstractItemModel --------------------------------------------------------------

    def _node(self, index: QModelIndex) -> _Node | None:
        return index.internalPointer() if index.isValid() else None

    def index(self, row: int, column: int, parent: QModelIndex = QModelIndex()) -> QModelIndex:
        node = self._node(parent) or self._root
        if 0 <= row < len(node.children) and 0 <= column < len(COLUMNS):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index: QModelIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        node = self._node(index)
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        return self.createIndex(node.parent.index_in_parent, 0, node.parent)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        node = self._node(parent) or self._root
        return len(node.children)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in NUMERIC:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if role == Qt.ItemDataRole.ToolTipRole:
                return HEADER_TIPS.get(section)
        return None

    def data(self, index: QModelIndex, role: int = DISPLAY):
        node = index.internalPointer()
        if node is None:
            return None
        column = index.column()
        if role == DISPLAY:
            return node.texts[column]
        if role == ALIGNMENT:
            return RIGHT if column >= 3 else None
        failing = self._failing_row and node.row.name == self._failing_row
        if role == FOREGROUND:
            if failing:
                return self._failing_text
            return self._stale_text if self.stale else None
        if role == BACKGROUND:
            if failing:
                return self._failing_fill
            return self._group_fill if node.group and node.row.depth == 0 else None
        if role == FONT:  # bold for the stage rows only: bold text costs repaint time
            return self._bold if (node.group and node.row.depth == 0) or failing else None
        if role == TOOLTIP:
            row = node.row
            return (f"{row.name} ({row.type}): output {node.texts[2]}, {node.texts[3]} "
                    f"parameters, {node.texts[4]} multiply-adds; receptive field "
                    f"{node.texts[5]}")
        return None

    def flags(self, index: QModelIndex):
        return ITEM_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags


class LayerTable(QTreeView):
    """The view; objectName ``layerTable``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layerTable")
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAnimated(False)
        self.setIndentation(14)
        self.setModel(LayerTreeModel(self))
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        metrics = self.fontMetrics()
        for column, sample in ((1, "AdaptiveAvgPool2d__"), (2, "2048 × 112 × 112_"),
                               (3, "2,000,000,000"), (4, "20,000,000,000__"),
                               (5, "1000 px, jump 32_")):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 12)

    def model(self) -> LayerTreeModel:  # type: ignore[override]
        return super().model()  # type: ignore[return-value]


class LayerTablePanel(QWidget):
    """The table, the failing-layer line above it and the totals below it."""

    refreshed = Signal()  # the table shows the controller's newest figures

    def __init__(self, controller: EditorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.table = LayerTable(self)
        self.problem_label = QLabel(self)
        self.problem_label.setObjectName("tableProblem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(
            "QLabel { color: #991b1b; background: #fde2e2; border: 1px solid #f5a5a5;"
            " border-radius: 4px; padding: 4px 8px; }")
        self.problem_label.hide()
        self.totals_label = QLabel(self)
        self.totals_label.setObjectName("totalsLabel")
        self.totals_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.totals_label.setStyleSheet("QLabel { padding: 3px 4px; }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.totals_label)
        self._expanded: set[str] | None = None  # None: the default (stages open)
        self._syncing = False
        self.table.expanded.connect(lambda index: self._remember(index, True))
        self.table.collapsed.connect(lambda index: self._remember(index, False))
        self.table.selectionModel().selectionChanged.connect(self._on_rows_selected)
        # New figures refresh the table one event later, after the canvas has repainted: two
        # short pauses of the event loop instead of one long one.
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)
        controller.analysisChanged.connect(self._refresh_timer.start)
        # Likewise the rows of a newly selected part are highlighted one event after the card.
        self._selection_timer = QTimer(self)
        self._selection_timer.setSingleShot(True)
        self._selection_timer.setInterval(0)
        self._selection_timer.timeout.connect(
            lambda: self._on_part_selected(self.controller.selection))
        controller.selectionChanged.connect(self._on_selection_changed)
        self.refresh()

    # -- refresh -------------------------------------------------------------------------

    @property
    def refresh_pending(self) -> bool:
        return self._refresh_timer.isActive() or self._selection_timer.isActive()

    def refresh(self) -> None:
        controller = self.controller
        model = self.table.model()
        problem = controller.problem
        failing = problem.path if problem is not None else ""
        stale = not controller.analysis_is_current
        rebuilt = model.set_analysis(controller.analysis, stale, failing)
        if rebuilt:
            self._restore_expansion()
            self._on_part_selected(controller.selection)
        if problem is not None:
            where = f"<b>{failing}</b>: " if failing else ""
            self.problem_label.setText(
                f"First failing layer — {where}{problem.reason}" if failing else
                f"The architecture is invalid: {problem.reason}")
            self.problem_label.show()
            row = model.failing_row()
            if row:
                index = model.index_for(row)
                self.table.scrollTo(index)
        else:
            self.problem_label.hide()
        self.totals_label.setText(totals_text(controller.analysis, stale,
                                              invalid=problem is not None))
        self.refreshed.emit()

    def _remember(self, index, expanded: bool) -> None:
        name = self.table.model().name_at(index)
        if self._expanded is None:
            self._expanded = set(self._default_expanded())
        if expanded:
            self._expanded.add(name)
        else:
            self._expanded.discard(name)

    def _default_expanded(self) -> list[str]:
        model = self.table.model()
        return [name for name in model.top_level_names() if name.startswith("layer")]

    def _restore_expansion(self) -> None:
        model = self.table.model()
        names = self._expanded if self._expanded is not None else self._default_expanded()
        self.table.blockSignals(True)
        try:
            for name in names:
                index = model.index_for(name)
                if index.isValid():
                    self.table.setExpanded(index, True)
        finally:
            self.table.blockSignals(False)

    def set_all_expanded(self, expanded: bool) -> None:
        if expanded:
            self.table.expandAll()
        else:
            self.table.collapseAll()

    # -- selection sync ------------------------------------------------------------------

    def rows_for(self, part: Part | None) -> list[str]:
        model = self.table.model()
        if part is None:
            return []
        if part.kind in (edits.STEM, edits.HEAD):
            return [name for name in model.top_level_names() if part.contains_layer(name)]
        if part.kind == edits.STAGE:
            return [part.layer_name()]
        stage = f"layer{part.stage_index + 1}"
        return [f"{stage}.{position}" for position in part.block_range]

    def _on_selection_changed(self, part: Part | None) -> None:
        if not self._syncing:  # a selection made in the table itself needs no echo
            self._selection_timer.start()

    def _on_part_selected(self, part: Part | None) -> None:
        if self._syncing:
            return
        model = self.table.model()
        selection = QItemSelection()
        first = None
        for name in self.rows_for(part):
            index = model.index_for(name)
            if not index.isValid():
                continue
            last = model.index(index.row(), len(COLUMNS) - 1, index.parent())
            selection.select(index, last)
            first = first or index
            parent = index.parent()
            while parent.isValid():
                self.table.setExpanded(parent, True)
                parent = parent.parent()
        self._syncing = True
        try:
            selection_model = self.table.selectionModel()
            selection_model.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if first is not None:
                selection_model.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.table.scrollTo(first)
        finally:
            self._syncing = False

    def _on_rows_selected(self, *_args) -> None:
        if self._syncing:
            return
        rows = self.table.selectionModel().selectedRows(0)
        if not rows:
            return
        name = self.table.model().name_at(rows[0])
        part = edits.part_for_path(name, self.controller.arch)
        self._syncing = True
        try:
            self.controller.select(part)
        finally:
            self._syncing = False

    def selected_names(self) -> list[str]:
        model = self.table.model()
        return [model.name_at(index) for index in self.table.selectionModel().selectedRows(0)]


def totals_text(analysis: Any, stale: bool = False, invalid: bool = False) -> str:
    if analysis is None:
        return "Analysing…"
    text = (
        f"<b>Total</b>: {formatting.count(analysis.total_params)} parameters "
        f"({formatting.count(analysis.trainable_params)} trainable) · "
        f"{formatting.count(analysis.total_macs)} multiply-adds "
        f"({formatting.short(analysis.total_macs)}) · "
        f"{formatting.size_in_bytes(analysis.activation_bytes)} of activations per example"
    )
    if invalid:
        return text + " <span style='color:#b91c1c'>(the last valid version)</span>"
    return text + (" <span style='color:#9aa3b2'>(updating…)</span>" if stale else "")
