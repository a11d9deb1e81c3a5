"""What the Train tab records besides the curves: how often the blocks are sampled for the
telemetry heatmap, and an optional TensorBoard folder (issue 15, section 2).

Neither changes what the network learns, so they sit apart from the recipe: they are not in
the run's settings and may differ between a run and its resume.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from resnet_gui.engine.tensorboard import INSTALL_HINT, tensorboard_available
from resnet_gui.engine.telemetry import DEFAULT_EVERY
from resnet_gui.errors import UserError

MISSING_TIP = ("Writing TensorBoard files needs tensorboardX, which is not installed: "
               f"{INSTALL_HINT}.")


class ObserveOptions(QGroupBox):
    """``observeOptions``: ``telemetryEverySpin`` (0: off), ``tensorboardCheck`` and
    ``tensorboardFolderEdit``."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Observe", parent)
        self.setObjectName("observeOptions")
        self.every_spin = QSpinBox()
        self.every_spin.setObjectName("telemetryEverySpin")
        self.every_spin.setRange(0, 1_000_000)
        self.every_spin.setValue(DEFAULT_EVERY)
        self.every_spin.setSuffix(" steps")
        self.every_spin.setSpecialValueText("off")
        self.every_spin.setToolTip(
            "Sample every residual block (‖F(x)‖/‖x‖, cosine, gradient and weight norms) "
            f"every this many steps for the heatmap; {DEFAULT_EVERY} costs under 3 % of "
            "the training time, 0 turns it off")
        self.tensorboard_check = QCheckBox("TensorBoard folder")
        self.tensorboard_check.setObjectName("tensorboardCheck")
        self.folder_edit = QLineEdit()
        self.folder_edit.setObjectName("tensorboardFolderEdit")
        self.folder_edit.setPlaceholderText("folder for the event files")
        self.browse_button = QToolButton()
        self.browse_button.setText("…")
        self.browse_button.setToolTip("Choose the folder")
        self.browse_button.clicked.connect(self._browse)
        self.available = tensorboard_available()
        tip = ("Also write the run's scalars and block telemetry as TensorBoard event files "
               "(open them with tensorboard --logdir FOLDER)" if self.available else MISSING_TIP)
        for widget in (self.tensorboard_check, self.folder_edit, self.browse_button):
            widget.setToolTip(tip)
        self.tensorboard_check.setEnabled(self.available)
        self.tensorboard_check.toggled.connect(self._update_enabled)
        for signal in (self.every_spin.valueChanged, self.tensorboard_check.toggled,
                       self.folder_edit.textChanged):
            signal.connect(lambda *_: self.changed.emit())
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        form = QFormLayout(self)
        form.addRow("Block telemetry every", self.every_spin)
        form.addRow(self.tensorboard_check, folder_row)
        self._update_enabled()

    def _update_enabled(self) -> None:
        on = self.available and self.tensorboard_check.isChecked() and self.isEnabled()
        self.folder_edit.setEnabled(on)
        self.browse_button.setEnabled(on)

    def set_enabled_for_run(self, enabled: bool) -> None:
        """Fixed while a run trains (they apply when it starts)."""
        self.every_spin.setEnabled(enabled)
        self.tensorboard_check.setEnabled(enabled and self.available)
        self._update_enabled()
        if not enabled:
            self.folder_edit.setEnabled(False)
            self.browse_button.setEnabled(False)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "TensorBoard folder",
                                                  self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)

    # -- what the next run gets ----------------------------------------------------------

    @property
    def telemetry_every(self) -> int:
        return self.every_spin.value()

    def tensorboard_dir(self) -> str | None:
        """The folder to write event files into, or None; a UserError when the option is
        ticked without a folder."""
        if not (self.available and self.tensorboard_check.isChecked()):
            return None
        folder = self.folder_edit.text().strip()
        if not folder:
            raise UserError("the TensorBoard option is ticked but no folder is given; choose a "
                            "folder for the event files or untick it")
        return str(Path(folder).expanduser())
