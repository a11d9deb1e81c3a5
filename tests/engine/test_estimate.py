"""The estimated time per epoch before Start: a short probe of the real network."""

from __future__ import annotations

import time

import pytest

from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.estimate import (
    SLOW_EPOCH_SECONDS,
    estimate_epoch,
    fastest_step,
    format_duration,
    probe_batch_size,
)
from resnet_gui.errors import UserError
from tests.engine.test_trainer import TINY


def test_the_estimate_scales_with_the_images_and_describes_itself():
    recipe = Recipe(device="cpu", precision="fp32", batch_size=16, channels_last=False)
    small = estimate_epoch(TINY, recipe, num_train=1000, num_test=0)
    assert 0 < small.seconds_per_image < 1 and small.probe_batch == 16
    assert small.seconds == pytest.approx(1000 * small.seconds_per_image)
    assert not small.slow
    assert small.describe().startswith("about ") and "per epoch on cpu (fp32)" in \
        small.describe()


def test_a_large_network_probes_a_small_batch_and_warns_before_it_starts():
    resnet50 = build_preset("resnet50", 1, 10, 224)
    # About 4 G multiply-adds per image: the probe takes two images, not the run's 128.
    assert probe_batch_size(4_100_000_000, 128) == 2
    estimate = estimate_epoch(resnet50, Recipe(device="cpu", batch_size=128), 60_000, 10_000)
    assert estimate.probe_batch == 2
    # Two CPU cores cannot train resnet50 at 224 px on Fashion-MNIST in ten minutes an epoch.
    assert estimate.seconds > SLOW_EPOCH_SECONDS and estimate.slow


def test_a_network_too_large_for_the_machine_is_one_sentence_before_any_probe(monkeypatch):
    from resnet_gui.engine import estimate, memory

    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 4096)
    monkeypatch.setattr(estimate, "build_model", lambda arch: pytest.fail("probed anyway"))
    with pytest.raises(UserError, match="more than the 4.0 KiB of this computer's memory"):
        estimate_epoch(TINY, Recipe(device="cpu"), 100, 10)


@pytest.mark.parametrize("seconds, text", [(5, "5 s"), (300, "5 min"), (5400, "1.5 h")])
def test_durations_read_as_a_person_would_say_them(seconds, text):
    assert format_duration(seconds) == text


def test_a_probe_slowed_by_other_work_goes_on_until_its_steps_agree():
    """The window opening (its analysis process starting) slowed a probe's first steps
    tenfold; the estimate is the network's own speed once two steps agree."""
    delays = iter([0.2, 0.3, 0.15, 0.06, 0.062, 1.0])
    calls = []

    def step():
        calls.append(next(delays))
        time.sleep(calls[-1])

    assert fastest_step(step) == pytest.approx(0.06, abs=0.01)
    assert calls == [0.2, 0.3, 0.15, 0.06, 0.062]  # stopped once two steps agreed


def test_a_steady_machine_probes_three_steps():
    calls = []
    assert fastest_step(lambda: calls.append(time.sleep(0.1))) == pytest.approx(0.1, abs=0.015)
    assert len(calls) == 3
