"""The training window emits thousands of signals a minute: the Qt binding must not lose
references while doing it. PySide6 6.12.0 on Python 3.11 drops a reference to True on every
``emit()`` and to None on every null result, so a long run ends in "deallocating True"."""

import sys

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QTreeWidget

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12),
                                reason="None, True and False are immortal from Python 3.12")


class _Emitter(QObject):
    event = Signal(object)

    def __init__(self):
        super().__init__()
        self.received = 0
        self.event.connect(self._receive)

    def _receive(self, _value):
        self.received += 1


def test_emitting_keeps_the_references_of_true_and_none(qtbot):
    emitter = _Emitter()
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(1000):
        emitter.event.emit(None)
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert emitter.received == 1000
    assert abs(after[0] - before[0]) < 50 and abs(after[1] - before[1]) < 50, (
        "this PySide6 loses references on emit; use a release without the bug (6.11.x)")


def test_null_results_keep_the_reference_of_none(qtbot):
    tree = QTreeWidget()
    before = sys.getrefcount(None)
    for _ in range(1000):
        tree.currentItem()
    assert abs(sys.getrefcount(None) - before) < 50
