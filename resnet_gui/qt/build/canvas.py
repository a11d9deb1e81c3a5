"""The architecture canvas: the network drawn as it will run, left to right.

Stem card, then one card per stage holding its blocks top to bottom, then the head card. Each
block shows its residual branch (convolutions, with batch norm and ReLU between them) and, in
a lane on its right, its shortcut: a plain grey line for the identity, a box for a projection,
a dashed line for zero-padding. Runs of identical blocks fold into one card with a xN badge;
clicking the badge unfolds them.

The canvas is a view: it draws the controller's architecture, selection, analysis and
problem, and turns clicks and drops into one-line controller calls. Its parts:
canvas_layout.py places the cards (and which runs are folded), cards.py paints them
(card_look.py: colours, geometry, fonts; card_steps.py: what each card lists), and
drops.py decides what a drop does and shows it while dragging.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QPainter, QTransform
from PySide6.QtWidgets import QApplication, QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from resnet_gui.arch import edits
from resnet_gui.arch.edits import Part
from resnet_gui.qt.build.canvas_layout import CanvasLayout, Column, foldable_runs, output_shapes
from resnet_gui.qt.build.card_look import CardLook
from resnet_gui.qt.build.cards import BlockCard, CardItem, StageCard, paint_legend
from resnet_gui.qt.build.controller import EditorController
from resnet_gui.qt.build.drops import DropIndicator, DropTarget, carry_out, find_drop_target
from resnet_gui.qt.build.mime import Payload, move_mime, read_payload

# Fitting to the window never shrinks the cards' smallest text ("BN · ReLU") below this
# many pixels: a wide network (resnet50) scrolls instead of turning to specks.
MIN_TEXT_PX = 8.0


class ArchitectureCanvas(QGraphicsView):
    """The network as cards; objectName ``architectureCanvas``."""

    hoverMessage = Signal(str)

    def __init__(self, controller: EditorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("architectureCanvas")
        self.controller = controller
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setBackgroundBrush(QColor("#f7f8fa"))
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.expanded: set[tuple[int, int]] = set()  # (stage, first block) of unfolded runs
        self.auto_fit = True
        self.columns: list[Column] = []
        self.cards: list[CardItem] = []
        self._decorations: list[QGraphicsItem] = []  # arrows and connectors between cards
        self._press: tuple[QPoint, CardItem | None] | None = None
        self.look = CardLook(self.font())
        self.indicator = DropIndicator(self.scene())
        controller.documentChanged.connect(self._on_document)
        controller.analysisChanged.connect(self.refresh_analysis)
        controller.selectionChanged.connect(self._on_selection)
        controller.lockChanged.connect(lambda *_: self.rebuild())
        self.rebuild()

    # -- building the scene --------------------------------------------------------------

    def _shapes(self) -> dict[str, str]:
        """Output shape text by card key; empty while the analysis of the current version
        is not in yet."""
        analysis = self.controller.analysis
        if analysis is None or not self.controller.analysis_is_current:
            return {}
        return output_shapes(analysis)

    def _pending_shape(self) -> str:
        """Shapes not known yet: "…" while the analysis runs, "?" when the network is invalid."""
        return "?" if self.controller.problem is not None else "…"

    def refresh_analysis(self) -> None:
        """New figures: update the shapes in place (only changed cards repaint); a change in
        which cards show a problem changes their size, so that rebuilds."""
        problems = {id(card): self._problem_for(card.part) for card in self.cards}
        if any(problems[id(card)] != card.problem for card in self.cards):
            self.rebuild()
            return
        self.look.pending_shape = self._pending_shape()
        shapes = self._shapes()
        for card in self.cards:
            text = shapes.get(card.shape_key, "")
            if text != card.shape_text or not text:
                card.shape_text = text
                card.update()

    def _problem_for(self, part: Part) -> str:
        problem, where = self.controller.problem, self.controller.problem_part
        if problem is None or where is None:
            return ""
        if where == part:
            return problem.reason
        if where.kind == edits.BLOCK and part.kind == edits.BLOCK and \
                where.stage_index == part.stage_index and where.block_index in part.block_range:
            return problem.reason
        return ""

    def _on_document(self, change) -> None:
        if change.kind == "reset":  # a new network: everything folded, from the top
            self.expanded.clear()
            self.rebuild()
            self.horizontalScrollBar().setValue(0)
            self.verticalScrollBar().setValue(0)
            return
        self.rebuild()

    def rebuild(self, *_args) -> None:
        """Recreate every card from the controller's state (a few ms even for resnet152)."""
        scene = self.scene()
        self.indicator.hide()
        for item in self._decorations:
            scene.removeItem(item)
        arch = self.controller.arch
        self.look.pending_shape = self._pending_shape()
        self.expanded = {key for key in self.expanded if key[0] < len(arch.stages)}
        layout = CanvasLayout(self.look, arch, self._shapes(), self._problem_for,
                              self.expanded).build()
        previous = self.cards
        self.cards, self.columns, self._decorations = layout.cards, layout.columns, \
            layout.decorations
        for item in self._decorations:
            scene.addItem(item)
        self._reuse_unchanged(previous)
        scene.setSceneRect(layout.scene_rect)
        self._on_selection(self.controller.selection)
        self._apply_auto_fit()

    def _reuse_unchanged(self, previous: list[CardItem]) -> None:
        """Put the new cards in the scene, keeping old ones that would look the same."""
        scene = self.scene()
        unused = {card.signature(): card for card in previous}
        for index, card in enumerate(self.cards):
            old = unused.pop(card.signature(), None)
            if old is not None:
                self.cards[index] = old
                for column in self.columns:
                    if column.card is card:
                        column.card = old
                    if column.blocks and card in column.blocks:
                        column.blocks[column.blocks.index(card)] = old
            else:
                scene.addItem(card)
        for card in unused.values():
            scene.removeItem(card)

    # -- selection -----------------------------------------------------------------------

    def card_for(self, part: Part | None) -> CardItem | None:
        """The card that shows ``part`` (a folded card shows every block of its run)."""
        if part is None:
            return None
        for card in self.cards:
            if card.part == part:
                return card
        if part.kind == edits.BLOCK:
            for card in self.cards:
                if card.part.kind == edits.BLOCK and card.part.stage_index == part.stage_index \
                        and part.block_index in card.part.block_range:
                    return card
        return None

    def _on_selection(self, part: Part | None) -> None:
        target = self.card_for(part)
        for card in self.cards:
            selected = card is target
            if card.selected != selected:
                card.selected = selected
                card.update()
        if target is not None:
            self.ensureVisible(target, 20, 20)

    def toggle_fold(self, stage_index: int, first: int) -> None:
        key = (stage_index, first)
        if key in self.expanded:
            self.expanded.discard(key)
        else:
            self.expanded.add(key)
        self.rebuild()

    def expand_all(self, expanded: bool) -> None:
        arch = self.controller.arch
        self.expanded = foldable_runs(arch) if expanded else set()
        self.rebuild()

    # -- zoom ----------------------------------------------------------------------------

    def _apply_auto_fit(self) -> None:
        if not self.auto_fit:
            return
        rect = self.scene().sceneRect()
        available = self.viewport().width() - 4
        scale = 1.0 if rect.width() <= available else max(self.min_fit_scale,
                                                          available / rect.width())
        self.setTransform(QTransform.fromScale(scale, scale))

    @property
    def min_fit_scale(self) -> float:
        """The smallest scale Fit to window uses: the smallest text stays MIN_TEXT_PX high."""
        return min(1.0, MIN_TEXT_PX / max(1, self.look.smallest_text_px))

    def fit(self) -> None:
        self.auto_fit = True
        self._apply_auto_fit()

    def zoom(self, factor: float) -> None:
        self.auto_fit = False
        current = self.transform().m11()
        scale = min(3.0, max(0.25, current * factor))
        self.setTransform(QTransform.fromScale(scale, scale))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._apply_auto_fit()

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.15 if event.angleDelta().y() > 0 else 1 / 1.15)
            event.accept()
            return
        super().wheelEvent(event)

    # -- mouse ---------------------------------------------------------------------------

    def card_at(self, view_pos: QPoint) -> CardItem | None:
        for item in self.items(view_pos):
            if isinstance(item, CardItem) and item.card_rect().contains(item.mapFromScene(
                    self.mapToScene(view_pos))):
                return item
        return None

    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        position = event.position().toPoint()
        card = self.card_at(position)
        self._press = (position, card)
        if isinstance(card, BlockCard):
            local = card.mapFromScene(self.mapToScene(position))
            if card.badge_rect().contains(local):
                self._press = None
                first = card.part.block_index
                self.toggle_fold(card.part.stage_index, first)
                return
        self.controller.select(card.part if card else None)
        self.setFocus()

    def mouseMoveEvent(self, event) -> None:
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            super().mouseMoveEvent(event)
            return
        start, card = self._press
        if card is None or self.controller.document.locked:
            return
        if (event.position().toPoint() - start).manhattanLength() < \
                QApplication.startDragDistance():
            return
        self._press = None
        if isinstance(card, BlockCard):
            part = card.part
            mime = move_mime(part.stage_index, part.block_index + part.count - 1)
        elif isinstance(card, StageCard):
            mime = move_mime(card.part.stage_index)
        else:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.MoveAction)
        self.indicator.hide()

    def mouseReleaseEvent(self, event) -> None:
        self._press = None
        super().mouseReleaseEvent(event)

    # -- drag and drop -------------------------------------------------------------------

    def drop_target(self, payload: Payload | None, scene_pos: QPointF) -> DropTarget | None:
        """What dropping ``payload`` at ``scene_pos`` would do, or None if nothing."""
        if payload is None or self.controller.document.locked:
            return None
        return find_drop_target(payload, scene_pos, self.columns,
                                len(self.controller.arch.stages))

    def apply_drop(self, payload: Payload | None, scene_pos: QPointF) -> bool:
        """Carry out a drop (the drop event and the tests both come here)."""
        target = self.drop_target(payload, scene_pos)
        return target is not None and carry_out(self.controller, payload, target)

    def dragEnterEvent(self, event) -> None:
        if read_payload(event.mimeData()) is not None and not self.controller.document.locked:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        payload = read_payload(event.mimeData())
        target = self.drop_target(payload, self.mapToScene(event.position().toPoint()))
        if target is None:
            self.indicator.hide()
            event.ignore()
            return
        self.indicator.show(target)
        self.hoverMessage.emit(target.description)
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self.indicator.hide()
        self.hoverMessage.emit("")

    def dropEvent(self, event) -> None:
        self.indicator.hide()
        payload = read_payload(event.mimeData())
        if self.apply_drop(payload, self.mapToScene(event.position().toPoint())):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- overlay -------------------------------------------------------------------------

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """A legend of the shortcut styles, fixed to the bottom-left corner of the view."""
        paint_legend(painter, self.look, self.viewport().height())
