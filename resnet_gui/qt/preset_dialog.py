"""File > New from preset: every preset with its one-line description."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.arch.presets import PRESETS
from resnet_gui.qt.shared.icons import icon


class PresetDialog(QDialog):
    """New from preset: every preset with its one-line description."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from preset")
        self.list = QListWidget()
        self.list.setObjectName("presetList")
        self.list.setIconSize(QSize(24, 24))
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        for name, preset in PRESETS.items():
            item = QListWidgetItem(icon(f"block-{preset.block}"), f"{name}\n{preset.description}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(preset.description)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda *_: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Start from a named architecture. Channels and classes follow "
                                "the dataset chosen in the toolbar."))
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(640, 520)

    def chosen(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else ""
