"""The training plots' legend: a line of text above the plots, never over a curve.

A legend drawn inside a plot covers curves, and at the window's minimum size it fills the
plot. Above the plots it wraps instead, at the window's own font size.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

OFF_SCALE_COLOUR = "#b45309"


class PlotLegend(QLabel):
    """``plotLegend``: each run's colour and name, what the line styles mean, and which
    values lie above the loss plot's scale."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("plotLegend")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.entries: list[tuple[str, str]] = []
        self.off_scale: list[tuple[str, float]] = []

    def set_entries(self, entries: list[tuple[str, str]],
                    off_scale: list[tuple[str, float]] = ()) -> None:
        """``entries``: (run label, colour) in drawing order; ``off_scale``: (run label,
        highest loss) of runs with losses above the scale."""
        entries, off_scale = list(entries), list(off_scale)
        if (entries, off_scale) == (self.entries, self.off_scale):
            return
        self.entries, self.off_scale = entries, off_scale
        runs = "&nbsp;&nbsp; ".join(
            f"<span style='color:{colour}; font-weight:bold'>━</span>&nbsp;{escape(label)}"
            for label, colour in entries)
        key = ("solid: training (faint: each step) &nbsp;·&nbsp; dashed with dots: test, "
               "per epoch")
        lines = [f"{runs} &nbsp;&nbsp;<span style='color:#5b6474'>{key}</span>"]
        for label, highest in off_scale:
            lines.append(f"<span style='color:{OFF_SCALE_COLOUR}'>▲ {escape(label)}: a loss "
                         f"of up to {highest:.3g} lies above the loss plot's scale</span>")
        self.setText("<br>".join(lines))

    def plain_text(self) -> str:
        """What the legend says, without markup (tests)."""
        parts = [label for label, _ in self.entries]
        parts += [f"{label}: up to {highest:.3g} above the scale"
                  for label, highest in self.off_scale]
        return " | ".join(parts)
