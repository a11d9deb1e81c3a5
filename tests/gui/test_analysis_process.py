"""The analysis runs in a worker process once it is warm, with the same results as a thread,
and only the newest request's result is ever shown."""

from __future__ import annotations

import threading
import time

import pytest

from gui_helpers import settle
from resnet_gui.qt.build.analysis_worker import WorkerProcess
from resnet_gui.qt.build.controller import AnalysisRunner
from resnet_gui.arch import edits
from resnet_gui.arch.presets import build_preset


@pytest.fixture
def worker_process():
    WorkerProcess.enabled = True
    WorkerProcess.start()
    assert WorkerProcess.wait_ready(120), "the analysis process did not start"
    yield
    WorkerProcess.stop()
    WorkerProcess.enabled = False


def test_edits_are_analysed_in_the_worker_process(worker_process, make_window, qtbot):
    WorkerProcess.enabled = True  # make_window's fixture turned it off for other tests
    window = make_window("resnet50")
    runner = window.controller.runner
    window.controller.edit(edits.set_stage, 1, width=96, label="width")
    settle(qtbot, window)
    assert runner.process_runs >= 1
    from resnet_gui.engine.analysis import analyse

    assert window.controller.analysis == analyse(window.document.arch)
    # An error from the process keeps its layer path.
    window.controller.edit(edits.set_stem, padding=0, label="padding")
    window.controller.edit(edits.set_input, input_size=5, label="input")
    settle(qtbot, window)
    assert window.controller.problem.path == "conv1"


def test_only_the_newest_request_is_shown(qtbot):
    """A slow analysis of an old version must not overwrite a newer one."""
    gate = threading.Event()

    def slow_then_fast(arch):
        if arch.stages[0].width == 1:
            gate.wait(5)
        return arch.name

    runner = AnalysisRunner(slow_then_fast)
    shown = []
    runner.finished.connect(lambda generation, arch, result, error: shown.append(
        (generation == runner.generation, result)))
    base = build_preset("resnet18")
    runner.request(edits.set_stage(base, 0, width=1).replace(name="old"))
    runner.request(base.replace(name="middle"))  # replaced by the next one while waiting
    runner.request(base.replace(name="new"))
    gate.set()
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=10000)
    time.sleep(0.05)
    assert shown == [(False, "old"), (True, "new")]
    assert runner.wait(5000)
