"""How the `fmnist-fast` and `fmnist-94` recipes were chosen: test accuracy after each epoch
for candidate networks and recipes. Accuracy after N epochs does not depend on the hardware, so
this runs on a GPU in a few minutes (about 4 s a candidate on an H200), or on the CPU.

    python benchmarks/sweep_fmnist_fast.py --data-dir DIR [--seconds 200] [--device cuda]
        [--plan first|budget] [--precision fp32|auto] [--cost]

Prints one JSON line per candidate: network, epochs, recipe changes, parameters, accuracies.
``--plan budget`` is the later sweep of plans costing about three epochs of `fmnist-fast`,
and of longer ones for 94 %. ``--cost`` prints instead each network's training step speed
against `fmnist-fast` (K16) in the same process: the median of five alternations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from resnet_gui.engine.data import load_data  # noqa: E402
from resnet_gui.engine.events import Callback  # noqa: E402
from resnet_gui.engine.trainer import Trainer  # noqa: E402
from resnet_gui.arch.model import Architecture, Shortcut, Stage, Stem  # noqa: E402
from resnet_gui.arch.recipe import FMNIST_FAST_RECIPE  # noqa: E402


def network(stem_width: int, stages, stem_stride: int = 1, pool: bool = False,
            stem_kernel: int = 3) -> Architecture:
    shortcut = Shortcut(kind="projection", batch_norm=True)
    return Architecture(
        stages=tuple(Stage(blocks=("basic",) * count, width=width, stride=stride,
                           shortcut=shortcut) for count, width, stride in stages),
        stem=Stem(kind="single", width=stem_width, kernel=stem_kernel, stride=stem_stride,
                  padding=1 if stem_kernel == 4 else None, max_pool=pool),
        in_channels=1, input_size=(28, 28), num_classes=10, name="candidate")


CANDIDATES = {
    "K": network(32, [(1, 64, 2), (1, 128, 2)], pool=True),
    "K16": network(16, [(1, 64, 2), (1, 128, 2)], pool=True),
    "K24": network(24, [(1, 64, 2), (1, 128, 2)], pool=True),
    "KW": network(32, [(1, 96, 2), (1, 192, 2)], pool=True),
    "H": network(32, [(1, 64, 2), (1, 128, 2)], stem_stride=2),
    "H48": network(48, [(1, 96, 2), (1, 192, 2)], stem_stride=2),
    "A": network(24, [(1, 32, 2), (1, 64, 2), (1, 128, 2)]),
    "K8": network(8, [(1, 64, 2), (1, 128, 2)], pool=True),
    "K12": network(12, [(1, 64, 2), (1, 128, 2)], pool=True),
    "H16": network(16, [(1, 64, 2), (1, 128, 2)], stem_stride=2),
    "H32k4": network(32, [(1, 64, 2), (1, 128, 2)], stem_stride=2, stem_kernel=4),
    "H32k5": network(32, [(1, 64, 2), (1, 128, 2)], stem_stride=2, stem_kernel=5),
    "N48": network(16, [(1, 48, 2), (1, 96, 2)], pool=True),
    "W96": network(16, [(1, 96, 2), (1, 192, 2)], pool=True),
    "T3": network(16, [(1, 32, 1), (1, 64, 2), (1, 128, 2)], pool=True),
}
# (candidate, epochs, changes to the fmnist-fast recipe)
PLAN = [
    ("K16", 5, {}), ("K16", 4, {}), ("K16", 6, {}), ("K", 6, {}), ("K", 6, {"seed": 1}),
    ("K", 6, {"lr": 0.2}), ("K", 6, {"zero_init_last": True}), ("K", 5, {}),
    ("K", 6, {"augment": True}), ("K", 6, {"augment": True, "crop_padding": 0}),
    ("K", 6, {"label_smoothing": 0.0}), ("K", 6, {"weight_decay": 1e-4}),
    ("K", 6, {"batch_size": 128, "lr": 0.2}), ("K", 6, {"schedule": "cosine",
                                                      "warmup_epochs": 1.0}),
    ("K24", 6, {}), ("KW", 5, {}), ("H", 7, {}), ("H48", 6, {}), ("A", 10, {"augment": True}),
]
# Plans costing about three fmnist-fast (K16) epochs, then longer ones for 94 %.
BUDGET_PLAN = [
    ("K16", 4, {}), ("K16", 3, {}), ("K16", 3, {"batch_size": 128, "lr": 0.2}),
    ("K16", 3, {"batch_size": 128, "lr": 0.3}), ("K16", 3, {"batch_size": 64, "lr": 0.1}),
    ("K16", 3, {"lr": 0.6, "batch_size": 256}), ("K16", 3, {"label_smoothing": 0.2}),
    ("K16", 3, {"weight_decay": 1e-3}), ("K16", 3, {"warmup_epochs": 0.3}),
    ("K16", 3, {"batch_size": 512, "lr": 0.8}), ("K16", 3, {"momentum": 0.85}),
    ("K8", 3, {}), ("K12", 3, {}), ("H16", 4, {}), ("H32k4", 4, {}), ("H32k5", 4, {}),
    ("N48", 4, {}), ("N48", 5, {}), ("N48", 9, {}), ("W96", 5, {}), ("T3", 5, {}),
    ("K16", 8, {}), ("K16", 9, {}), ("K16", 10, {}), ("K16", 12, {}),
    ("K16", 10, {"weight_decay": 1e-3}),
]
PLANS = {"first": PLAN, "budget": BUDGET_PLAN}


class Accuracies(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, event) -> None:
        self.values.append(round(100 * event.test_accuracy, 2))


def examples_per_second(model, optimizer, images, labels, autocast, steps: int = 15) -> float:
    def step():
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(images) / (time.perf_counter() - started)


def print_costs(names: list[str], device: str, precision: str, repeats: int = 5) -> int:
    """Each network's training steps per second against K16's (fmnist-fast), alternating, on
    random batches of 256, with the kernels training uses on the CPU."""
    from resnet_gui.engine.device import placement_for
    from resnet_gui.engine.loop import cpu_training_kernels
    from resnet_gui.engine.model import build_model

    placement = placement_for(device, precision)
    names = ["K16", *(name for name in names if name != "K16")]
    runs = {}
    for name in names:
        model = build_model(CANDIDATES[name]).to(placement.device,
                                                 memory_format=torch.channels_last)
        runs[name] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    images = torch.randn(256, 1, 28, 28, device=placement.device)
    labels = torch.randint(0, 10, (256,), device=placement.device)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        speeds = {}
        for name, (model, optimizer) in runs.items():
            with (cpu_training_kernels(model) if placement.device.type == "cpu"
                  else contextlib.nullcontext()):
                speeds[name] = examples_per_second(model, optimizer, images, labels,
                                                   placement.autocast)
        for name in names:
            ratios[name].append(speeds[name] / speeds["K16"])
    for name in names:
        print(json.dumps({"network": name, "step_speed_vs_K16":
                          round(statistics.median(ratios[name]), 3)}), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=200.0, help="stop starting new runs")
    parser.add_argument("--plan", choices=PLANS, default="first")
    parser.add_argument("--precision", default="fp32", help="auto: bf16 where native")
    parser.add_argument("--cost", action="store_true", help="time each network's step instead")
    args = parser.parse_args()
    plan = PLANS[args.plan]
    if args.cost:
        return print_costs(sorted({name for name, _, _ in plan}), args.device, args.precision)
    base = FMNIST_FAST_RECIPE.replace(data_dir=args.data_dir, device=args.device,
                                      precision=args.precision)
    data = load_data(base)
    started = time.perf_counter()
    for name, epochs, changes in plan:
        if time.perf_counter() - started > args.seconds:
            break
        accuracies = Accuracies()
        trainer = Trainer(CANDIDATES[name], base.replace(epochs=epochs, **changes),
                          callbacks=[accuracies], data=data)
        trainer.run()
        print(json.dumps({"network": name, "epochs": epochs, "changes": changes,
                          "params": sum(p.numel() for p in trainer.model.parameters()),
                          "test_accuracy": accuracies.values}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
