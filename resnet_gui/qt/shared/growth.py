"""Growing the trained network from the Build tab (engine/growth.py in the window).

After a run (or with a checkpoint open), dropping a block into a stage of the network that
trained offers to keep the trained weights. Kept, the block is inserted with engine.growth
so that the grown network computes what the trained one did (the max |Δlogit| is said), and
the next Start resumes the grown checkpoint: a fresh optimizer, a short warm-up, and the
plots mark where the network grew. Otherwise the next run starts from random weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe
from resnet_gui.errors import UserError

GROWN_FOLDER = "grown"  # in the run store's folder: the grown checkpoints runs resume


@dataclass(frozen=True)
class PendingGrowth:
    """A grown network waiting for the next Start."""

    growth: Any  # engine.growth.Growth
    log: Any  # engine.runs.RunLog: the trained run's curves up to the growth
    source: Path  # the checkpoint that was grown


@dataclass(frozen=True)
class Continuation:
    """A run that resumes a grown network: its file, where it grew and the curves before."""

    path: Path
    marks: tuple[tuple[float, str], ...]  # (epoch progress, the block inserted), oldest first
    log: Any  # engine.runs.RunLog
    epochs: int  # the continued plan's epochs in all


def matches(trained: Architecture, current: Architecture) -> bool:
    """Whether ``current`` is the network ``trained`` (names aside)."""
    from resnet_gui.engine.checkpoint import architecture_differences

    return not architecture_differences(trained, current)


def grow_trained(checkpoint: Path, stage: int, index: int, kind: str) -> PendingGrowth:
    """The trained network of ``checkpoint`` with a ``kind`` block at ``index`` of stage
    ``stage``, computing the same function; raises UserError."""
    from resnet_gui.engine.growth import grow_checkpoint
    from resnet_gui.engine.runs import RunLog
    from resnet_gui.engine.trained import load_trained

    trained = load_trained(checkpoint)
    growth = grow_checkpoint(trained, f"layer{stage + 1}:{index}", kind)
    step = int(trained.checkpoint.get("step", 0))
    return PendingGrowth(growth, RunLog.from_checkpoint(trained.checkpoint.get("curves"), step),
                         checkpoint)


def continuation_for(pending: PendingGrowth | None, arch: Architecture, recipe: Recipe,
                     folder: Path) -> Continuation | None:
    """The grown checkpoint the run of ``arch`` resumes, written into ``folder`` with a plan
    of ``recipe.epochs`` more epochs; None where nothing grown is waiting for ``arch``."""
    if pending is None or not matches(pending.growth.arch, arch):
        return None
    from resnet_gui.engine.growth import GROWN_KEY, continued, write_grown

    growth = continued(pending.growth, recipe.epochs)
    history = growth.payload[GROWN_KEY]
    path = folder / f"{pending.source.parent.name}-{growth.block}.pt"
    folder.mkdir(parents=True, exist_ok=True)
    write_grown(growth, path)
    marks = tuple((float(event["progress"]), str(event["block"])) for event in history)
    return Continuation(path, marks, pending.log,
                        int(Recipe.from_dict(growth.payload["recipe"]).epochs))


def growth_prompt(parent: QWidget | None, block: str, kind: str, source: str) -> QMessageBox:
    """The question asked when a block is dropped into the network that trained."""
    box = QMessageBox(parent)
    box.setObjectName("growPrompt")
    box.setWindowTitle("Keep the trained weights?")
    box.setIcon(QMessageBox.Icon.Question)
    box.setText(f"Insert the {kind} block as {block} into the trained network?")
    box.setInformativeText(
        f"Keep the trained weights ({source}): the new block starts as the identity, so the "
        "grown network computes what the trained one did, and the next Start continues "
        "training it with a fresh optimizer and a short warm-up.\n\n"
        "Or start the next run from random weights.")
    keep = box.addButton("Keep the trained weights", QMessageBox.ButtonRole.AcceptRole)
    keep.setObjectName("keepWeightsButton")
    fresh = box.addButton("Start from random weights", QMessageBox.ButtonRole.RejectRole)
    fresh.setObjectName("randomWeightsButton")
    box.setDefaultButton(keep)
    return box


class GrowthOffer(QObject):
    """Asks, after a block is dropped into a stage of the network that trained, whether to
    keep the trained weights, and grows the network when so."""

    said = Signal(str)  # a sentence for the user (the max |Δlogit|, or why not)

    def __init__(self, session: Any, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self.parent_widget = parent
        # (block, kind, source) -> keep? Tests replace it; the window asks with a dialog.
        self.ask: Callable[[str, str, str], bool] = self._ask_with_dialog

    def block_inserted(self, before: Architecture, stage: int, index: int, kind: str) -> None:
        """After the drop's edit, once the drop has ended (no dialog inside a drop)."""
        QTimer.singleShot(0, lambda: self.offer(before, stage, index, kind))

    def offer(self, before: Architecture, stage: int, index: int, kind: str) -> None:
        checkpoint = self.session.trained_checkpoint_of(before)
        if checkpoint is None:
            return
        path, trained_arch = checkpoint
        block = f"layer{stage + 1}.{index}"
        from resnet_gui.engine.growth import deeper_architecture

        try:
            deeper_architecture(trained_arch, stage, index, kind)
        except UserError as problem:
            self.said.emit(f"The trained weights cannot be kept for {block} ({problem}); the "
                           "next run starts from random weights.")
            return
        if not self.ask(block, kind, path.name):
            self.session.pending_growth = None
            self.said.emit(f"{block} added; the next run starts from random weights.")
            return
        try:
            pending = grow_trained(path, stage, index, kind)
        except UserError as problem:
            self.said.emit(str(problem))
            return
        self.session.pending_growth = pending
        growth = pending.growth
        self.said.emit(
            f"Kept the trained weights: {growth.block} starts as the identity, max |Δlogit| = "
            f"{growth.max_logit_change:.3g}; Start continues training the grown network "
            "(fresh optimizer, short warm-up) for the epochs set.")

    def _ask_with_dialog(self, block: str, kind: str, source: str) -> bool:
        box = growth_prompt(self.parent_widget, block, kind, source)
        box.exec()
        return box.buttonRole(box.clickedButton()) == QMessageBox.ButtonRole.AcceptRole
