"""Starting the window: ``resnet-gui [ARCH] [--data-dir DIR] [--screenshot FILE.png]``."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from resnet_gui.errors import UserError

SCREENSHOT_SIZE = (1600, 1000)

# The system libraries Qt needs on a bare Debian or Ubuntu (README, Set-up), checked in a
# fresh Debian bookworm: without any one of them Qt cannot load or its xcb plugin cannot.
QT_SYSTEM_PACKAGES = (
    "libgl1 libegl1 libfontconfig1 libglib2.0-0 libdbus-1-3 libx11-xcb1 libxkbcommon-x11-0 "
    "libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
    "libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-xkb1"
)


def _missing_library(problem: object) -> UserError:
    return UserError(f"Qt cannot start: {problem}; on Debian or Ubuntu install the libraries "
                     f"it needs with: sudo apt-get install {QT_SYSTEM_PACKAGES}")


def _uses_xcb() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.startswith("xcb")
    return bool(os.environ.get("DISPLAY")) and os.environ.get("XDG_SESSION_TYPE") != "wayland"


def check_qt_libraries() -> None:
    """Name a missing system library in one sentence with the fix, where Qt would raise an
    ImportError or abort ("could not load the Qt platform plugin xcb") instead."""
    try:
        import PySide6
        from PySide6 import QtWidgets  # noqa: F401 (loads QtCore, QtGui and their libraries)
    except ImportError as error:
        raise _missing_library(error) from None
    if not (sys.platform.startswith("linux") and _uses_xcb()):
        return
    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    if plugin.is_file():
        import ctypes

        try:
            ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY)  # what Qt's plugin loader will do
        except OSError as error:
            raise _missing_library(error) from None


def _application():
    check_qt_libraries()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setOrganizationName("resnet-gui")
        app.setApplicationName("resnet-gui")
        app.setApplicationDisplayName("resnet-gui")
        app.setStyle("Fusion")
    return app


def create_main_window(arch: str | None = None, settings=None, *, run_store=None,
                       data_loader=None, data_dir: str | None = None):
    """The main window with ``arch`` (a preset name, a JSON file or a checkpoint, opened with
    its run and trained weights; None: the D2L chapter's ResNet-18) loaded, without entering the event loop. A QApplication must exist.
    ``data_dir`` (an existing folder) is where datasets are kept, as File > Data folder sets.

    ``run_store`` (where runs are kept; default the per-user folder) and ``data_loader``
    (how the Train tab loads a recipe's data; default the engine's) serve tests and
    benchmarks."""
    from resnet_gui.arch.resolve import is_checkpoint_file
    from resnet_gui.qt.shared.datasets import dataset_named
    from resnet_gui.qt.main_window import DEFAULT_PRESET, MainWindow, load_architecture
    from resnet_gui.qt.shared.settings import app_settings

    settings = settings if settings is not None else app_settings()
    dataset = dataset_named(settings.value("data/dataset", "", str))
    checkpoint = arch if arch is not None and is_checkpoint_file(arch) else None
    if checkpoint is not None:
        arch = None  # the default network until the checkpoint's replaces it, below
    architecture, path = load_architecture(arch or DEFAULT_PRESET, dataset)  # fails fast
    # Load torch now, on the GUI thread, so the first analysis on the worker does not hold
    # the import lock while the window starts.
    import resnet_gui.engine.analysis  # noqa: F401
    window = MainWindow(architecture, path, settings=settings, dataset=dataset)
    from resnet_gui.qt.training_tabs import install_training_panels

    install_training_panels(window, run_store, data_loader=data_loader)
    from resnet_gui.qt.lab import install_lab_tab

    install_lab_tab(window)
    if data_dir is not None:
        window.set_data_folder(str(checked_data_dir(data_dir)))
    if checkpoint is not None:  # as File > Open: its network, run and trained weights
        from resnet_gui.qt.checkpoints import open_checkpoint

        open_checkpoint(window, checkpoint, ask=False)
    # torch and Qt leave hundreds of thousands of long-lived objects; a full garbage
    # collection walking them all stalled the window for 0.2-0.6 s while editing. Frozen,
    # they are skipped, and a collection only walks what the editor creates.
    gc.collect()
    gc.freeze()
    return window


def checked_data_dir(data_dir: str) -> Path:
    """``--data-dir DIR``: an existing folder (a typo is never created and filled)."""
    folder = Path(data_dir).expanduser().resolve()
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(f"the data folder {folder} (--data-dir) {problem}; create it or give "
                        "an existing folder")
    return folder


def save_screenshot(window, path: str | os.PathLike) -> None:
    from resnet_gui.arch.serialize import atomic_write_bytes
    from PySide6.QtCore import QBuffer, QIODevice

    window.resize(*SCREENSHOT_SIZE)
    window.show()
    window.wait_until_settled()
    pixmap = window.grab()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buffer, "PNG"):
        raise UserError(f"could not render the window to {path}")
    atomic_write_bytes(path, bytes(buffer.data()))


def run_app(arch: str | None = None, screenshot: str | None = None,
            data_dir: str | None = None) -> int:
    """Open the window (or, with ``screenshot``, render it offscreen, write a PNG, exit 0);
    ``data_dir`` is where the datasets are kept."""
    if screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if Path(screenshot).suffix.lower() != ".png":
            raise UserError(f"--screenshot writes a PNG; name the file .png, not {screenshot!r}")
    if arch is not None:  # a bad ARCH is one line on stderr, even where no window could open
        from resnet_gui.arch.resolve import is_checkpoint_file, resolve_architecture

        if not is_checkpoint_file(arch):  # a checkpoint opens in the window, as File > Open
            resolve_architecture(arch)
    if data_dir is not None:  # likewise a data folder that is not there
        checked_data_dir(data_dir)
    app = _application()
    if screenshot is not None:
        from resnet_gui.qt.build.analysis_worker import WorkerProcess

        WorkerProcess.enabled = False  # one analysis, then exit: a thread will do
    window = create_main_window(arch, data_dir=data_dir)
    if screenshot is not None:
        # A fixed window for the picture, whatever geometry the user's settings remember.
        window.setGeometry(0, 0, *SCREENSHOT_SIZE)
        save_screenshot(window, screenshot)
        window.controller.shutdown()
        print(f"resnet-gui: wrote {screenshot}")
        return 0
    if window.document.path is not None:
        window.files.remember(window.document.path)
    window.show()
    return int(app.exec())
