"""The palette of parts: drag one onto the canvas, or double-click it to add it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

from resnet_gui.qt.shared.icons import block_icon, icon, shortcut_icon
from resnet_gui.qt.build.mime import BLOCK, HEAD, SHORTCUT, STAGE, STEM, part_mime
from resnet_gui.arch.edits import STEM_PRESET_DESCRIPTIONS
from resnet_gui.arch.model import BLOCK_DESCRIPTIONS, BLOCK_KINDS, SHORTCUT_DESCRIPTIONS, SHORTCUT_KINDS

ROLE = Qt.ItemDataRole.UserRole

STEM_NAMES = {"imagenet": "ImageNet stem", "cifar": "Small-image stem", "deep": "Deep stem"}
BLOCK_NAMES = {
    "basic": "Basic", "bottleneck": "Bottleneck", "preact-basic": "Pre-act basic",
    "preact-bottleneck": "Pre-act bottleneck", "plain": "Plain (no shortcut)",
    "plain-bottleneck": "Plain bottleneck",
}
SHORTCUT_NAMES = {"projection": "Projection (1×1 conv)", "zero-pad": "Zero-padding",
                  "avgpool-projection": "Avg pool + 1×1"}
HEAD_ENTRIES = (
    ("avg", "Global average pool", "head-avg", "Average each final map to one number (the paper)"),
    ("max", "Global max pool", "head-max", "Take each final map's maximum (the D2L chapter's head)"),
    ("dropout", "Dropout", "head-dropout", "Drop half the pooled features while training"),
)


def palette_entries() -> list[tuple[str, list[tuple[str, str, object, str]]]]:
    """(group title, [(category, value, icon, tooltip) ...]) in display order."""
    return [
        ("Stems", [(STEM, key, icon(f"stem-{key}"), STEM_PRESET_DESCRIPTIONS[key])
                   for key in STEM_NAMES]),
        ("Stage", [(STAGE, "", icon("stage"), "A new stage of two blocks; drop it between "
                    "stages (at the end it doubles the width and halves the resolution)")]),
        ("Blocks", [(BLOCK, kind, block_icon(kind), BLOCK_DESCRIPTIONS[kind] + ". Drop it into "
                     "a stage, or between stages to start a new stage") for kind in BLOCK_KINDS]),
        ("Head", [(HEAD, value, icon(name), tip) for value, _, name, tip in HEAD_ENTRIES]),
        ("Shortcuts", [(SHORTCUT, kind, shortcut_icon(kind), SHORTCUT_DESCRIPTIONS[kind] +
                        ". Drop it on a stage; it applies where the shape changes")
                       for kind in SHORTCUT_KINDS]),
    ]


def entry_name(category: str, value: str) -> str:
    if category == STEM:
        return STEM_NAMES[value]
    if category == STAGE:
        return "Stage"
    if category == BLOCK:
        return BLOCK_NAMES[value]
    if category == HEAD:
        return {value: name for value, name, _, _ in HEAD_ENTRIES}[value]
    return SHORTCUT_NAMES[value]


class BlockPalette(QTreeWidget):
    """The parts as a tree of groups; objectName ``blockPalette``."""

    partActivated = Signal(str, str)  # category, value (double-click or Enter)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("blockPalette")
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setIndentation(8)
        self.setIconSize(QSize(26, 26))
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformRowHeights(False)
        self.setMinimumWidth(170)
        self.setToolTip("Drag a part onto the canvas, or double-click it to add it")
        for title, entries in palette_entries():
            group = QTreeWidgetItem(self, [title])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            for category, value, part_icon, tooltip in entries:
                item = QTreeWidgetItem(group, [entry_name(category, value)])
                item.setIcon(0, part_icon)
                item.setToolTip(0, tooltip)
                item.setStatusTip(0, tooltip)
                item.setData(0, ROLE, (category, value))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
            group.setExpanded(True)
        self.itemActivated.connect(self._on_activated)

    def item_for(self, category: str, value: str = "") -> QTreeWidgetItem | None:
        for index in range(self.topLevelItemCount()):
            group = self.topLevelItem(index)
            for child in range(group.childCount()):
                item = group.child(child)
                if item.data(0, ROLE) == (category, value):
                    return item
        return None

    def mimeTypes(self) -> list[str]:
        from resnet_gui.qt.build.mime import PART_MIME

        return [PART_MIME]

    def mimeData(self, items):
        data = [item.data(0, ROLE) for item in items if item.data(0, ROLE)]
        if not data:
            return None
        category, value = data[0]
        return part_mime(category, value)

    def supportedDropActions(self):
        return Qt.DropAction.CopyAction

    def _on_activated(self, item: QTreeWidgetItem, column: int) -> None:
        data = item.data(0, ROLE)
        if data:
            self.partActivated.emit(*data)

    def set_locked(self, locked: bool) -> None:
        self.setDragEnabled(not locked)
