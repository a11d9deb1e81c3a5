"""One helper turns numbers JSON cannot hold into null, for the run store and the --log file."""

from __future__ import annotations

import math

from resnet_gui.arch.numbers import finite_or_none, json_value


def test_non_finite_numbers_become_none_and_the_rest_pass():
    assert [finite_or_none(v) for v in (math.nan, math.inf, None, 3)] == [None, None, None, 3.0]
    assert [json_value(v) for v in (math.nan, -math.inf, 1.5, 7, "x", None)] == [
        None, None, 1.5, 7, "x", None]


def test_the_run_store_and_the_log_share_it():
    from resnet_gui.commands import jsonlog
    from resnet_gui.engine import runs

    assert jsonlog.json_value is json_value and runs.json_value is json_value
    assert runs.finite_or_none is finite_or_none
