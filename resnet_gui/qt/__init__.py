"""Qt views and controllers (PySide6, pyqtgraph): the only layer that imports Qt."""


def create_main_window(arch=None, settings=None, **options):
    """The main window with ``arch`` loaded (see :func:`resnet_gui.qt.app.create_main_window`)."""
    from resnet_gui.qt.app import create_main_window as create

    return create(arch, settings=settings, **options)


def run_app(arch=None, screenshot=None) -> int:
    from resnet_gui.qt.app import run_app as run

    return run(arch, screenshot=screenshot)


__all__ = ["create_main_window", "run_app"]
