"""Qt views and controllers (PySide6, pyqtgraph): the only layer that imports Qt.

Laid out like the window: the frame at this level (main_window.py, app.py, files.py,
export.py, training_tabs.py), one package per tab (build/, train/, inspect/), and shared/
for what several tabs use. A tab imports only itself and shared/ (tests/test_layering.py).
"""


def create_main_window(arch=None, settings=None, **options):
    """The main window with ``arch`` loaded (see :func:`resnet_gui.qt.app.create_main_window`)."""
    from resnet_gui.qt.app import create_main_window as create

    return create(arch, settings=settings, **options)


def run_app(arch=None, screenshot=None) -> int:
    from resnet_gui.qt.app import run_app as run

    return run(arch, screenshot=screenshot)


__all__ = ["create_main_window", "run_app"]
