"""What the Lab tab needs of the window, as callables, so that its views work with the real
window or a test's stand-in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from resnet_gui.engine.runs import RunStore


@dataclass
class LabContext:
    data_folder: Callable[[], str | None] = lambda: None  # where the datasets are kept
    store: Callable[[], RunStore | None] = lambda: None  # the run list's store
    runs_changed: Callable[[], None] = lambda: None  # a run was added or updated
    training_live: Callable[[], bool] = lambda: False  # a Train tab run holds the CPU
