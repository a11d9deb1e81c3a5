"""Growing a trained network: max |delta logit| at the growth, and the A/B comparison.

For each seed: train ``fmnist-fast`` (one basic block per stage) on Fashion-MNIST for half its
plan, grow a block into layer2 (``layer2:1``), and train the grown network to the end of the
plan (``train --resume`` of the grown checkpoint). The baseline, in the same invocation: the
same grown architecture trained from scratch with the same plan and budget
(``train GROWN.pt``). Prints, per arm, the median over seeds of the test accuracy, and the
largest |delta logit| the growth caused on the test images.

    python benchmarks/bench_growth.py [--data-dir ../shared/data] [--seeds 3]
        [--limit-train 10000] [--limit-test N] [--epochs 2]

Without --data-dir (or RESNET_GUI_DATA), the bundled 5,000-image sample is used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from resnet_gui.arch.presets import build_preset  # noqa: E402
from resnet_gui.arch.recipe import FMNIST_FAST_RECIPE  # noqa: E402
from resnet_gui.engine.data import load_data  # noqa: E402
from resnet_gui.engine.growth import grow_checkpoint, write_grown  # noqa: E402
from resnet_gui.engine.trained import load_trained  # noqa: E402
from resnet_gui.engine.trainer import Trainer, fit_architecture, steps_in_epoch  # noqa: E402


def test_logit_change(before, after, data, count: int = 1000) -> float:
    """Max |delta logit| of the two trained networks on the first ``count`` test images."""
    maker = before.preprocessing.batch_maker()
    images = maker(data.test_images[:count])
    with torch.no_grad():
        return float((before.model(images) - after.model(images)).abs().max())


def one_seed(seed: int, args, data, folder: Path) -> dict[str, float]:
    recipe = FMNIST_FAST_RECIPE.replace(epochs=args.epochs, seed=seed, device="cpu",
                                        limit_train=args.limit_train,
                                        limit_test=args.limit_test, data_dir=args.data_dir)
    arch = fit_architecture(build_preset("fmnist-fast"), data, recipe)
    half = args.epochs * steps_in_epoch(data.num_train, recipe.batch_size) // 2
    first = folder / f"first-{seed}.pt"
    Trainer(arch, recipe.replace(max_steps=half), data=data, checkpoint_path=first).run()
    original = load_trained(first)
    grown_path = write_grown(grow_checkpoint(original, "layer2:1"), folder / f"grown-{seed}.pt")
    change = test_logit_change(original, load_trained(grown_path), data)
    started = time.process_time()
    grown_end = Trainer(load_trained(grown_path).arch, recipe, data=data,
                        checkpoint_path=grown_path, resume_from=grown_path).run()
    grown_cpu = time.process_time() - started
    started = time.process_time()
    scratch_end = Trainer(load_trained(grown_path).arch, recipe, data=data).run()
    return {"change": change, "grown": grown_end.test_accuracy,
            "scratch": scratch_end.test_accuracy, "grown_cpu": grown_cpu,
            "scratch_cpu": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=10_000)
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = load_data(FMNIST_FAST_RECIPE.replace(data_dir=args.data_dir,
                                                limit_train=args.limit_train,
                                                limit_test=args.limit_test))
    print(f"{data.name}: {data.num_train:,} training and {data.num_test:,} test images, "
          f"fmnist-fast, {args.epochs} epochs, growth at half the plan, {args.seeds} seeds",
          flush=True)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            result = one_seed(seed, args, data, Path(folder))
            results.append(result)
            print(f"seed {seed}: max |delta logit| {result['change']:.3g}; test accuracy grown "
                  f"{result['grown']:.4f}, from scratch {result['scratch']:.4f}", flush=True)

    def median(key: str) -> float:
        return statistics.median(result[key] for result in results)

    print(f"median over {args.seeds} seeds: max |delta logit| at the growth "
          f"{median('change'):.3g} (largest {max(r['change'] for r in results):.3g}); test "
          f"accuracy grown {median('grown'):.4f} vs from scratch (baseline) "
          f"{median('scratch'):.4f}, difference {median('grown') - median('scratch'):+.4f}; "
          f"CPU seconds grown (second half only) {median('grown_cpu'):.0f}, from scratch "
          f"(whole plan) {median('scratch_cpu'):.0f}")


if __name__ == "__main__":
    main()
