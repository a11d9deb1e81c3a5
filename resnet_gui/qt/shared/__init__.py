"""What several tabs use: number and shape formatting, icons, the dataset choices, the
app's settings, and the training session the Train and Inspect tabs share.

Nothing here imports a tab package (``build``, ``train``, ``inspect``, ...) or the frame
(``main_window``, ``app``); tests/test_layering.py checks it.
"""
