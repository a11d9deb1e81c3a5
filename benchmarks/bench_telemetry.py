"""The cost of per-block telemetry, and the interval that keeps it within 3 % of step time.

For each network (resnet20 on 3x32x32, d2l-resnet18 on 1x96x96 as in the D2L chapter), in one
process: training steps without telemetry (the baseline) and steps that are all sampled
(``every`` = 1), alternating in repetitions so that load drifts hit both alike. A sample's
extra cost is (median sampled step) - (median plain step); at an interval of N steps the
overhead is that extra cost over N plain steps. Steps are timed in process time (CPU seconds
of all threads), which the other jobs on a shared machine distort less than wall time; wall
time is printed beside it. The first steps of each stretch are warm-up and not timed.

Usage (from the repository root):

    python benchmarks/bench_telemetry.py [--steps 8] [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from resnet_gui.arch import build_preset  # noqa: E402
from resnet_gui.arch.recipe import Recipe  # noqa: E402
from resnet_gui.engine.data import make_bundle  # noqa: E402
from resnet_gui.engine.loop import TrainingLoop  # noqa: E402
from resnet_gui.engine.telemetry import DEFAULT_EVERY, BlockTelemetry  # noqa: E402
from resnet_gui.engine.trainer import Trainer  # noqa: E402

BUDGET = 0.03  # the ceiling: telemetry may cost 3 % of the step time
INTERVALS = (1, 5, 10, 20, 50, 100, 200)
WARMUP = 2
# Batches of 32: a sample's fixed costs (Python hooks, one small reduction per block) weigh
# more against a small step than against the chapter's 128, so the interval chosen holds for
# larger batches too.
NETWORKS = (  # preset, channels, side, batch size
    ("resnet20", 3, 32, 32),
    ("d2l-resnet18", 1, 96, 32),
)


def synthetic_data(channels: int, side: int, count: int):
    """Random images: the step's arithmetic does not depend on what they show."""
    rng = np.random.default_rng(0)
    shape = (count, side, side) if channels == 1 else (count, channels, side, side)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    return make_bundle(images, labels, images[:16], labels[:16], [str(i) for i in range(10)])


def make_loop(preset: str, channels: int, side: int, batch: int, steps: int) -> TrainingLoop:
    arch = build_preset(preset).replace(in_channels=channels, input_size=(side, side))
    recipe = Recipe(epochs=1, batch_size=batch, lr=0.01, device="cpu", augment=False, seed=0)
    trainer = Trainer(arch, recipe, data=synthetic_data(channels, side, batch * steps))
    checkpoint = trainer._prepare()
    return TrainingLoop(trainer, trainer.arch, trainer.recipe, trainer.data, checkpoint)


def timed_steps(loop: TrainingLoop, count: int, every: int) -> tuple[list[float], list[float]]:
    """Process and wall seconds of ``count`` steps (after warm-up), telemetry every
    ``every`` steps (0: none)."""
    cpu, wall = [], []
    order = torch.arange(loop.num_train)
    batch = loop.state.batch_size
    with BlockTelemetry.attached(loop, every):
        for index in range(WARMUP + count):
            position = (index * batch) % (loop.num_train - batch + 1)
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            loop.train_step(order[position:position + batch])
            if index >= WARMUP:
                cpu.append(time.process_time() - started_cpu)
                wall.append(time.perf_counter() - started_wall)
    return cpu, wall


def measure(preset: str, channels: int, side: int, batch: int, steps: int, repeats: int
            ) -> dict[str, float]:
    loop = make_loop(preset, channels, side, batch, steps)
    times: dict[str, list[float]] = {"plain": [], "sampled": [], "plain_wall": [],
                                     "sampled_wall": []}
    for _ in range(repeats):
        for name, every in (("plain", 0), ("sampled", 1)):
            cpu, wall = timed_steps(loop, steps, every)
            times[name] += cpu
            times[name + "_wall"] += wall
    return {name: statistics.median(values) for name, values in times.items()}


def smallest_interval(extra: float, plain: float) -> int:
    """The fewest steps between samples that keep the cost within the budget."""
    return max(1, int(np.ceil(extra / (BUDGET * plain)))) if extra > 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per stretch")
    parser.add_argument("--repeats", type=int, default=7, help="alternating repetitions")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: no thread spins while it waits, "
                        "so process time is the work done)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"telemetry cost on the CPU (torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads), median of {args.repeats} x {args.steps} steps per mode")
    needed = []
    for preset, channels, side, batch in NETWORKS:
        result = measure(preset, channels, side, batch, args.steps, args.repeats)
        plain, sampled = result["plain"], result["sampled"]
        extra = sampled - plain
        print(f"\n{preset} ({channels}x{side}x{side}, batch {batch}):")
        print(f"  plain step    {1e3 * plain:8.1f} ms CPU  ({1e3 * result['plain_wall']:.1f} "
              "ms wall)  <- baseline")
        print(f"  sampled step  {1e3 * sampled:8.1f} ms CPU  "
              f"({1e3 * result['sampled_wall']:.1f} ms wall)")
        print(f"  one sample costs {1e3 * extra:+.1f} ms CPU = {100 * extra / plain:+.1f} % "
              "of a step")
        print("  overhead at every N steps: " + ", ".join(
            f"N={n}: {100 * extra / (n * plain):.2f} %" for n in INTERVALS))
        needed.append(smallest_interval(extra, plain))
        print(f"  within {100 * BUDGET:.0f} % from N = {needed[-1]}")
    print(f"\nsmallest interval within {100 * BUDGET:.0f} % for every network: {max(needed)}; "
          f"the default is {DEFAULT_EVERY}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
