"""How long one epoch will take, before Start: a few timed training steps of the real network on
the chosen device, scaled by the analysis to the run's images.

So that resnet50 at 224 px on a laptop CPU warns before it starts, not an hour into its first
epoch. The probe's batch is sized from the analysis' multiply-adds so that the probe itself
stays short whatever the network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, plan_for_budget
from resnet_gui.engine.analysis import analyse
from resnet_gui.engine.device import configure_backends, placement_for, synchronize
from resnet_gui.engine.memory import require_memory_to_train
from resnet_gui.engine.model import build_model

PROBE_FLOP_BUDGET = 2e10  # floating-point work of one probe step (~0.2 s on a laptop core)
PROBE_MAX_BATCH = 32
PROBE_STEPS = 3  # timed steps at least
PROBE_SECONDS = 3.0  # timed steps stop after this long, even while they still disagree
STEADY = 1.2  # two steps within 20 % of the fastest: nothing else is slowing the probe
# A CPU probe whose wall clock ran this much past its thread's CPU time waited for the GIL or
# a core: on a quiet machine the two agree (within a few per cent).
DISTURBED = 1.5
EVAL_SHARE = 1 / 3  # a test image costs a forward pass: about a third of a training step
SLOW_EPOCH_SECONDS = 600.0  # an epoch slower than this deserves a warning before Start


@dataclass(frozen=True)
class EpochEstimate:
    seconds: float  # one epoch of training plus its evaluation
    seconds_per_image: float  # one training image
    device: str
    precision: str
    probe_batch: int
    disturbed: bool = False  # other work slowed the probe: worth measuring again

    @property
    def slow(self) -> bool:
        return self.seconds > SLOW_EPOCH_SECONDS

    def describe(self) -> str:
        """"about 2 min per epoch on cpu (bf16)"."""
        return f"about {format_duration(self.seconds)} per epoch on {self.device} " \
               f"({self.precision})"


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "an unknown time"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def probe_batch_size(macs_per_image: int, batch_size: int) -> int:
    """Images per probe step: a fixed amount of work, between 2 and the run's batch."""
    flops_per_image = 6 * max(macs_per_image, 1)  # forward and backward, 2 FLOPs per MAC
    return max(2, min(batch_size, PROBE_MAX_BATCH, int(PROBE_FLOP_BUDGET // flops_per_image)))


def estimate_epoch(arch: Architecture, recipe: Recipe, num_train: int, num_test: int
                   ) -> EpochEstimate:
    """Time a few training steps of ``arch`` where ``recipe`` would train it. Raises the same
    one-sentence errors as training would (an input too small, a network too large)."""
    recipe = plan_for_budget(recipe, num_train, arch)
    placement = placement_for(recipe.device, recipe.precision)
    analysis = analyse(arch)
    batch = probe_batch_size(analysis.total_macs, recipe.batch_size)
    require_memory_to_train(analysis, batch, placement.device, placement.precision)
    configure_backends(placement.device)
    with torch.random.fork_rng(devices=[]):
        per_image, disturbed = _seconds_per_image(build_model(arch), arch, placement, batch,
                                                  recipe.channels_last)
    seconds = per_image * (num_train + EVAL_SHARE * num_test)
    return EpochEstimate(seconds, per_image, str(placement.device), placement.precision, batch,
                         disturbed)


def _seconds_per_image(model: nn.Module, arch: Architecture, placement, batch: int,
                       channels_last: bool) -> tuple[float, bool]:
    """Seconds per training image, and whether other work slowed the probe."""
    device = placement.device
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model = model.to(device=device, memory_format=memory_format).train()
    inputs = torch.randn(batch, arch.in_channels, *arch.input_size, device=device)
    if channels_last and arch.in_channels > 1:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, arch.num_classes, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        with placement.autocast():
            loss = nn.functional.cross_entropy(model(inputs).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # allocation, autotuning and first-call costs are not an epoch's
    synchronize(device)
    # On the CPU, the probing thread's own CPU time: the window's threads hold the GIL for
    # seconds as it opens (imports, its first analysis), and the wall clock counted those
    # waits (steps of 1.0-1.7 s against 0.16 s a moment later: "8 min per epoch: slow" for a
    # run of 80 s). That still counts a busy machine's cost, so a probe whose wall clock ran
    # well past its CPU time says it was disturbed. An accelerator's work is not the thread's.
    if device.type != "cpu":
        return fastest_step(lambda: (step(), synchronize(device))) / batch, False
    wall, cpu = time.perf_counter(), time.thread_time()
    fastest = fastest_step(step, time.thread_time)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return fastest / batch, wall > DISTURBED * cpu


def fastest_step(step: Callable[[], object],
                 clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds of the fastest of a few timed calls of ``step``. Whatever else runs on the
    machine only ever slows a step, so steps go on until two agree with the fastest, within
    the time allowed."""
    times: list[float] = []
    started = time.perf_counter()
    while True:
        begun = clock()
        step()
        times.append(clock() - begun)
        fastest = min(times)
        agreeing = sum(seconds <= STEADY * fastest for seconds in times)
        if (len(times) >= PROBE_STEPS and agreeing >= 2) or \
                time.perf_counter() - started > PROBE_SECONDS:
            return fastest
