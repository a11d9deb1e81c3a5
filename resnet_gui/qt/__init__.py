"""Qt views and controllers (PySide6, pyqtgraph): the only layer that imports Qt."""
