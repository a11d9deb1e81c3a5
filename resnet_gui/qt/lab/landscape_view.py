"""The Lab's loss-landscape view (Li et al. 2018): the loss around a trained network and
around its plain twin, side by side, along the same seeded filter-normalised directions.

Each map shows log10 of the loss over the grid (filled in live as points are evaluated) with
contour lines once it is complete; below, the 1-D slices along the first direction. A 3-D
surface is added when pyqtgraph's OpenGL items work on this machine.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.engine.lab.landscape import GridPoint, LandscapeResult, check_grid
from resnet_gui.qt.lab.checkpoint_view import CheckpointView
from resnet_gui.qt.lab.context import LabContext
from resnet_gui.qt.lab.controls import (
    PLAIN_COLOUR,
    RESNET_COLOUR,
    Redrawer,
    plot_widget,
)

DEFAULT_GRID, DEFAULT_SPAN, DEFAULT_IMAGES = 21, 1.0, 1000
CONTOURS = 12
REDRAW_MS = 200
COLOURS = (RESNET_COLOUR, PLAIN_COLOUR)


class LossMap:
    """One checkpoint's map: the loss grid (NaN until evaluated), its image and contours."""

    def __init__(self, title: str, name: str) -> None:
        self.plot = plot_widget(title, "α (direction δ)", "β (direction η)", name)
        self.plot.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="col-major")  # image[i, j] at (alpha_i, beta_j)
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.plot.addItem(self.image)
        self.contours: list[pg.IsocurveItem] = []
        self.loss: np.ndarray | None = None
        self.rect = QRectF(-1, -1, 2, 2)
        self.result: LandscapeResult | None = None

    def begin(self, grid: int, span: float) -> None:
        self.loss = np.full((grid, grid), np.nan)
        self.result = None
        step = 2 * span / (grid - 1)
        # Each pixel centred on its grid point (set again with every image: pyqtgraph scales
        # the rectangle by the image's size, unknown until there is one).
        self.rect = QRectF(-span - step / 2, -span - step / 2, 2 * span + step,
                           2 * span + step)
        self.image.clear()
        self._remove_contours()

    def show_result(self, result: LandscapeResult) -> None:
        self.result = result
        if self.loss is None or self.loss.shape != (len(result.alpha), len(result.beta)):
            self.begin(len(result.alpha), result.span)
        self.loss = np.array(result.loss, dtype=float)

    def draw(self, levels: tuple[float, float] | None) -> None:
        if self.loss is None or not np.isfinite(self.loss).any():
            return
        logged = np.log10(np.maximum(self.loss, 1e-12))
        shown = np.where(np.isfinite(logged), logged, np.nanmax(logged))
        self.image.setImage(shown, autoLevels=levels is None,
                            **({"levels": levels} if levels else {}))
        self.image.setRect(self.rect)
        self._remove_contours()
        if self.result is not None and levels is not None:
            for level in np.linspace(*levels, CONTOURS + 2)[1:-1]:
                contour = pg.IsocurveItem(data=shown, level=level,
                                          pen=pg.mkPen("w", width=1))
                contour.setParentItem(self.image)
                contour.setPos(0.5, 0.5)  # contour points at pixel centres
                self.contours.append(contour)

    def _remove_contours(self) -> None:
        for contour in self.contours:
            contour.setParentItem(None)
            if contour.scene() is not None:
                contour.scene().removeItem(contour)
        self.contours = []


class LandscapeView(CheckpointView):
    name, run_text, default_images = "landscape", "Map the landscape", DEFAULT_IMAGES

    def __init__(self, context: LabContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.redrawer = Redrawer(self._redraw, REDRAW_MS, self)
        self.grid_spin = QSpinBox()
        self.grid_spin.setObjectName("landscapeGridSpin")
        self.grid_spin.setRange(3, 201)
        self.grid_spin.setSingleStep(2)
        self.grid_spin.setValue(DEFAULT_GRID)
        self.span_spin = QDoubleSpinBox()
        self.span_spin.setObjectName("landscapeSpanSpin")
        self.span_spin.setRange(0.01, 10.0)
        self.span_spin.setSingleStep(0.25)
        self.span_spin.setValue(DEFAULT_SPAN)
        self.form.addRow("Grid (points a side, odd)", self.grid_spin)
        self.form.addRow("Span (−S..S along each direction)", self.span_spin)
        self.maps = [LossMap("ResNet: log10 loss", "landscapeResnetMap"),
                     LossMap("Plain twin: log10 loss", "landscapePlainMap")]
        self.slice_plot = plot_widget("1-D slice along δ (β = 0)", "α", "loss",
                                      "landscapeSlice")
        self.slice_plot.addLegend(offset=(-10, 10), labelTextColor="#111827")
        self.captions = [QLabel(), QLabel()]
        plots = QGridLayout()
        for column, (loss_map, caption) in enumerate(zip(self.maps, self.captions)):
            caption.setObjectName(f"landscapeCaption{column}")
            caption.setWordWrap(True)
            plots.addWidget(loss_map.plot, 0, column)
            plots.addWidget(caption, 1, column)
        plots.addWidget(self.slice_plot, 0, 2)
        plots.setRowStretch(0, 1)
        self.surface = surface_view()  # None without working OpenGL
        if self.surface is not None:
            plots.addWidget(self.surface, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.bar)
        layout.addLayout(plots, 1)

    def start(self) -> bool:
        grid, span = self.grid_spin.value(), round(self.span_spin.value(), 4)
        paths = self.checkpoints(lambda: check_grid(grid, span))
        if paths is None:
            return False

        def measure(trained, evalset, progress, stop):
            from resnet_gui.engine.lab.landscape import run_landscape

            return run_landscape(trained.model, evalset, grid=grid, span=span,
                                 network=trained.arch.name, progress=progress, stop=stop)

        for loss_map in self.maps:
            loss_map.begin(grid, span)
        self.slice_plot.clear()
        for caption in self.captions:
            caption.clear()
        self.redrawer.timer.start()
        return self.measure(paths, measure)

    def on_point(self, index: int, progress) -> None:
        point, loss = progress.event, self.maps[index].loss
        if isinstance(point, GridPoint) and loss is not None:
            loss[point.row, point.column] = point.loss
            self.redrawer.mark()

    # -- showing ----------------------------------------------------------------------

    def show_results(self, results: list[LandscapeResult]) -> None:
        self.redrawer.timer.stop()
        self.results = list(results)
        for loss_map, result, caption in zip(self.maps, self.results, self.captions):
            loss_map.show_result(result)
            caption.setText(caption_of(result))
        self._redraw()
        self._draw_slices()
        if self.surface is not None and self.results:
            show_surface(self.surface, self.maps[0].loss)

    def _redraw(self) -> None:
        """Both maps on one colour scale, so that the two valleys compare at a glance."""
        grids = [m.loss for m in self.maps if m.loss is not None and np.isfinite(m.loss).any()]
        levels = None
        if grids and self.results:
            logged = np.log10(np.maximum(np.concatenate([g.ravel() for g in grids]), 1e-12))
            low, high = float(np.nanmin(logged)), float(np.nanmax(logged))
            levels = (low, high if high > low else low + 1e-6)
        for loss_map in self.maps:
            loss_map.draw(levels)

    def _draw_slices(self) -> None:
        self.slice_plot.clear()
        self.slice_plot.getPlotItem().legend.clear()
        for index, result in enumerate(self.results):
            alpha = np.array(result.slice_alpha, dtype=float)
            loss = np.array(result.slice_loss, dtype=float)
            keep = np.isfinite(loss)
            self.slice_plot.plot(alpha[keep], loss[keep], name=result.network,
                                 pen=pg.mkPen(COLOURS[index], width=2))
        self.slice_plot.setLogMode(y=True)


def caption_of(result: LandscapeResult) -> str:
    loss = np.array(result.loss, dtype=float)
    text = (f"{result.network} on {result.images:,} images: the centre (the trained network) "
            f"has loss {result.centre_loss:.4f}, the checkpoint's own loss "
            f"{result.checkpoint_loss:.4f}; accuracy {100 * result.centre_accuracy:.1f} %.")
    if np.isfinite(loss).any():
        text += f" Over the grid the loss runs from {np.nanmin(loss):.3g} to {np.nanmax(loss):.3g}."
    if result.stopped:
        text += " Cancelled: the points not evaluated show at the top of the colour scale."
    return text


def surface_view():
    """A 3-D view for the ResNet's surface, or None where pyqtgraph's OpenGL items do not
    import or cannot make a context (no PyOpenGL, or an offscreen platform)."""
    try:
        import pyqtgraph.opengl as gl
        from PySide6.QtGui import QGuiApplication

        if QGuiApplication.platformName() in ("offscreen", "minimal"):
            return None
        view = gl.GLViewWidget()
        view.setObjectName("landscapeSurface")
        view.setCameraPosition(distance=40)
        return view
    except Exception:  # noqa: BLE001 (optional: the contour maps show the same numbers)
        return None


def show_surface(view, loss: np.ndarray | None) -> None:
    if loss is None or not np.isfinite(loss).any():
        return
    import pyqtgraph.opengl as gl

    view.clear()
    logged = np.log10(np.maximum(np.where(np.isfinite(loss), loss, np.nanmax(loss)), 1e-12))
    height = 10 * (logged - logged.min()) / max(float(np.ptp(logged)), 1e-9)
    size = loss.shape[0]
    xs = np.linspace(-10, 10, size)
    colours = pg.colormap.get("viridis").map(height / 10.0, mode="float")
    surface = gl.GLSurfacePlotItem(x=xs, y=xs, z=height, colors=colours.reshape(size, size, 4),
                                   shader=None, smooth=False)
    surface.translate(0, 0, -5)
    view.addItem(surface)


