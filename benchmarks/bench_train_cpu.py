"""Benchmark 1: the chapter's train_ch6 loop against resnet-gui's trainer, same run, same CPU.

Same network (d2l-resnet18), batch (128), input (Fashion-MNIST resized to 96) and optimizer
(SGD, lr 0.05). The chapter's side is benchmarks/chapter_loop.py (DataLoader with per-sample
Resize + ToTensor, float32, contiguous tensors); ours is the trainer behind ``resnet-gui
train d2l-resnet18 --recipe chapter`` with the device defaults (``--precision auto
--channels-last``: in-memory uint8 batches resized as a batch).

Both sides are timed by wall clock over steps 3..N (the first two are warm-up), data loading
waits included and evaluation excluded. The two alternate, repeated; medians and the ratio are
printed. Usage:

    python benchmarks/bench_train_cpu.py [--data-dir ../shared/data] [--steps 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402

import chapter_loop  # noqa: E402
from resnet_gui.engine.data import load_data  # noqa: E402
from resnet_gui.engine.trainer import Trainer  # noqa: E402
from resnet_gui.spec.presets import build_preset  # noqa: E402
from resnet_gui.spec.recipe import CHAPTER_RECIPE  # noqa: E402

WARMUP = 2


def chapter_examples_per_sec(data_dir: str, steps: int, batch: int, resize: int) -> float:
    train_iter, test_iter = chapter_loop.load_data_fashion_mnist(batch, resize=resize,
                                                                 root=data_dir)
    marks: list[tuple[float, int]] = []
    chapter_loop.train_ch6(chapter_loop.make_net(), train_iter, test_iter, 1, 0.05,
                           device=torch.device("cpu"), max_steps=steps, evaluate=False,
                           on_step=lambda step, n: marks.append((time.perf_counter(), n)))
    timed = marks[WARMUP:]
    examples = sum(n for _, n in timed[1:])
    return examples / (timed[-1][0] - timed[0][0])


def ours_examples_per_sec(data, data_dir: str, steps: int, batch: int, resize: int,
                          precision: str, channels_last: bool) -> tuple[float, str]:
    recipe = CHAPTER_RECIPE.replace(data_dir=data_dir, batch_size=batch, resize=resize,
                                    max_steps=steps, epochs=1, precision=precision,
                                    channels_last=channels_last, device="cpu")
    arch = build_preset("d2l-resnet18", in_channels=1, num_classes=10, input_size=resize)
    trainer = Trainer(arch, recipe, data=data)
    end = trainer.run()
    return end.examples_per_sec, trainer.placement.precision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=40, help="steps per repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--resize", type=int, default=96)
    parser.add_argument("--precision", default="auto", help="ours: auto|fp32|bf16")
    parser.add_argument("--no-channels-last", action="store_true")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    # Ours evaluates at the end of a bounded run; a small test set keeps that short (it is
    # not timed either way).
    data = load_data(CHAPTER_RECIPE.replace(data_dir=args.data_dir, limit_test=256))
    chapter, ours, ratios = [], [], []
    precision = args.precision
    for repeat in range(args.repeats):
        order = ("chapter", "ours") if repeat % 2 == 0 else ("ours", "chapter")
        figures = {}
        for side in order:
            if side == "chapter":
                figures[side] = chapter_examples_per_sec(args.data_dir, args.steps,
                                                         args.batch_size, args.resize)
            else:
                figures[side], precision = ours_examples_per_sec(
                    data, args.data_dir, args.steps, args.batch_size, args.resize,
                    args.precision, not args.no_channels_last)
        chapter.append(figures["chapter"])
        ours.append(figures["ours"])
        ratios.append(figures["ours"] / figures["chapter"])
        print(f"repeat {repeat + 1}/{args.repeats}: chapter {figures['chapter']:.1f} "
              f"examples/s, ours {figures['ours']:.1f} examples/s, ratio "
              f"{ratios[-1]:.2f}x (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"chapter train_ch6 loop: {statistics.median(chapter):.1f} examples/s (median of "
          f"{args.repeats} x {args.steps} steps)")
    print(f"resnet-gui trainer ({precision}, "
          f"{'contiguous' if args.no_channels_last else 'channels_last'}): "
          f"{statistics.median(ours):.1f} examples/s")
    print(f"speed-up: {statistics.median(ratios):.2f}x (median of per-repeat ratios; target "
          ">= 2.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
