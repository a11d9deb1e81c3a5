"""Time a loss landscape of resnet20 (21x21 grid and its 1-D slice, 1,000 test images) against
the straightforward way, in the same run. Target: at most 120 s on two CPU cores.

Ours: ``resnet_gui.engine.lab.landscape.run_landscape``: one evaluation copy of the network with
batch norm folded into the convolutions, its weights overwritten in place at each point, the
images prepared once, inference mode, channels_last, bf16 autocast where the CPU runs bf16
natively (precision "auto"), batches of 1,000.

Baseline: what one writes first: at each point a deep copy of the network, every weight moved
along the two directions, then ``evaluate_model`` in fp32 (eval mode, batch 256, images
prepared batch by batch). It is timed on a few points and scaled to the grid's number of
evaluations, so the run stays short.

Both report the median of several repetitions, wall clock and CPU seconds (all threads).

Run: python benchmarks/bench_landscape.py [--checkpoint resnet20.pt] [--data-dir DIR]
(from the repository root). Without a checkpoint, a freshly initialised resnet20 is used, its
batch-norm statistics set by a pass over training images: the cost of a point does not depend
on the weights.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resnet_gui  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402

from resnet_gui.arch.presets import build_preset  # noqa: E402
from resnet_gui.arch.recipe import Recipe  # noqa: E402
from resnet_gui.engine.data import BatchMaker, load_data  # noqa: E402
from resnet_gui.engine.device import placement_for  # noqa: E402
from resnet_gui.engine.inference import EvalSet  # noqa: E402
from resnet_gui.engine.inspect import evaluate_model  # noqa: E402
from resnet_gui.engine.lab.common import load_trained, training_data_of  # noqa: E402
from resnet_gui.engine.lab.landscape import (  # noqa: E402
    filter_normalised_direction,
    run_landscape,
)
from resnet_gui.engine.model import build_model  # noqa: E402

TARGET_SECONDS = 120.0


def untrained_resnet20(data_dir: str | None):
    recipe = Recipe(data_dir=data_dir, augment=False)
    bundle = load_data(recipe)
    arch = build_preset("resnet20", in_channels=bundle.channels,
                        num_classes=bundle.num_classes, input_size=bundle.image_size)
    torch.manual_seed(0)
    model = build_model(arch).train()
    maker = BatchMaker.for_bundle(bundle, recipe, torch.device("cpu"), channels_last=False)
    with torch.no_grad():
        for start in range(0, 2048, 256):  # running statistics as training would leave them
            model(maker(bundle.train_images[start:start + 256]))
    return model.eval(), bundle, recipe


def baseline_point(model, bundle, recipe, indices, delta, eta, a: float, b: float) -> None:
    moved = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, weight in moved.named_parameters():
            if name in delta:
                weight += a * delta[name] + b * eta[name]
    maker = BatchMaker(bundle.mean, bundle.std, torch.device("cpu"), recipe.resize,
                       augment=False, channels_last=False)
    evaluate_model(moved, bundle.test_images[indices], bundle.test_labels[indices], maker,
                   bundle.num_classes, batch_size=256)


def timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a resnet20 checkpoint (default: untrained)")
    parser.add_argument("--data-dir", help="folder holding Fashion-MNIST")
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-points", type=int, default=5)
    args = parser.parse_args()

    if args.checkpoint:
        trained = load_trained(args.checkpoint)
        model, recipe = trained.model, trained.recipe
        bundle = training_data_of(trained, args.data_dir)
    else:
        model, bundle, recipe = untrained_resnet20(args.data_dir)
    placement = placement_for("cpu", "auto")
    evalset = EvalSet.from_bundle(bundle, recipe, placement, args.images)
    points = args.grid * args.grid + args.grid - 1 + 1  # grid, the slice's new points, centre
    print(f"resnet20, {evalset.count:,} images of {tuple(evalset.images.shape[1:])}, "
          f"{args.grid}x{args.grid} grid + 1-D slice = {points} evaluations; "
          f"{torch.get_num_threads()} threads, precision {placement.precision}")

    delta = filter_normalised_direction(model, 0, 0)
    eta = filter_normalised_direction(model, 0, 1)
    baseline_times = []
    for repeat in range(args.repeats):
        per_point = [timed(lambda: baseline_point(model, bundle, recipe, evalset.indices, delta,
                                                  eta, 0.1 * i, -0.05 * i))
                     for i in range(args.baseline_points)]
        wall = statistics.median(t[0] for t in per_point) * points
        cpu = statistics.median(t[1] for t in per_point) * points
        baseline_times.append((wall, cpu))
        print(f"  baseline, repeat {repeat + 1}: {wall:7.1f} s wall, {cpu:7.1f} CPU-s "
              f"(scaled from {args.baseline_points} points)", flush=True)

    fast_times = []
    for repeat in range(args.repeats):
        wall, cpu = timed(lambda: run_landscape(model, evalset, grid=args.grid, span=1.0))
        fast_times.append((wall, cpu))
        print(f"  run_landscape, repeat {repeat + 1}: {wall:7.1f} s wall, {cpu:7.1f} CPU-s",
              flush=True)

    base_wall = statistics.median(t[0] for t in baseline_times)
    base_cpu = statistics.median(t[1] for t in baseline_times)
    fast_wall = statistics.median(t[0] for t in fast_times)
    fast_cpu = statistics.median(t[1] for t in fast_times)
    print(f"median of {args.repeats}: baseline {base_wall:.1f} s ({base_cpu:.1f} CPU-s), "
          f"run_landscape {fast_wall:.1f} s ({fast_cpu:.1f} CPU-s): {base_wall / fast_wall:.1f}x "
          f"wall, {base_cpu / fast_cpu:.1f}x CPU")
    if args.grid == 21 and args.images == 1000:
        print(f"target <= {TARGET_SECONDS:.0f} s wall on two cores: "
              f"{'met' if fast_wall <= TARGET_SECONDS else 'NOT met'} on this machine now")


if __name__ == "__main__":
    main()
