"""``resnet-gui lab degradation|lesion|landscape``: the residual lab from the command line.

Each experiment prints a progress bar on stderr, a readable summary on stdout, and writes its
full result as JSON (``--json OUT``, written atomically).
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from pathlib import Path
from typing import Any

from resnet_gui.commands.paths import file_to_read, file_to_write
from resnet_gui.commands.stopping import StopOnSignal
from resnet_gui.commands.train import check_threads
from resnet_gui.arch.lab import LAB_RECIPE, check_depths
from resnet_gui.arch.recipe import DATASETS, PRECISIONS, validate_recipe
from resnet_gui.errors import UserError

CHECKPOINT_WHAT = "a checkpoint written by resnet-gui train --checkpoint"
DEFAULT_LESION_IMAGES = 2000
DEFAULT_LANDSCAPE_IMAGES = 1000


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lab", help="experiments that show why residual connections work",
        description="The residual lab: degradation (He et al. 2015), lesion study (Veit et "
        "al. 2016) and loss landscape (Li et al. 2018).")
    experiments = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    experiments.required = True
    _add_degradation(experiments)
    _add_lesion(experiments)
    _add_landscape(experiments)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, metavar="OUT",
                        help="write the full result here as JSON")
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding the datasets")
    parser.add_argument("--device", metavar="DEVICE", help="auto|cpu|cuda|cuda:N|mps")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_degradation(experiments: argparse._SubParsersAction) -> None:
    parser = experiments.add_parser(
        "degradation", help="train ResNet-d and plain-d side by side (He et al. 2015)",
        description="Train ResNet-d and its plain twin (no shortcuts) for each depth with one "
        "recipe and seed, print depth, kind, parameters, final training and test error, and "
        f"write the curves. Default budget: {LAB_RECIPE.limit_train:,} training images, "
        f"{LAB_RECIPE.epochs} epochs.")
    parser.add_argument("--depths", default="20,56", metavar="D,D,...",
                        help="CIFAR depths 6n+2: 20, 32, 44, 56, 110 (default 20,56)")
    parser.add_argument("--dataset", metavar="NAME",
                        help=f"{'|'.join(DATASETS)}|folder:PATH (default fashion-mnist)")
    parser.add_argument("--epochs", type=int, metavar="N")
    parser.add_argument("--limit-train", type=int, metavar="N",
                        help="training images (class-balanced)")
    parser.add_argument("--limit-test", type=int, metavar="N", help="test images")
    parser.add_argument("--seed", type=int, metavar="S")
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="save each trained network in DIR as NAME.pt (resnet20.pt, "
                        "plain20.pt, ...) for 'lab lesion' and 'lab landscape'")
    _add_common(parser)
    parser.set_defaults(func=run_degradation_command)


def _add_checkpoint_options(parser: argparse.ArgumentParser, images: int) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help=CHECKPOINT_WHAT)
    parser.add_argument("--images", type=int, default=images, metavar="N",
                        help=f"test images, class-balanced (default {images:,})")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the random choices (default 0)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 where the device runs it natively")
    _add_common(parser)


def _add_lesion(experiments: argparse._SubParsersAction) -> None:
    parser = experiments.add_parser(
        "lesion", help="delete or reorder blocks of a trained network (Veit et al. 2016)",
        description="Test accuracy of a trained network, intact, with each block's residual "
        "branch deleted, with k random blocks deleted, and with blocks reordered; and how "
        "much gradient the paths of each length carry. No retraining.")
    _add_checkpoint_options(parser, DEFAULT_LESION_IMAGES)
    parser.add_argument("--draws", type=int, default=10, metavar="D",
                        help="random sets of blocks per k (default 10)")
    parser.add_argument("--path-samples", type=int, default=8, metavar="N",
                        help="paths sampled per length for the gradient (default 8)")
    parser.set_defaults(func=run_lesion_command)


def _add_landscape(experiments: argparse._SubParsersAction) -> None:
    parser = experiments.add_parser(
        "landscape", help="the loss around a trained network (Li et al. 2018)",
        description="Loss and accuracy at theta + a*delta + b*eta over a GxG grid of "
        "-span..span, with seeded random directions normalised filter by filter, and a 1-D "
        "slice along delta.")
    _add_checkpoint_options(parser, DEFAULT_LANDSCAPE_IMAGES)
    parser.add_argument("--grid", type=int, default=21, metavar="G",
                        help="points a side, odd (default 21)")
    parser.add_argument("--span", type=float, default=1.0, metavar="S",
                        help="the grid covers -S..S along each direction (default 1)")
    parser.set_defaults(func=run_landscape_command)


# -- shared pieces ------------------------------------------------------------------------------


class ProgressBar:
    """tqdm over an experiment's units of work, with what is being done as its postfix."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __call__(self, progress) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=progress.total, unit=_unit(progress.experiment),
                            dynamic_ncols=True, file=sys.stderr,
                            disable=not self.enabled or None, leave=True)
        self.bar.n = progress.done
        self.bar.set_postfix_str(progress.message[:60], refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _unit(experiment: str) -> str:
    return "step" if experiment == "degradation" else "eval"


def _check_positive(option: str, value: int | None, example: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"{option} must be a whole number >= 1, got {value}; for example "
                        f"{option} {example}")


def _prepare(args: argparse.Namespace) -> None:
    check_threads(args.threads)
    file_to_write("--json", args.json, "result.json")
    if getattr(args, "checkpoint", None):
        file_to_read("CHECKPOINT", args.checkpoint, "model.pt", CHECKPOINT_WHAT)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)


def _run(experiment, args: argparse.Namespace, **kwargs: Any):
    """Run ``experiment`` with a progress bar; Ctrl-C (or SIGTERM, SIGHUP) stops it and keeps
    what it measured; the exit code is then 128 + the signal's number."""
    bar = ProgressBar(enabled=not args.no_progress)
    stop = threading.Event()

    class _Stopper:  # what StopOnSignal asks of a trainer
        def request_stop(self) -> None:
            stop.set()

    try:
        with StopOnSignal() as interrupt:
            interrupt.trainer = _Stopper()
            result = experiment(progress=bar, stop=stop, **kwargs)
    finally:
        bar.close()
    result.save(args.json)
    if result.stopped:
        print(f"resnet-gui: stopped; the {args.json} holds what was measured",
              file=sys.stderr)
    return result, interrupt.exit_code


def _percent(value: float) -> str:
    return f"{100 * value:6.2f} %" if math.isfinite(value) else "     n/a"


def _load_checkpoint_and_images(args: argparse.Namespace):
    from resnet_gui.engine.lab.common import prepare_checkpoint

    _check_positive("--images", args.images, "1000")
    print(f"resnet-gui: loading {args.checkpoint} and its test images...", file=sys.stderr)
    trained, evalset = prepare_checkpoint(args.checkpoint, args.data_dir, args.images,
                                          args.device or "auto", args.precision, args.seed)
    if evalset.count < args.images:
        print(f"resnet-gui: note: the test set has {evalset.count:,} images; using all of "
              "them", file=sys.stderr)
    return trained, evalset


# -- degradation --------------------------------------------------------------------------------


def parse_depths(text: str) -> list[int]:
    try:
        depths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        depths = []
    if not depths:
        raise UserError(f"--depths must be whole numbers separated by commas, such as 20,56; "
                        f"got {text!r}")
    return depths


def degradation_recipe(args: argparse.Namespace):
    for option in ("epochs", "limit_train", "limit_test"):
        _check_positive(f"--{option.replace('_', '-')}", getattr(args, option), "1000")
    changes = {name: getattr(args, name) for name in
               ("dataset", "data_dir", "epochs", "limit_train", "limit_test", "seed", "device")
               if getattr(args, name) is not None}
    return validate_recipe(LAB_RECIPE.replace(**changes))


def check_checkpoint_folder(folder: str, depths: list[int]) -> None:
    """Refuse, before training, a folder that cannot take the checkpoints, or one holding a
    file of the same name that is not a resnet-gui checkpoint (never replaced)."""
    from resnet_gui.engine.checkpoint import load_checkpoint

    if Path(folder).is_file():
        raise UserError(f"--checkpoints {folder} is a file; give a folder")
    for depth in depths:
        for kind in ("resnet", "plain"):
            path = Path(folder) / f"{kind}{depth}.pt"
            file_to_write("--checkpoints", str(path), path.name)
            if path.exists():
                try:
                    load_checkpoint(path)
                except UserError:
                    raise UserError(f"{path} exists and is not a resnet-gui checkpoint; "
                                    "choose another folder for --checkpoints") from None


def run_degradation_command(args: argparse.Namespace) -> int:
    depths = check_depths(parse_depths(args.depths))
    recipe = degradation_recipe(args)
    _prepare(args)
    if args.checkpoints:
        check_checkpoint_folder(args.checkpoints, depths)
    from resnet_gui.engine.data import load_data
    from resnet_gui.engine.lab.degradation import run_degradation

    print(f"resnet-gui: loading {recipe.dataset}...", file=sys.stderr)
    data = load_data(recipe)
    if data.notice:
        print(f"resnet-gui: note: {data.notice}", file=sys.stderr)
    print(f"resnet-gui: {len(depths) * 2} runs on {data.num_train:,} training and "
          f"{data.num_test:,} test images of {data.name}, {recipe.epochs} epoch(s), seed "
          f"{recipe.seed}", file=sys.stderr)
    result, code = _run(run_degradation, args, data=data, depths=depths, recipe=recipe,
                        checkpoint_dir=args.checkpoints)
    print_degradation(result)
    return code


def print_degradation(result) -> None:
    print(f"{'depth':>5}  {'kind':<6}  {'network':<9}  {'parameters':>10}  "
          f"{'train error':>11}  {'test error':>10}  {'CPU s':>7}  {'wall s':>7}  reference")
    for run in result.runs:
        reference = result.reference_test_error.get(run.depth) if run.kind == "resnet" else None
        note = f"{reference:.2f} % (He et al. Table 6, CIFAR-10)" if reference else ""
        if run.reason != "completed":
            note = f"{run.reason}: {run.message}" if run.message else run.reason
        print(f"{run.depth:>5}  {('ResNet' if run.kind == 'resnet' else 'plain'):<6}  "
              f"{run.network:<9}  {run.parameters:>10,}  {_percent(run.final_train_error):>11}"
              f"  {_percent(run.final_test_error):>10}  {run.cpu_seconds:>7.0f}  "
              f"{run.seconds:>7.0f}  {note}")
    for sentence in result.findings():
        print(sentence)
    saved = [run.checkpoint for run in result.runs if run.checkpoint]
    if saved:
        print(f"checkpoints: {', '.join(saved)}")
    print(f"total: {result.seconds:.0f} s wall, {result.cpu_seconds:.0f} CPU-seconds")


# -- lesion -------------------------------------------------------------------------------------


def run_lesion_command(args: argparse.Namespace) -> int:
    _check_positive("--draws", args.draws, "10")
    _check_positive("--path-samples", args.path_samples, "8")
    _prepare(args)
    from resnet_gui.engine.lab.lesion import run_lesion

    trained, evalset = _load_checkpoint_and_images(args)
    result, code = _run(run_lesion, args, model=trained.model, evalset=evalset,
                        draws=args.draws, seed=args.seed, network=trained.arch.name,
                        path_samples=args.path_samples)
    print_lesion(result)
    return code


def print_lesion(result) -> None:
    print(f"{result.network} on {result.images:,} test images ({result.precision}): intact "
          f"accuracy {_percent(result.baseline_accuracy).strip()}, chance "
          f"{_percent(result.chance).strip()}")
    print(f"{'block':<10} {'deleted: accuracy':>18} {'change':>9}")
    for block in result.blocks:
        kind = " (downsampling)" if block.downsampling else ""
        if block.stand_in:
            kind = " (downsampling; subsample-and-pad stand-in)"
        print(f"{block.name:<10} {_percent(block.accuracy):>18} "
              f"{100 * (block.accuracy - result.baseline_accuracy):>+8.2f}{kind}")
    if result.delete_k:
        print(f"{'k deleted':>9} {'mean accuracy':>14} {'std':>7}")
        for row in result.delete_k:
            print(f"{row.k:>9} {_percent(row.mean_accuracy):>14} {100 * row.std:>6.2f}")
    if result.reorder:
        print(f"{'swaps':>5} {'Kendall tau':>11} {'accuracy':>9}")
        for row in result.reorder:
            print(f"{row.swaps:>5} {row.kendall_tau:>11.3f} {_percent(row.accuracy):>9}")
    paths = result.path_lengths
    if paths is not None and paths.effective:
        print(f"paths: 2^{paths.n}, lengths Binomial({paths.n}, 1/2) with mean {paths.n / 2:g}; "
              f"{100 * 0.9:.0f} % of the gradient flows along paths of {paths.effective[0]} "
              f"to {paths.effective[1]} blocks")
    elif result.plain:
        print("a plain network has one path through every block")
    print(f"{result.evaluations} evaluations, {result.seconds:.0f} s wall, "
          f"{result.cpu_seconds:.0f} CPU-seconds")


# -- landscape ----------------------------------------------------------------------------------


def run_landscape_command(args: argparse.Namespace) -> int:
    from resnet_gui.engine.lab.landscape import check_grid, run_landscape

    check_grid(args.grid, args.span)
    _prepare(args)
    trained, evalset = _load_checkpoint_and_images(args)
    result, code = _run(run_landscape, args, model=trained.model, evalset=evalset,
                        grid=args.grid, span=args.span, seed=args.seed,
                        network=trained.arch.name)
    print_landscape(result)
    return code


def print_landscape(result) -> None:
    import numpy as np

    loss = np.array(result.loss, dtype=float)
    print(f"{result.network} on {result.images:,} test images ({result.precision}), "
          f"{len(result.alpha)}x{len(result.beta)} grid over -{result.span:g}..{result.span:g}")
    print(f"centre (the trained network): loss {result.centre_loss:.4f}, accuracy "
          f"{_percent(result.centre_accuracy).strip()}; fp32 without folding: loss "
          f"{result.checkpoint_loss:.4f}, accuracy {_percent(result.checkpoint_accuracy).strip()}")
    if np.isfinite(loss).any():
        print(f"loss over the grid: {np.nanmin(loss):.4f} to {np.nanmax(loss):.4g}; at the "
              f"corners {', '.join(f'{v:.3g}' for v in loss[[0, 0, -1, -1], [0, -1, 0, -1]])}")
    print("1-D slice along delta (beta = 0):")
    for a, value, accuracy in list(zip(result.slice_alpha, result.slice_loss,
                                       result.slice_accuracy))[::2]:
        print(f"  {a:+6.2f}  loss {value:10.4g}  accuracy {_percent(accuracy)}")
    print(f"{result.evaluations} evaluations, {result.seconds:.0f} s wall, "
          f"{result.cpu_seconds:.0f} CPU-seconds")
