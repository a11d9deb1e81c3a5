"""GUI test fixtures: settings in a temporary folder (never the user's), windows that close
without prompting, and no analysis thread left running after a test."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from gui_helpers import settle
from resnet_gui.qt.shared.settings import APPLICATION, ORGANISATION

# pytest imports every conftest.py as the module "conftest", the last one collected winning;
# test modules elsewhere do "from conftest import REPO", so offer the same names as
# tests/conftest.py does.
REPO = Path(__file__).resolve().parent.parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Point QSettings (and anything following XDG) at a temporary folder."""
    folder = tmp_path / "settings"
    folder.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION,
                         APPLICATION)
    assert str(folder) in settings.fileName()
    yield settings


@pytest.fixture(autouse=True)
def analysis_on_threads():
    """Analyse on a worker thread in tests: a worker process warming up torch in the
    background would only slow a 2-core machine down. test_analysis_process covers it."""
    from resnet_gui.qt.build.analysis_worker import WorkerProcess

    WorkerProcess.enabled = False
    yield
    WorkerProcess.enabled = True


@pytest.fixture
def make_window(qtbot, isolated_settings):
    """``make_window(arch=None)``: a shown main window whose analysis has settled."""
    from resnet_gui.qt import create_main_window

    windows = []

    def make(arch: str | None = None, size: tuple[int, int] | None = None, **options):
        window = create_main_window(arch, settings=isolated_settings, **options)
        window.ask_unsaved_changes = lambda: "discard"  # tests that need the prompt replace it
        window.quiet_errors = True  # errors go to the status bar, not to a modal dialog
        qtbot.addWidget(window)
        if size is not None:  # otherwise the remembered geometry, or the default size
            window.resize(*size)
        window.show()
        settle(qtbot, window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.controller.shutdown()
        assert not window.controller.runner.busy or window.controller.runner.wait(0)


@pytest.fixture(autouse=True)
def qt_garbage_collected_in_the_gui_thread():
    """After each test, collect its windows' reference cycles here, in the GUI thread. Left
    to a later collection, they can be destroyed in a training worker thread, where a
    QObject's destructor waits for the GIL while the GUI thread, holding it, waits for Qt's
    lock: a deadlock (seen once in a clean-clone CI run, py-spy: gc_collect_main in the
    worker inside QObject::~QObject)."""
    yield
    gc.collect()
