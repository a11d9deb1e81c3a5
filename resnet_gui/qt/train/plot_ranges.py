"""The ranges the training plots show: coarse, so that the axes rarely move while a run
trains, and robust, so that one diverged run (a test loss of 1.8e8) cannot flatten every
other curve onto the axis.

Plain numbers in, plain numbers out: no Qt here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# A loss this many times the lowest starting loss of the runs shown is off the scale: a
# network that learns starts near ln(classes) and only falls; ten times that is divergence.
OFF_SCALE_FACTOR = 10.0
START_STEPS = 10  # the first reported training losses tell where a run started
MIN_LOG_SPAN = 4.0  # the log-scale loss axis spans at least this factor (labels 1, 2, 3 ...)


AXIS_TOP_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
TICK_STEPS = (1.0, 2.0, 5.0, 10.0)


def nice_ceiling(value: float, steps: Sequence[float] = AXIS_TOP_STEPS) -> float:
    """The smallest of ``steps`` (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8) times a power of ten >=
    value (> 0)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in steps:
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10.0 * power


def nice_floor(value: float) -> float:
    """The largest of 1, 2, 5 times a power of ten <= value (> 0)."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (5.0, 2.0, 1.0):
        if step * power <= value * (1 + 1e-9):
            return step * power
    return power


def _positive(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values) & (values > 0)]


def starting_loss(first_steps: np.ndarray, every_value: np.ndarray) -> float | None:
    """Where a run started: the median of its first reported training losses, or of all
    its losses where it reported no step."""
    start = _positive(first_steps)[:START_STEPS]
    if not len(start):
        start = _positive(every_value)
    return float(np.median(start)) if len(start) else None


class LossScale:
    """The loss plot's scale over several runs: what is on it and what is off it.

    ``runs`` holds, per run, (its first training losses, all of its loss values).
    """

    def __init__(self, runs: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        starts = [s for s in (starting_loss(first, values) for first, values in runs)
                  if s is not None]
        self.cap = OFF_SCALE_FACTOR * min(starts) if starts else math.inf
        kept, self.off_scale = [], []
        for _first, values in runs:
            values = _positive(values)
            on = values[values <= self.cap]
            kept.append(on)
            self.off_scale.append(float(values.max()) if len(on) < len(values) else None)
        kept_all = np.concatenate(kept) if kept else np.zeros(0)
        self.low = float(kept_all.min()) if len(kept_all) else None
        self.high = float(kept_all.max()) if len(kept_all) else None

    def linear_range(self) -> tuple[float, float] | None:
        if self.high is None:
            return None
        return 0.0, nice_ceiling(self.high * 1.04)

    def log_range(self) -> tuple[float, float] | None:
        """(log10 of the bottom, log10 of the top), on 1-2-5 steps below and nice steps above."""
        if self.high is None or self.low is None:
            return None
        bottom, top = nice_floor(self.low), nice_ceiling(self.high * 1.04)
        if top < MIN_LOG_SPAN * bottom:  # a log axis needs room for a few labelled ticks
            bottom = nice_floor(top / MIN_LOG_SPAN)
        return math.log10(bottom), math.log10(top)


def log_ticks(bottom: float, top: float) -> list[list[tuple[float, str]]]:
    """pyqtgraph ticks for a log axis from 10**bottom to 10**top: labels at 1, 2, (3,) 5 times
    a power of ten (only the powers of ten over many decades), unlabelled marks between.
    Its own log ticks label 0.6, 0.7, 0.8 and 0.9 too, and they overlap in a short plot."""
    labelled, marks = [], []
    decades = range(math.floor(bottom), math.ceil(top) + 1)
    span_decades = top - bottom
    steps = (1,) if span_decades > 4 else (1, 2, 5) if span_decades > 0.99 else (1, 2, 3, 5)
    for decade in decades:
        for step in range(1, 10):
            position = decade + math.log10(step)
            if not bottom - 1e-9 <= position <= top + 1e-9:
                continue
            if step in steps:
                labelled.append((position, f"{step * 10.0 ** decade:g}"))
            else:
                marks.append((position, ""))
    return [labelled, marks]


def accuracy_range(low: float, high: float) -> tuple[float, float]:
    """Whole tens around the accuracies shown, within 0-100 %."""
    if not high > low:
        return max(0.0, 10.0 * math.floor(low / 10.0)), 100.0
    return (max(0.0, 10.0 * math.floor(low / 10.0)), min(100.0, 10.0 * math.ceil(high / 10.0)))


def span(values: Iterable[np.ndarray]) -> tuple[float, float] | None:
    """(lowest, highest) finite value of several arrays, or None."""
    low, high = math.inf, -math.inf
    for array in values:
        array = np.asarray(array, dtype=np.float64)
        array = array[np.isfinite(array)]
        if len(array):
            low, high = min(low, float(array.min())), max(high, float(array.max()))
    return (low, high) if high >= low else None
