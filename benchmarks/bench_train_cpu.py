"""Benchmark 1: the chapter's train_ch6 loop against `resnet-gui train`, same settings, same CPU.

Same network (d2l-resnet18), batch (128), input (Fashion-MNIST resized to 96) and optimizer
(SGD, lr 0.05, no momentum, Xavier initialisation). The chapter's side is
benchmarks/chapter_loop.py (DataLoader with per-sample Resize + ToTensor, float32, contiguous
tensors), run as its own process the way the chapter runs; ours is ``resnet-gui train
d2l-resnet18 --recipe chapter --precision auto --channels-last``, i.e. the chapter's settings
with resnet-gui's defaults for the device (in-memory uint8 batches resized as a batch,
channels_last, bf16 autocast where the CPU has native bf16, OpenMP threads that sleep rather
than spin while waiting).

Both are timed by wall clock over steps 3..N (the first two are warm-up), data loading waits
included, evaluation excluded. The two alternate, repeated; the medians and the median of the
per-repeat ratios are printed. Usage:

    python benchmarks/bench_train_cpu.py [--data-dir ../shared/data] [--steps 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def chapter_examples_per_sec(data_dir: str, steps: int, batch: int, resize: int) -> float:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "chapter_loop.py"), "--data-dir", data_dir,
         "--steps", str(steps), "--batch-size", str(batch), "--resize", str(resize)],
        cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["examples_per_sec"]


def ours_examples_per_sec(data_dir: str, steps: int, batch: int, resize: int,
                          extra: list[str]) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.jsonl"
        result = subprocess.run(
            [sys.executable, "-m", "resnet_gui", "train", "d2l-resnet18", "--recipe", "chapter",
             "--precision", "auto", "--channels-last", "--data-dir", data_dir,
             "--batch-size", str(batch), "--resize", str(resize), "--max-steps", str(steps),
             "--limit-test", "256", "--log", str(log), "--no-progress", *extra],
            cwd=REPO, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"resnet-gui train failed:\n{result.stderr}")
        end = json.loads(log.read_text().splitlines()[-1])
    device_line = next((line for line in result.stderr.splitlines()
                        if line.startswith("training on")), "")
    return end["examples_per_sec"], device_line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=40, help="steps per repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--resize", type=int, default=96)
    parser.add_argument("extra", nargs="*", help="after --: more options for resnet-gui train")
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.repeats} x {args.steps} steps per side", flush=True)
    chapter, ours, ratios, described = [], [], [], ""
    for repeat in range(args.repeats):
        order = ("chapter", "ours") if repeat % 2 == 0 else ("ours", "chapter")
        figures = {}
        for side in order:
            if side == "chapter":
                figures[side] = chapter_examples_per_sec(args.data_dir, args.steps,
                                                         args.batch_size, args.resize)
            else:
                figures[side], described = ours_examples_per_sec(
                    args.data_dir, args.steps, args.batch_size, args.resize, args.extra)
        chapter.append(figures["chapter"])
        ours.append(figures["ours"])
        ratios.append(figures["ours"] / figures["chapter"])
        print(f"repeat {repeat + 1}/{args.repeats}: chapter {figures['chapter']:.1f} "
              f"examples/s, ours {figures['ours']:.1f} examples/s, ratio {ratios[-1]:.2f}x "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"ours: {described}")
    print(f"chapter train_ch6 loop: {statistics.median(chapter):.1f} examples/s (median)")
    print(f"resnet-gui train: {statistics.median(ours):.1f} examples/s (median)")
    print(f"speed-up: {statistics.median(ratios):.2f}x (median of per-repeat ratios; "
          "target >= 2.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
