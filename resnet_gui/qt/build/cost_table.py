"""The inspector's Cost box: parameters and multiply-adds of the selected part and of the
whole network, before and after the last change."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QWidget

from resnet_gui.arch import edits
from resnet_gui.arch.edits import Part
from resnet_gui.qt.build.controller import EditorController, part_cost
from resnet_gui.qt.shared import formatting

# (scope, metric, row label): the part's rows first, then the whole network's.
COST_ROWS = (("part", "params", "Params"), ("part", "macs", "MACs"),
             ("net", "params", "Params"), ("net", "macs", "MACs"))


class CostTable(QGroupBox):
    """Labels ``cost_<scope>_<metric>_<before|after|change>``; ``labels`` finds them by
    (scope, metric, column), and (scope, metric, "name") is the row's label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Cost", parent)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(12)
        grid.setColumnStretch(0, 1)
        self.labels: dict[tuple[str, str, str], QLabel] = {}
        self.headings: dict[str, QLabel] = {}
        for column, heading_text in enumerate(("", "Before", "After", "Change")):
            label = QLabel(f"<b>{heading_text}</b>")
            label.setAlignment(Qt.AlignmentFlag.AlignRight)
            grid.addWidget(label, 0, column)
        row = 1
        for scope, metric, text in COST_ROWS:
            if metric == "params":
                heading = QLabel("This part" if scope == "part" else "Whole network")
                heading.setStyleSheet("QLabel { color: #5b6474; font-style: italic; }")
                grid.addWidget(heading, row, 0, 1, 4)
                self.headings[scope] = heading
                row += 1
            self._add_row(grid, row, scope, metric, text)
            row += 1
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("QLabel { color: #5b6474; }")
        grid.addWidget(self.note, row, 0, 1, 4)

    def _add_row(self, grid: QGridLayout, row: int, scope: str, metric: str, text: str) -> None:
        name = QLabel(text)
        name.setToolTip("Parameters" if metric == "params" else "Multiply-adds for one example")
        grid.addWidget(name, row, 0)
        for column, which in enumerate(("before", "after", "change"), start=1):
            label = QLabel("–")
            label.setAlignment(Qt.AlignmentFlag.AlignRight)
            label.setObjectName(f"cost_{scope}_{metric}_{which}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(label, row, column)
            self.labels[(scope, metric, which)] = label
        self.labels[(scope, metric, "name")] = name

    def show_costs(self, controller: EditorController) -> None:
        """The figures for the controller's selection, and a note on what they compare."""
        part = controller.selection
        after = controller.analysis if controller.analysis_is_current else None
        before = controller.before_analysis
        comparable = before is not None and after is not None and part is not None and \
            _same_layout(before.arch, after.arch, part)
        self.headings["part"].setText(
            f"{part.describe(controller.arch).capitalize()}" if part else "")
        values = {
            ("part", "before"): part_cost(before, part) if comparable else None,
            ("part", "after"): part_cost(after, part) if after is not None else None,
            ("net", "before"): part_cost(before, None) if before is not None else None,
            ("net", "after"): part_cost(after, None) if after is not None else None,
        }
        for scope, metric, _ in COST_ROWS:
            which = 0 if metric == "params" else 1
            old = values[(scope, "before")]
            new = values[(scope, "after")]
            self._show_row(scope, metric, old[which] if old else None,
                           new[which] if new else None)
        for key in (("part", "params"), ("part", "macs")):
            for which in ("before", "after", "change", "name"):
                self.labels[(*key, which)].setVisible(part is not None)
        self.headings["part"].setVisible(part is not None)
        label = controller.document.undo_label
        if controller.problem is not None:
            self.note.setText("The architecture is invalid; the figures are from the last "
                              "valid version. Undo (Ctrl+Z) recovers.")
        elif before is None:
            self.note.setText("Make a change to compare before and after.")
        else:
            self.note.setText(f"Before and after: {label or 'the last change'}.")

    def _show_row(self, scope: str, metric: str, old_value: int | None,
                  new_value: int | None) -> None:
        fmt = formatting.count if metric == "params" else formatting.short
        self.labels[(scope, metric, "before")].setText(
            fmt(old_value) if old_value is not None else "–")
        self.labels[(scope, metric, "after")].setText(
            fmt(new_value) if new_value is not None else "–")
        change = self.labels[(scope, metric, "change")]
        if old_value is not None and new_value is not None:
            delta = new_value - old_value
            change.setText(formatting.signed(delta) if metric == "params" else
                           ("+" if delta > 0 else "") + formatting.short(delta) if delta else "±0")
            change.setStyleSheet("QLabel { color: %s; }" % (
                "#b45309" if delta > 0 else "#047857" if delta < 0 else "#6b7280"))
        else:
            change.setText("–")
            change.setStyleSheet("")


def _same_layout(before, after, part: Part) -> bool:
    """Whether ``part`` names the same thing in both versions (indices still line up)."""
    if part.kind in (edits.STEM, edits.HEAD):
        return True
    if len(before.stages) != len(after.stages):
        return False
    if part.kind == edits.BLOCK:
        return before.stages[part.stage_index].num_blocks == \
            after.stages[part.stage_index].num_blocks
    return True
