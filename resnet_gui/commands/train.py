"""``resnet-gui train ARCH``: train from the command line with a progress bar.

Ctrl-C stops at the next batch and saves the checkpoint (a second Ctrl-C aborts at once);
``--log`` writes one JSON object per line (``"event": "start" | "step" | "telemetry" |
"epoch" | "end"``). On several processes (``--nproc N``, or under torchrun) see
:mod:`resnet_gui.commands.distributed`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from typing import Any, TextIO

from resnet_gui.commands import control, distributed
from resnet_gui.commands.paths import file_to_read, file_to_write
from resnet_gui.errors import UserError
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.resolve import is_checkpoint_file, resolve_architecture
from resnet_gui.arch.numbers import json_value
from resnet_gui.arch.recipe import (
    DATASETS,
    DEVICES,
    IMAGENET_WEIGHTS,
    INITS,
    OPTIMIZERS,
    PRECISIONS,
    RECIPE_PRESETS,
    SCHEDULES,
    Recipe,
    get_recipe,
    validate_recipe,
    with_input_size,
)

# Command-line option -> recipe field, for options that override the recipe when given.
PLAN_OPTIONS = {
    "dataset": "dataset", "epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
    "optimizer": "optimizer", "momentum": "momentum", "nesterov": "nesterov",
    "weight_decay": "weight_decay", "schedule": "schedule", "warmup_epochs": "warmup_epochs",
    "label_smoothing": "label_smoothing", "grad_clip": "grad_clip", "init": "init",
    "zero_init_last": "zero_init_last", "resize": "resize", "augment": "augment",
    "crop_padding": "crop_padding",
    "limit_train": "limit_train", "limit_test": "limit_test", "seed": "seed",
    "weights": "weights", "freeze": "freeze", "pretrained_lr_scale": "pretrained_lr_scale",
}
MACHINE_OPTIONS = {
    "data_dir": "data_dir", "device": "device", "precision": "precision",
    "channels_last": "channels_last", "compile": "compile", "max_steps": "max_steps",
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train an architecture on a dataset",
        description="Train ARCH (a preset name, an architecture JSON file, or a checkpoint: a "
        "new run of its architecture and plan) with a progress bar. Ctrl-C stops after saving "
        "the checkpoint. Options left out come from --recipe (default: the recipe named like "
        "the architecture, else the library defaults).",
    )
    parser.add_argument("arch", nargs="?", metavar="ARCH",
                        help="preset name, architecture JSON or checkpoint (optional with "
                        "--resume)")
    parser.add_argument("--recipe", choices=sorted(RECIPE_PRESETS),
                        help="start from a named recipe (chapter: the D2L chapter's settings)")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", metavar="NAME",
                      help=f"{'|'.join(DATASETS)}|folder:PATH (default fashion-mnist)")
    data.add_argument("--data-dir", metavar="DIR",
                      help="folder holding the datasets (default: $RESNET_GUI_DATA, else the "
                      "per-user data folder)")
    data.add_argument("--resize", type=int, metavar="S", help="resize images to SxS")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                      help="random crop with padding and horizontal flip")
    data.add_argument("--crop-padding", type=int, metavar="P",
                      help="padding of the random crop (0: flips only; default 1/8 of the side)")
    data.add_argument("--limit-train", type=int, metavar="N",
                      help="use N training images (class-balanced)")
    data.add_argument("--limit-test", type=int, metavar="N", help="use N test images")
    plan = parser.add_argument_group("plan")
    plan.add_argument("--epochs", type=int, metavar="N")
    plan.add_argument("--batch-size", type=int, metavar="B")
    plan.add_argument("--lr", type=float, metavar="LR", help="(peak) learning rate")
    plan.add_argument("--optimizer", choices=OPTIMIZERS)
    plan.add_argument("--momentum", type=float)
    plan.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    plan.add_argument("--weight-decay", type=float, metavar="WD")
    plan.add_argument("--schedule", choices=SCHEDULES)
    plan.add_argument("--warmup-epochs", type=float, metavar="E")
    plan.add_argument("--label-smoothing", type=float, metavar="EPS")
    plan.add_argument("--grad-clip", type=float, metavar="NORM")
    plan.add_argument("--init", choices=INITS)
    plan.add_argument("--zero-init-last", action=argparse.BooleanOptionalAction, default=None,
                      help="start each residual branch at zero")
    plan.add_argument("--seed", type=int, metavar="S", help="makes a CPU run repeatable")
    start = parser.add_argument_group("starting weights (fine-tuning)")
    start.add_argument("--weights", metavar="imagenet|FILE",
                       help="start from torchvision's ImageNet weights (resnet18/34/50/101/152; "
                       "from torch hub's cache, else downloaded there) or from a state dict "
                       "or resnet-gui checkpoint; a new head is made for the dataset's classes")
    start.add_argument("--freeze", metavar="STAGE",
                       help="keep the stem and the stages up to STAGE (stem, layer1, layer2, "
                       "...) fixed, their batch norms in eval mode")
    start.add_argument("--pretrained-lr-scale", type=float, metavar="F",
                       help="the pretrained layers learn at F times --lr (default 0.1; the "
                       "new head at --lr)")
    machine = parser.add_argument_group("machine")
    machine.add_argument("--device", metavar="DEVICE", help=f"{'|'.join(DEVICES)}|cuda:N")
    machine.add_argument("--precision", choices=PRECISIONS)
    machine.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    machine.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                         help="torch.compile the network (slow start, faster steps on GPUs)")
    machine.add_argument("--threads", type=int, metavar="N",
                         help="CPU threads for torch (default: one per core; fewer can be "
                         "faster when other programs keep the cores busy)")
    machine.add_argument("--telemetry-every", type=int, metavar="N",
                         help="record each residual block's statistics (||F(x)||/||x||, "
                         "cosine, gradient and weight norms) every N steps; 0: off "
                         "(default 50)")
    machine.add_argument("--max-steps", type=int, metavar="N",
                         help="end after N optimizer steps as Stop would (the plan still "
                         "spans --epochs)")
    distributed.add_options(machine)
    output = parser.add_argument_group("output")
    output.add_argument("--checkpoint", metavar="PATH",
                        help="save a checkpoint here at each epoch end and on stop (default "
                        "with --resume: the resumed checkpoint, so the run keeps saving where "
                        "it came from)")
    output.add_argument("--resume", metavar="PATH",
                        help="continue the run of this checkpoint, saving back to it unless "
                        "--checkpoint names another file")
    output.add_argument("--log", metavar="FILE.jsonl", help="write events as JSON lines")
    output.add_argument("--tensorboard", metavar="DIR",
                        help="write loss, accuracy, learning rate and examples/s as "
                        "TensorBoard event files in DIR (needs tensorboardX)")
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    output.add_argument("--control", action="store_true",
                        help="read pause, resume and stop from standard input, one a line "
                        "(for a program that runs this command, such as the window)")
    parser.set_defaults(func=run_train)
    return parser


def base_recipe(args: argparse.Namespace, arch_name: str | None) -> Recipe:
    if args.recipe:
        return get_recipe(args.recipe)
    if arch_name in RECIPE_PRESETS:
        return RECIPE_PRESETS[arch_name]
    return Recipe()


def new_run_start(args: argparse.Namespace) -> tuple[Architecture, Recipe]:
    """The architecture and base recipe of a new run. A checkpoint as ARCH gives its own
    architecture and plan, from random weights unless --weights says otherwise: the
    from-scratch side of a comparison with a grown network."""
    if not is_checkpoint_file(args.arch):
        return resolve_architecture(args.arch), base_recipe(args, args.arch)
    from resnet_gui.engine.checkpoint import checkpoint_architecture, load_checkpoint
    from resnet_gui.engine.trained import checkpoint_recipe

    checkpoint = load_checkpoint(args.arch)
    base = get_recipe(args.recipe) if args.recipe else checkpoint_recipe(
        checkpoint, args.arch).replace(max_steps=None, weights=None, freeze=None)
    print(f"resnet-gui: note: a new run of the architecture and plan of {args.arch}, from "
          f"random weights (--resume {args.arch} continues that run; --weights {args.arch} "
          "starts from its weights)", file=sys.stderr)
    return checkpoint_architecture(checkpoint, args.arch), base


def build_recipe(args: argparse.Namespace, base: Recipe, resuming: bool) -> Recipe:
    """``base`` with the options given on the command line; when resuming, plan options are
    the checkpoint's and only the machine's may change."""
    options = dict(MACHINE_OPTIONS) if resuming else {**PLAN_OPTIONS, **MACHINE_OPTIONS}
    if resuming:
        ignored = [f"--{name.replace('_', '-')}" for name in PLAN_OPTIONS
                   if getattr(args, name) is not None]
        if args.recipe:
            ignored.append("--recipe")
        if ignored:
            print(f"resnet-gui: note: --resume continues the checkpoint's plan; "
                  f"{', '.join(ignored)} ignored", file=sys.stderr)
    changes = {field: getattr(args, option) for option, field in options.items()
               if getattr(args, option) is not None}
    try:
        recipe = base.replace(**changes)
    except TypeError as error:  # pragma: no cover - argparse types prevent this
        raise UserError(str(error)) from None
    return validate_recipe(recipe)


class JsonLog:
    """Trainer callback writing one JSON object per line, flushed as it goes."""

    def __init__(self, path: str, append: bool) -> None:
        try:
            self.handle: TextIO = open(path, "a" if append else "w", encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write the log {path}: {error.strerror}; choose another "
                            "path for --log") from None

    def write(self, record: dict[str, Any]) -> None:
        finite = {key: json_value(value) for key, value in record.items()}
        self.handle.write(json.dumps(finite, allow_nan=False) + "\n")
        self.handle.flush()

    def on_train_start(self, event) -> None:
        self.write({"event": "start", "architecture": event.architecture,
                    "input_shape": list(event.input_shape), "device": event.device,
                    "precision": event.precision, "batch_size": event.batch_size,
                    "epochs": event.epochs, "steps_per_epoch": event.steps_per_epoch,
                    "start_epoch": event.start_epoch, "start_step": event.start_step,
                    "num_train": event.num_train, "num_test": event.num_test,
                    "class_names": list(event.class_names), "recipe": event.recipe,
                    "processes": event.processes})

    def on_batch_end(self, event) -> None:
        self.write({"event": "step", "epoch": event.epoch, "step": event.step,
                    "batch": event.batch, "epoch_progress": event.epoch_progress,
                    "loss": event.loss, "accuracy": event.accuracy, "lr": event.lr,
                    "examples_per_sec": event.examples_per_sec})

    def on_epoch_end(self, event) -> None:
        self.write({"event": "epoch", "epoch": event.epoch, "step": event.step,
                    "train_loss": event.train_loss, "train_acc": event.train_accuracy,
                    "test_loss": event.test_loss, "test_acc": event.test_accuracy,
                    "lr": event.lr, "seconds": event.seconds,
                    "examples_per_sec": event.examples_per_sec,
                    "checkpoint": event.checkpoint})

    def on_train_end(self, event) -> None:
        self.write({"event": "end", "reason": event.reason, "epoch": event.epoch,
                    "step": event.step, "train_loss": event.train_loss,
                    "train_acc": event.train_accuracy, "test_acc": event.test_accuracy,
                    "examples_per_sec": event.examples_per_sec, "seconds": event.seconds,
                    "checkpoint": event.checkpoint, "message": event.message,
                    "learned": event.learned, "verdict": event.verdict})

    def on_telemetry(self, event) -> None:
        self.write({"event": "telemetry", "step": event.step,
                    "epoch_progress": event.epoch_progress,
                    "blocks": [{name: json_value(value) for name, value in vars(block).items()}
                               for block in event.blocks]})

    def on_exception(self, error: BaseException) -> None:
        self.write({"event": "error", "message": str(error) or type(error).__name__})

    def on_notice(self, message: str) -> None: ...

    def close(self) -> None:
        self.handle.close()


class ProgressBar:
    """tqdm over optimizer steps: loss, accuracy, examples/s and ETA; one line per epoch."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.done = 0
        self.epochs = 0

    def _write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)

    def on_train_start(self, event) -> None:
        from tqdm import tqdm

        self.epochs = event.epochs
        self.done = event.start_step
        where = event.device if event.processes == 1 else \
            f"{event.processes} {event.device.split(':')[0]} processes"
        self._write(f"training on {where} ({event.precision}), {event.num_train:,} "
                    f"training and {event.num_test:,} test images of "
                    f"{'x'.join(map(str, event.input_shape))}, batch {event.batch_size}, "
                    f"{event.epochs} epochs of {event.steps_per_epoch} steps")
        self.bar = tqdm(total=event.total_steps, initial=event.start_step, unit="step",
                        dynamic_ncols=True, file=sys.stderr,
                        disable=not self.enabled or None, leave=True)

    def on_batch_end(self, event) -> None:
        if self.bar is None:
            return
        self.bar.update(max(0, event.step - self.done))
        self.done = event.step
        speed = event.examples_per_sec
        self.bar.set_postfix_str(
            f"epoch {event.epoch + 1}/{self.epochs} loss {event.loss:.3f} "
            f"acc {event.accuracy:.3f}"
            + (f" {speed:,.0f} ex/s" if math.isfinite(speed) else ""), refresh=False)

    def on_epoch_end(self, event) -> None:
        self._write(f"epoch {event.epoch + 1}/{self.epochs}: train loss {event.train_loss:.4f} "
                    f"acc {event.train_accuracy:.4f}, test loss {event.test_loss:.4f} "
                    f"acc {event.test_accuracy:.4f}, {event.seconds:.1f} s, "
                    f"{_speed(event.examples_per_sec)}")

    def on_train_end(self, event) -> None:
        self.close()

    def on_exception(self, error: BaseException) -> None:
        self.close()

    def on_notice(self, message: str) -> None:
        self._write(f"resnet-gui: note: {message}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _StopOnInterrupt:
    """First Ctrl-C: stop after this batch and save; a second one aborts at once."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.interrupted = False
        self.previous = None

    def __enter__(self) -> "_StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print("\nresnet-gui: stopping after this batch and saving (Ctrl-C again aborts)",
              file=sys.stderr)
        self.trainer.request_stop()

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def check_threads(threads: int | None) -> None:
    """Between 1 and the machine's cores: far more threads than cores crash OpenMP."""
    cores = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cores:
        raise UserError(f"--threads must be between 1 and {cores} (the CPU cores of this "
                        f"machine), got {threads}; leave it out to use one per core")


def check_telemetry_every(every: int | None) -> None:
    if every is not None and every < 0:
        raise UserError(f"--telemetry-every must be 0 (no telemetry) or a number of steps, "
                        f"got {every}")


def check_paths(args: argparse.Namespace) -> None:
    if args.weights and args.weights != IMAGENET_WEIGHTS and not args.resume:
        file_to_read("--weights", args.weights, "resnet18.pth", f"a state dict (.pth), a "
                     f"resnet-gui checkpoint, or {IMAGENET_WEIGHTS}")
    if args.resume:
        file_to_read("--resume", args.resume, "model.pt",
                     "a checkpoint written by resnet-gui train --checkpoint")
    if args.checkpoint or args.resume:  # a resumed run saves back to its file by default
        file_to_write("--checkpoint" if args.checkpoint else "--checkpoint (by default the "
                      "--resume file)", args.checkpoint or args.resume, "model.pt")
    if args.log:
        file_to_write("--log", args.log, "run.jsonl")


def run_train(args: argparse.Namespace) -> int:
    return distributed.run_on_processes(args, train_here)


def train_here(args: argparse.Namespace) -> int:
    """The run in this process (one of several under torchrun: see commands/distributed.py)."""
    check_threads(args.threads)
    check_telemetry_every(args.telemetry_every)
    check_paths(args)
    from resnet_gui.engine.checkpoint import checkpoint_architecture, load_checkpoint
    from resnet_gui.engine.data import load_data
    from resnet_gui.engine.distributed import current_world
    from resnet_gui.engine.tensorboard import TensorBoardWriter
    from resnet_gui.engine.trainer import Trainer, fit_architecture

    if args.threads is not None:  # after the engine's import, which sets OpenMP's defaults
        import torch

        torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    if args.arch is None and checkpoint is None:
        raise UserError("give an architecture to train (a preset name such as fmnist-fast, or "
                        "a JSON file), or --resume a checkpoint")
    if checkpoint is not None:
        # The stored plan, without the stored run's --max-steps (that bound ended it).
        base = Recipe.from_dict(checkpoint.get("recipe")).replace(max_steps=None)
        arch = (resolve_architecture(args.arch) if args.arch
                else checkpoint_architecture(checkpoint, args.resume))
    else:
        arch, base = new_run_start(args)
    # The architecture's input size is the size that trains (--resize overrides it).
    recipe = with_input_size(build_recipe(args, base, resuming=checkpoint is not None), arch)

    print(f"resnet-gui: loading {recipe.dataset}...", file=sys.stderr)
    with current_world().main_first():  # one download into a shared folder, not N
        data = load_data(recipe)
    arch = fit_architecture(arch, data, recipe)
    progress = ProgressBar(enabled=not args.no_progress)
    callbacks: list[Any] = [progress]
    log = JsonLog(args.log, append=checkpoint is not None) if args.log else None
    if log is not None:
        callbacks.append(log)
    if args.tensorboard:
        callbacks.append(TensorBoardWriter(args.tensorboard))
    trainer = Trainer(arch, recipe, callbacks=callbacks,
                      checkpoint_path=args.checkpoint or args.resume, resume_from=args.resume,
                      data=data)
    if args.telemetry_every is not None:
        trainer.telemetry_every = args.telemetry_every
    if args.control:
        control.follow(sys.stdin, trainer)
    try:
        with _StopOnInterrupt(trainer) as interrupt:
            end = trainer.run()
    finally:
        progress.close()
        if log is not None:
            log.close()
    summary = (f"resnet-gui: {end.reason}: {end.epoch} epochs, {end.step} steps, "
               f"test accuracy {_percent(end.test_accuracy)}, "
               f"{_speed(end.examples_per_sec)}, {end.seconds:.1f} s")
    if end.checkpoint:
        summary += f"; checkpoint {end.checkpoint}"
    if end.learned is False:
        print(f"resnet-gui: warning: {end.verdict}", file=sys.stderr)
    print(summary, file=sys.stderr)
    return 130 if interrupt.interrupted else 0


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %" if math.isfinite(value) else "not measured"


def _speed(value: float) -> str:
    """Throughput, or why there is none: the first steps (warm-up) are not timed."""
    return (f"{value:,.0f} examples/s" if math.isfinite(value)
            else "examples/s not measured (too few steps)")
