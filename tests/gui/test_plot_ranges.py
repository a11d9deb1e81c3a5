"""The loss plot's scale: one diverged run (a test loss of 1.8e8) stays off it, and a log
axis labels 1-2-5 steps that never crowd."""

from __future__ import annotations

import math

import numpy as np

from resnet_gui.qt.train.plot_ranges import LossScale, log_ticks, nice_ceiling, nice_floor


def run(first, others=()):
    first = np.array(first, dtype=float)
    return first, np.concatenate([first, np.array(others, dtype=float)])


def test_a_diverged_run_is_off_the_scale_and_named():
    healthy = run([2.3, 1.5, 0.9, 0.6], [0.7, 0.5])
    diverged = run([2.3, 2.0, 1.8], [1.8e8, float("nan"), float("inf")])
    scale = LossScale([healthy, diverged])
    assert scale.high == 2.3 and scale.low == 0.5
    assert scale.off_scale == [None, 1.8e8]
    bottom, top = scale.log_range()
    assert 10 ** bottom <= 0.5 and 2.3 <= 10 ** top <= 3.0
    assert scale.linear_range() == (0.0, 2.5)


def test_a_run_that_starts_high_does_not_widen_the_scale_of_the_others():
    started_badly = run([400.0, 90.0, 30.0, 2.0])
    healthy = run([2.3, 1.0, 0.4])
    scale = LossScale([started_badly, healthy])
    assert scale.high <= 10 * 2.3 and scale.off_scale[0] == 400.0


def test_no_curves_no_range():
    assert LossScale([]).log_range() is None and LossScale([run([])]).linear_range() is None


def test_log_ticks_label_one_two_five_and_only_decades_over_many():
    labels = [text for _, text in log_ticks(math.log10(0.5), math.log10(5))[0]]
    assert labels == ["0.5", "1", "2", "5"]
    narrow = [text for _, text in log_ticks(math.log10(2), math.log10(4))[0]]
    assert narrow == ["2", "3"]
    wide = [text for _, text in log_ticks(-1, 8)[0]]
    assert wide == ["0.1", "1", "10", "100", "1000", "10000", "100000", "1e+06", "1e+07",
                    "1e+08"]


def test_nice_steps():
    assert (nice_floor(0.73), nice_ceiling(0.73)) == (0.5, 0.8)
    assert (nice_floor(2.3), nice_ceiling(2.3)) == (2.0, 2.5)
