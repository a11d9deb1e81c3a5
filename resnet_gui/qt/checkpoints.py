"""Trained networks coming into the window (issue 10).

File > Open (or Open recent) of a checkpoint, or a checkpoint dropped on the window, puts its
architecture in the Build tab, its run with its curves in the Train tab's list (imported into
the run store once: see :func:`resnet_gui.engine.trained.run_of_checkpoint`), its recipe in the
Train tab's settings and its trained weights behind the Inspect tab. An architecture JSON
dropped on the window opens as File > Open does; an image file dropped anywhere is shown in
the Inspect tab (its prediction, feature maps and class activation map).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtWidgets import QApplication

from resnet_gui.errors import UserError
from resnet_gui.qt.inspect.image_drop import IMAGE_SUFFIXES

CHECKPOINT_SUFFIXES = {".pt", ".pth"}
ARCHITECTURE_SUFFIXES = {".json"}


def is_checkpoint(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES


def open_checkpoint(window: Any, path: str | Path, ask: bool = True) -> bool:
    """Open a checkpoint in ``window``; errors are one sentence in the window."""
    path = Path(path)
    tabs = getattr(window, "training_tabs", None)
    if tabs is None:
        window.show_error(UserError("this window has no Train and Inspect tabs to open a "
                                    "checkpoint in; start resnet-gui without options"))
        return False
    if window.document.locked or tabs.session.active:
        window.show_error(UserError("a training run is live; stop it before opening a "
                                    "checkpoint"))
        return False
    if ask and not window.maybe_save():
        return False
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        from resnet_gui.engine.trained import load_trained, run_of_checkpoint

        trained = load_trained(path)
        run = run_of_checkpoint(tabs.session.store, trained)
    except UserError as error:
        window.show_error(error)
        return False
    finally:
        QApplication.restoreOverrideCursor()
    window.document.reset(trained.arch, None, label=f"Open {path.name}")
    tabs.session.open_trained(trained, run)
    tabs.train.run_list.select(run.run_id)
    tabs.train.run_list.set_ticked(run.run_id, True)  # its curves, in the plots
    window.files.remember(path)
    window.tabs.setCurrentWidget(tabs.train)
    window.statusBar().showMessage(
        f"Opened {path.name}: its network is in the Build tab, its run and curves in the "
        "Train tab, its trained weights in the Inspect tab.", 10000)
    return True


def dropped_files(mime: QMimeData) -> list[Path]:
    """The local files a drag carries that the window can open."""
    if not mime.hasUrls():
        return []
    known = CHECKPOINT_SUFFIXES | ARCHITECTURE_SUFFIXES | IMAGE_SUFFIXES
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.suffix.lower() in known]


def drag_enter(window: Any, event) -> None:
    if dropped_files(event.mimeData()):
        event.acceptProposedAction()
    else:
        event.ignore()


def drop(window: Any, event) -> None:
    """A checkpoint or an architecture opens; an image goes to the Inspect tab."""
    paths = dropped_files(event.mimeData())
    if not paths:
        event.ignore()
        return
    event.acceptProposedAction()
    path = paths[0]
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        tabs = getattr(window, "training_tabs", None)
        if tabs is not None:
            window.tabs.setCurrentWidget(tabs.inspect)
            tabs.inspect.show_image_file(path)
        return
    window.open_file(path)
