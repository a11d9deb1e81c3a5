"""The Train tab's exports (issue 15, section 2): a run's curves as CSV, and any of its plots
(loss, accuracy, learning rate, speed, block telemetry) as PNG or SVG.

They are offered twice: as actions the window puts in File > Export, and in the context menu
of each plot and of the run list. A problem is one sentence under the Run box (and, in the
main window, in its status bar and a message box).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from resnet_gui.errors import UserError
from resnet_gui.qt.shared.picture_export import (
    CSV_FILTER,
    PICTURE_FILTER,
    ask_export_path,
    picture_format,
    plot_picture,
    write_picture,
)

if TYPE_CHECKING:
    import pyqtgraph as pg

    from resnet_gui.qt.train.panel import TrainingPanel

# name: (menu text, file name)
PLOTS = {
    "loss": ("&Loss plot", "loss"),
    "accuracy": ("&Accuracy plot", "accuracy"),
    "lr": ("Learning-&rate plot", "learning-rate"),
    "speed": ("&Speed plot", "speed"),
    "telemetry": ("Block &telemetry heatmap", "block-telemetry"),
}


class TrainExports(QObject):
    """``exportCurvesAction`` and one ``export<Name>PlotAction`` per plot."""

    def __init__(self, panel: TrainingPanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.folder = Path.home()  # where the last export went: the next dialog opens there
        self.curves_action = QAction("Run &curves as CSV…", panel)
        self.curves_action.setObjectName("exportCurvesAction")
        self.curves_action.setToolTip("Save the selected run's loss and accuracy per step and "
                                      "per epoch as a table")
        self.curves_action.triggered.connect(self.export_curves_dialog)
        self.plot_actions: dict[str, QAction] = {}
        for name, (text, _file) in PLOTS.items():
            action = QAction(f"{text} as PNG or SVG…", panel)
            action.setObjectName(f"export{name.capitalize()}PlotAction")
            action.triggered.connect(lambda _=False, chosen=name: self.export_plot_dialog(chosen))
            self.plot_actions[name] = action
            self._offer_in_context_menu(self.plot_widget(name), action)
        tree = panel.run_list.tree
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._run_menu)

    def actions(self) -> list[QAction]:
        return [self.curves_action, *self.plot_actions.values()]

    def plot_widget(self, name: str) -> pg.PlotWidget:
        if name == "telemetry":
            return self.panel.heatmap.plot
        return self.panel.plots._plots[name]

    # -- the context menus ---------------------------------------------------------------

    def _offer_in_context_menu(self, widget: QWidget, action: QAction) -> None:
        widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        widget.customContextMenuRequested.connect(
            lambda position: self.context_menu(action).exec(widget.mapToGlobal(position)))

    def context_menu(self, *actions: QAction) -> QMenu:
        menu = QMenu(self.panel)
        for action in actions:
            menu.addAction(action)
        return menu

    def _run_menu(self, position) -> None:
        tree = self.panel.run_list.tree
        item = tree.itemAt(position)
        if item is None:
            return
        tree.setCurrentItem(item)
        self.context_menu(self.curves_action).exec(tree.viewport().mapToGlobal(position))

    # -- curves --------------------------------------------------------------------------

    def export_curves_dialog(self) -> None:
        run_id = self.panel.run_list.current_run_id()
        if run_id is None:
            self._fail(UserError("no run is selected; select a run in the run list, then "
                                 "export its curves"))
            return
        path = ask_export_path(self.panel, "Export the run's curves",
                               str(self.folder / f"{run_id}.csv"), CSV_FILTER)
        if path:
            self.export_curves(path, run_id)

    def export_curves(self, path: str | Path, run_id: str | None = None) -> bool:
        """Write the curves of ``run_id`` (default: the run selected in the list) to
        ``path`` as CSV; True when written."""
        from resnet_gui.engine.curves import write_curves_csv

        run_id = run_id or self.panel.run_list.current_run_id()
        try:
            if run_id is None:
                raise UserError("no run is selected; select a run in the run list, then "
                                "export its curves")
            rows = write_curves_csv(self.panel.session.load_run(run_id).log, path)
        except UserError as problem:
            self._fail(problem)
            return False
        self._done(path, f"Exported {rows} rows of curves to {path}.")
        return True

    # -- plots ---------------------------------------------------------------------------

    def export_plot_dialog(self, name: str) -> None:
        path = ask_export_path(self.panel, "Export the plot",
                               str(self.folder / f"{PLOTS[name][1]}.png"), PICTURE_FILTER)
        if path:
            self.export_plot(name, path)

    def export_plot(self, name: str, path: str | Path) -> bool:
        """Draw plot ``name`` (see :data:`PLOTS`) into ``path``, .png or .svg by its suffix;
        True when written."""
        self.panel.plots._hover.hide()  # the cursor's read-out is no part of the picture
        self.panel.heatmap.hover_text.setVisible(False)
        try:
            data = plot_picture(self.plot_widget(name).getPlotItem(), picture_format(path))
            write_picture(path, data)
        except UserError as problem:
            self._fail(problem)
            return False
        self._done(path, f"Exported the {PLOTS[name][0].replace('&', '').lower()} to {path}.")
        return True

    # -- messages ------------------------------------------------------------------------

    def _done(self, path: str | Path, message: str) -> None:
        self.folder = Path(path).parent
        self.panel.show_note(message)
        window = self.panel.window()
        if hasattr(window, "statusBar"):
            window.statusBar().showMessage(message, 8000)

    def _fail(self, problem: UserError) -> None:
        self.panel.show_error(str(problem))
        show_error = getattr(self.panel.window(), "show_error", None)
        if show_error is not None:  # the main window: status bar, and a box unless quiet
            show_error(problem)
