"""Defaults that learn on any budget: test accuracy of `resnet-gui train PRESET` with default
settings on small budgets, beside the best of a three-point learning-rate sweep of each cell.

    python benchmarks/bench_budgets.py --data-dir ../shared/data [--jobs 2]

Each cell runs the real command (`resnet-gui train PRESET --limit-train N --epochs E`), once
with every default and twice more at the default learning rate divided and multiplied by three
(the default's own run is the sweep's middle point; the other two clip gradients as the
default's plan does, so that only the rate differs). Targets (issue "Training a user can trust
on any budget"): resnet20 on 2,000 images x 2 epochs reaches 75 %, no cell is at chance, and
every cell is within 3 points of its sweep's best. Runs are single-threaded and ``--jobs`` of
them share the machine: accuracy does not depend on it, and two one-thread runs use two cores
better than one two-thread run of small batches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from resnet_gui.arch.presets import build_preset  # noqa: E402
from resnet_gui.arch.recipe import AUTO_GRAD_CLIP, RECIPE_PRESETS, Recipe, plan_for_budget  # noqa: E402

PRESETS = ("fmnist-fast", "resnet20", "resnet56", "d2l-resnet18", "preact-resnet18")
BUDGETS = ((2000, 2), (10000, 3))
SWEEP = (1 / 3, 3.0)  # beside the default itself
CHANCE = 0.10  # Fashion-MNIST's ten balanced classes
MARGIN_POINTS = 3.0
TARGET = ("resnet20", (2000, 2), 0.75)
# The sizes where they are not the preset's own (preact-resnet18 is built for 224).
INPUT_SIZES = {"preact-resnet18": 32}


def default_lr(preset: str, limit: int, epochs: int) -> float:
    """The learning rate `train` picks for this cell, as its plan does."""
    base = RECIPE_PRESETS.get(preset, Recipe()).replace(epochs=epochs, limit_train=limit)
    return plan_for_budget(base, limit, build_preset(preset)).lr


def run_cell(preset: str, limit: int, epochs: int, lr: float | None, data_dir: str
             ) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "run.jsonl"
        command = [sys.executable, "-m", "resnet_gui", "train", preset, "--data-dir", data_dir,
                   "--limit-train", str(limit), "--epochs", str(epochs), "--no-progress",
                   "--threads", "1", "--log", str(log)]
        if lr is not None:  # only the rate differs from the default: it clips as the plan does
            command += ["--lr", f"{lr:.6g}", "--grad-clip", f"{AUTO_GRAD_CLIP:g}"]
        if preset in INPUT_SIZES:
            command += ["--resize", str(INPUT_SIZES[preset])]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-1], "seconds": seconds}
        records = [json.loads(line) for line in log.read_text().splitlines()]
        start, end = records[0], records[-1]
        print(f"  {preset} {limit}x{epochs} lr {start['recipe']['lr']:.4g}: "
              f"{100 * end['test_acc']:.1f} % in {seconds:.0f} s", flush=True)
        return {"accuracy": end["test_acc"], "learned": end.get("learned"), "seconds": seconds,
                "batch_size": start["batch_size"], "lr": start["recipe"]["lr"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--budgets", default=",".join(f"{n}x{e}" for n, e in BUDGETS),
                        help="IMAGESxEPOCHS, comma-separated")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", help="also write every run here")
    parser.add_argument("--reuse", metavar="JSON", help="take runs from an earlier --json "
                        "file instead of repeating them (same preset, budget and rate: runs "
                        "are single-threaded and seeded, so they repeat exactly)")
    args = parser.parse_args()
    presets = args.presets.split(",")
    budgets = [tuple(int(v) for v in b.split("x")) for b in args.budgets.split(",")]
    for preset in presets:
        build_preset(preset)  # an unknown name fails before any run
    jobs = []
    for preset in presets:
        for limit, epochs in budgets:
            lr = default_lr(preset, limit, epochs)
            jobs += [(preset, limit, epochs, None)]
            jobs += [(preset, limit, epochs, lr * factor) for factor in SWEEP]
    earlier = earlier_runs(args.reuse)

    def result_of(job):
        preset, limit, epochs, lr = job
        rate = lr if lr is not None else default_lr(preset, limit, epochs)
        reused = earlier.get(run_key(preset, limit, epochs, rate))
        return dict(reused, reused=True) if reused else run_cell(*job, args.data_dir)

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(result_of, jobs))
    runs = [dict(zip(("preset", "limit", "epochs", "swept_lr"), job), **result)
            for job, result in zip(jobs, results)]
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return report(runs, presets, budgets)


def run_key(preset: str, limit: int, epochs: int, lr: float) -> tuple:
    return preset, limit, epochs, f"{lr:.4g}"


def earlier_runs(path: str | None) -> dict[tuple, dict]:
    if path is None:
        return {}
    runs = json.loads(Path(path).read_text())
    return {run_key(r["preset"], r["limit"], r["epochs"], r["lr"]):
            {k: r[k] for k in ("accuracy", "learned", "seconds", "batch_size", "lr")}
            for r in runs if "accuracy" in r}


def report(runs: list[dict], presets: list[str], budgets: list[tuple[int, int]]) -> int:
    print("| preset | " + " | ".join(f"{n:,} x {e} (default / sweep best at lr)"
                                     for n, e in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    failures = []
    for preset in presets:
        cells = []
        for limit, epochs in budgets:
            cell = [r for r in runs if (r["preset"], r["limit"], r["epochs"])
                    == (preset, limit, epochs)]
            default = next(r for r in cell if r["swept_lr"] is None)
            if "error" in default:
                cells.append(f"error: {default['error']}")
                failures.append(f"{preset} {limit}x{epochs}: {default['error']}")
                continue
            best = max((r for r in cell if "accuracy" in r), key=lambda r: r["accuracy"])
            acc, best_acc = 100 * default["accuracy"], 100 * best["accuracy"]
            cells.append(f"**{acc:.1f} %** (b{default['batch_size']}, lr {default['lr']:.3g}, "
                         f"{default['seconds']:.0f} s) / {best_acc:.1f} % at lr "
                         f"{best['lr']:.3g}")
            if default["accuracy"] <= 1.5 * CHANCE:
                failures.append(f"{preset} {limit}x{epochs} is at chance ({acc:.1f} %)")
            if best_acc - acc > MARGIN_POINTS:
                failures.append(f"{preset} {limit}x{epochs}: {acc:.1f} % is more than "
                                f"{MARGIN_POINTS:g} points below the sweep's {best_acc:.1f} %")
            if (preset, (limit, epochs)) == TARGET[:2] and default["accuracy"] < TARGET[2]:
                failures.append(f"{preset} {limit}x{epochs}: {acc:.1f} % < "
                                f"{100 * TARGET[2]:.0f} %")
        print(f"| {preset} | " + " | ".join(cells) + " |")
    print()
    print("targets met" if not failures else "targets missed:\n  " + "\n  ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
