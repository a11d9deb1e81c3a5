"""How the `fmnist-fast` recipe was chosen: test accuracy after each epoch for candidate
networks and recipes. Accuracy after N epochs does not depend on the hardware, so this runs
on a GPU in a few minutes (about 4 s a candidate on an H200); the CPU cost of each candidate
is a separate measurement (examples/s per core, see docs/benchmarks.md).

    python benchmarks/sweep_fmnist_fast.py --data-dir DIR [--seconds 200] [--device cuda]

Prints one JSON line per candidate: network, epochs, recipe changes, parameters, accuracies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from resnet_gui.engine.data import load_data  # noqa: E402
from resnet_gui.engine.events import Callback  # noqa: E402
from resnet_gui.engine.trainer import Trainer  # noqa: E402
from resnet_gui.arch.model import Architecture, Shortcut, Stage, Stem  # noqa: E402
from resnet_gui.arch.recipe import FMNIST_FAST_RECIPE  # noqa: E402


def network(stem_width: int, stages, stem_stride: int = 1, pool: bool = False) -> Architecture:
    shortcut = Shortcut(kind="projection", batch_norm=True)
    return Architecture(
        stages=tuple(Stage(blocks=("basic",) * count, width=width, stride=stride,
                           shortcut=shortcut) for count, width, stride in stages),
        stem=Stem(kind="single", width=stem_width, kernel=3, stride=stem_stride,
                  max_pool=pool),
        in_channels=1, input_size=(28, 28), num_classes=10, name="candidate")


CANDIDATES = {
    "K": network(32, [(1, 64, 2), (1, 128, 2)], pool=True),
    "K16": network(16, [(1, 64, 2), (1, 128, 2)], pool=True),
    "K24": network(24, [(1, 64, 2), (1, 128, 2)], pool=True),
    "KW": network(32, [(1, 96, 2), (1, 192, 2)], pool=True),
    "H": network(32, [(1, 64, 2), (1, 128, 2)], stem_stride=2),
    "H48": network(48, [(1, 96, 2), (1, 192, 2)], stem_stride=2),
    "A": network(24, [(1, 32, 2), (1, 64, 2), (1, 128, 2)]),
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


class Accuracies(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, event) -> None:
        self.values.append(round(100 * event.test_accuracy, 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=200.0, help="stop starting new runs")
    args = parser.parse_args()
    base = FMNIST_FAST_RECIPE.replace(data_dir=args.data_dir, device=args.device,
                                      precision="fp32")
    data = load_data(base)
    started = time.perf_counter()
    for name, epochs, changes in PLAN:
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
