"""Benchmark: training throughput on 1 process against N processes (``resnet-gui train --nproc``).

Weak scaling, as the issue asks: each process keeps a batch of ``--per-process-batch`` (128 by
default), so N processes train a global batch N times as large. The figure is the run's
examples/s over the timed steps (rank 0's clock: it waits for the others at every step), and
the scaling efficiency is ``throughput(N) / (N x throughput(1))``; the target on GPUs is
>= 90 % per added GPU on d2l-resnet18 at 96 px.

On a CPU each process gets one core (``--threads 1``), as on GPUs each gets one GPU: 1 process
on 1 core against N processes on N cores, talking gloo. That is the CPU's analogue of the GPU
figure, not a speed-up over one process using every core through its threads; and cores share
memory bandwidth and caches as GPUs do not. Run it on a machine with N GPUs for the real figure.

The sides alternate, repeated; medians are printed. Usage:

    python benchmarks/bench_ddp.py [--nproc N] [--steps 20] [--repeats 3] [--data-dir DIR]
        [--arch d2l-resnet18] [--resize 96] [--per-process-batch 128] [-- more train options]
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


def throughput(processes: int, args: argparse.Namespace) -> tuple[float, str]:
    """examples/s of one ``resnet-gui train`` run on ``processes`` processes, and the line
    that says where it trained."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.jsonl"
        command = [sys.executable, "-m", "resnet_gui", "train", args.arch,
                   "--resize", str(args.resize), "--batch-size",
                   str(args.per_process_batch * processes), "--max-steps", str(args.steps),
                   "--epochs", "100", "--limit-test", str(8 * processes), "--log", str(log),
                   "--no-progress", *args.extra]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        if processes > 1:
            command += ["--nproc", str(processes)]
        if not args.gpus and "--threads" not in args.extra:
            command += ["--threads", "1"]  # one core per process, as one GPU per process
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"resnet-gui train on {processes} processes failed:\n"
                             f"{result.stderr}")
        end = json.loads(log.read_text().splitlines()[-1])
    where = next((line for line in result.stderr.splitlines() if line.startswith("training on")),
                 "")
    return end["examples_per_sec"], where


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=None,
                        help="processes of the distributed side (default: the GPUs, else 2)")
    parser.add_argument("--steps", type=int, default=20, help="steps per run (2 are warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arch", default="d2l-resnet18")
    parser.add_argument("--resize", type=int, default=96)
    parser.add_argument("--per-process-batch", type=int, default=128)
    parser.add_argument("--data-dir", default=None,
                        help="folder holding FashionMNIST/ (default: resnet-gui's own lookup)")
    parser.add_argument("extra", nargs="*", help="after --: more options for resnet-gui train")
    args = parser.parse_args()
    args.gpus = 0 if "cpu" in args.extra else gpu_count()  # -- --device cpu: CPU processes
    count = args.nproc or (args.gpus if args.gpus > 1 else 2)

    devices = f"{args.gpus} GPUs" if args.gpus else "one CPU core per process"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {args.arch} at "
          f"{args.resize} px, batch {args.per_process_batch} per process, {devices}; 1 against "
          f"{count} processes, {args.repeats} x {args.steps} steps", flush=True)
    single, several, efficiency = [], [], []
    places = {}
    for repeat in range(args.repeats):
        order = (1, count) if repeat % 2 == 0 else (count, 1)
        figures = {}
        for processes in order:
            figures[processes], places[processes] = throughput(processes, args)
        single.append(figures[1])
        several.append(figures[count])
        efficiency.append(figures[count] / (count * figures[1]))
        print(f"repeat {repeat + 1}/{args.repeats}: 1 process {figures[1]:.1f} examples/s, "
              f"{count} processes {figures[count]:.1f} examples/s, scaling efficiency "
              f"{100 * efficiency[-1]:.0f} % (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"1 process: {places[1]}")
    print(f"{count} processes: {places[count]}")
    print(f"1 process: {statistics.median(single):.1f} examples/s (median)")
    print(f"{count} processes: {statistics.median(several):.1f} examples/s (median)")
    print(f"speed-up {statistics.median(several) / statistics.median(single):.2f}x; scaling "
          f"efficiency {100 * statistics.median(efficiency):.0f} % (median of per-repeat "
          "ratios; target on GPUs >= 90 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
