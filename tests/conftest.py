"""Shared test set-up: Qt renders offscreen, so the suite runs without a screen."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_runs_folder(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's own saved runs."""
    monkeypatch.setenv("RESNET_GUI_RUNS", str(tmp_path_factory.mktemp("runs")))


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny tensors run fastest so, and the timing of
    other jobs on the machine cannot disturb them."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
