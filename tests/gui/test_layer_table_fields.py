"""The Build tab's layer table has a receptive-field column (issue 12.3): torchvision's
resnet50 at its stage outputs sees 35, 91, 267 and 427 pixels, 4, 8, 16 and 32 apart."""

from __future__ import annotations

from PySide6.QtCore import Qt

from resnet_gui.qt.build.layer_table import COLUMNS


def test_the_layer_table_shows_each_rows_receptive_field_and_jump(make_window):
    window = make_window("resnet50")
    model = window.layer_table.model()
    column = COLUMNS.index("Receptive field")
    shown = {stage: model.data(model.index_for(stage).siblingAtColumn(column))
             for stage in ("conv1", "layer1", "layer2", "layer3", "layer4")}
    assert shown == {"conv1": "7 px, jump 2", "layer1": "35 px, jump 4",
                     "layer2": "91 px, jump 8", "layer3": "267 px, jump 16",
                     "layer4": "427 px, jump 32"}
    block = model.index_for("layer2.0")
    first_conv = model.index(0, column, block)  # layer2.0.conv1: a 1x1 after layer1
    assert model.data(first_conv) == "35 px, jump 4"
    tip = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "Input pixels one unit" in tip
    assert "receptive field 91 px, jump 8" in model.data(
        model.index_for("layer2"), Qt.ItemDataRole.ToolTipRole)
