"""The Train tab's value axes keep their labels apart, however short a plot gets."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFontMetricsF
from training_support import panel, store, window  # noqa: F401 (fixtures)

from resnet_gui.qt.train.plot_axis import ReadableAxis


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (0.0, 0.06), (0.0, 25_000.0)])
@pytest.mark.parametrize("pixels", [40, 60, 120, 400])
def test_labels_on_a_short_axis_are_a_line_and_a_half_apart(qtbot, low, high, pixels):
    axis = ReadableAxis("left")
    spacing = axis.tickSpacing(low, high, pixels)[0][0]
    labels = int((high - low) // spacing) + 1
    line = QFontMetricsF(axis.font()).height()
    assert labels >= 2 or pixels < 2 * 1.6 * line
    assert (labels - 1) * 1.6 * line <= pixels


def test_the_train_tab_plots_use_the_readable_axis(qtbot, window):
    plots = panel(window).plots
    for plot in (plots.lr_plot, plots.loss_plot, plots.accuracy_plot, plots.speed_plot):
        assert isinstance(plot.getPlotItem().getAxis("left"), ReadableAxis)


@pytest.mark.parametrize("high", [0.06, 1.0, 4.0, 300.0, 25_000.0])
def test_a_short_axis_still_shows_its_scale(qtbot, high):
    """Seen under Xvfb: the training-speed axis, 40 pixels tall, showed a lone "0"."""
    spacing = ReadableAxis("left").tickSpacing(0.0, high, 40)[0][0]
    assert 2 <= int(high // spacing) + 1 <= 3
