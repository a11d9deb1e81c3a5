"""Reference cycles are collected in the GUI thread while a window lives (a cycle holding a Qt
object, collected in a training thread, hung the window)."""

from __future__ import annotations

import gc
import threading

import shiboken6
from PySide6.QtCore import QObject

from resnet_gui.qt.shared import collector
from resnet_gui.qt.shared.collector import GuiThreadCollector


def test_cycles_a_worker_thread_leaves_are_collected_in_the_gui_thread(qtbot, make_window):
    make_window()
    assert not gc.isenabled()
    deleted_in_gui_thread: list[bool] = []

    class Node:
        def __del__(self):
            deleted_in_gui_thread.append(threading.current_thread() is threading.main_thread())

    def make_garbage():
        for _ in range(3000):  # far past the thresholds that start a collection
            first, second = Node(), Node()
            first.other, second.other = second, first

    worker = threading.Thread(target=make_garbage)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(deleted_in_gui_thread) == 6000, timeout=10_000)
    assert all(deleted_in_gui_thread)


def test_automatic_collection_is_back_when_the_last_collector_goes(qtbot):
    owner = QObject()
    GuiThreadCollector(owner)
    live = collector._live
    assert live >= 1 and not gc.isenabled()
    shiboken6.delete(owner)
    assert collector._live == live - 1
    assert gc.isenabled() == (collector._live == 0)
