"""``resnet-gui train ARCH``: train from the command line with a progress bar.

Ctrl-C, SIGTERM (``timeout``, ``docker stop``, Slurm) and SIGHUP stop at the next batch and save
the checkpoint, log an ``end`` record and exit with 128 + the signal's number; a second signal
aborts at once, though never in the middle of writing a file (see
:mod:`resnet_gui.commands.stopping`). ``--log`` writes one JSON object per line (see
:mod:`resnet_gui.commands.jsonlog`). On several processes (``--nproc N``, or under
torchrun) see :mod:`resnet_gui.commands.distributed`.

Outputs are guarded before any work starts: one run per file (a lock beside it, naming the
holder's pid), no output naming another, no replacing a file that is not resnet-gui's, and no
new run over a checkpoint holding an unfinished one unless ``--overwrite`` says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from resnet_gui.commands import control, distributed
from resnet_gui.commands.console import say, stderr_lost
from resnet_gui.commands.jsonlog import JsonLog, is_resnet_gui_log
from resnet_gui.commands.paths import (
    distinct_outputs,
    file_to_read,
    file_to_write,
    names_standard_output,
)
from resnet_gui.errors import UserError
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.resolve import is_checkpoint_file, resolve_architecture
from resnet_gui.commands.stopping import Aborted, StopOnSignal
from resnet_gui.files import FileLock, existing_kind, previous_path, same_file
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
    "crop_padding": "crop_padding", "test_flip": "test_flip",
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
        "new run of its architecture and plan) with a progress bar. Ctrl-C, SIGTERM or SIGHUP "
        "stop after saving the checkpoint. Options left out come from --recipe (default: the "
        "recipe named like the architecture, else the library defaults).",
    )
    parser.add_argument("arch", nargs="?", metavar="ARCH",
                        help="preset name, architecture JSON or checkpoint (optional with "
                        "--resume)")
    parser.add_argument("--recipe", metavar="NAME|FILE.json",
                        help=f"start from a named recipe ({', '.join(sorted(RECIPE_PRESETS))}; "
                        "chapter: the D2L chapter's settings) or a recipe JSON file (every "
                        "field of a run's recipe, as the window passes it)")
    _add_data_options(parser)
    _add_plan_options(parser)
    _add_start_options(parser)
    _add_machine_options(parser)
    _add_output_options(parser)
    parser.set_defaults(func=run_train)
    return parser


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    """What to train on."""
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
    data.add_argument("--test-flip", action=argparse.BooleanOptionalAction, default=None,
                      help="test each image and its mirror image, averaging the two")
    data.add_argument("--limit-train", type=int, metavar="N",
                      help="use N training images (class-balanced)")
    data.add_argument("--limit-test", type=int, metavar="N", help="use N test images")


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The optimizer and its schedule."""
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
    plan.add_argument("--grad-clip", type=float, metavar="NORM",
                      help="clip the gradients' global norm; 0: never (default: 5 where the "
                      "rate is left to the plan)")
    plan.add_argument("--init", choices=INITS)
    plan.add_argument("--zero-init-last", action=argparse.BooleanOptionalAction, default=None,
                      help="start each residual branch at zero")
    plan.add_argument("--seed", type=int, metavar="S", help="makes a CPU run repeatable")


def _add_start_options(parser: argparse.ArgumentParser) -> None:
    """Starting weights for fine-tuning."""
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


def _add_machine_options(parser: argparse.ArgumentParser) -> None:
    """Where and how fast it runs."""
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


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """What the run writes and reads back."""
    output = parser.add_argument_group("output")
    output.add_argument("--checkpoint", metavar="PATH",
                        help="save a checkpoint here at each epoch end and on stop (default "
                        "with --resume: the resumed checkpoint, so the run keeps saving where "
                        "it came from)")
    output.add_argument("--resume", metavar="PATH",
                        help="continue the run of this checkpoint, saving back to it unless "
                        "--checkpoint names another file")
    output.add_argument("--log", metavar="FILE.jsonl",
                        help="write events as JSON lines (- for standard output; on --resume "
                        "the log is continued)")
    output.add_argument("--overwrite", action="store_true",
                        help="start a new run even where --checkpoint holds an unfinished one "
                        "(without it, such a checkpoint is refused: --resume continues it)")
    output.add_argument("--tensorboard", metavar="DIR",
                        help="write loss, accuracy, learning rate and examples/s as "
                        "TensorBoard event files in DIR (needs tensorboardX)")
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    output.add_argument("--control", action="store_true",
                        help="read pause, resume and stop from standard input, one a line "
                        "(for a program that runs this command, such as the window)")


MAX_RECIPE_FILE_BYTES = 2**20  # a recipe is a few hundred bytes


def named_or_file_recipe(value: str) -> Recipe:
    """``--recipe``: a preset's name, or a JSON file holding a recipe object."""
    if value in RECIPE_PRESETS or not value.lower().endswith(".json"):
        return get_recipe(value)
    what = "a recipe JSON file"
    file_to_read("--recipe", value, "recipe.json", what)
    try:
        if os.path.getsize(value) > MAX_RECIPE_FILE_BYTES:
            raise UserError(f"--recipe {value} is far larger than any recipe; give {what}")
        with open(value, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except OSError as error:
        raise UserError(f"cannot read --recipe {value}: {error.strerror}") from None
    except (ValueError, RecursionError):
        raise UserError(f"--recipe {value} is not valid JSON; give {what}") from None
    if not isinstance(data, dict):
        raise UserError(f"--recipe {value} holds no recipe object; give {what}")
    return Recipe.from_dict(data)


def base_recipe(args: argparse.Namespace, arch_name: str | None) -> Recipe:
    if args.recipe:
        return named_or_file_recipe(args.recipe)
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
    base = named_or_file_recipe(args.recipe) if args.recipe else checkpoint_recipe(
        checkpoint, args.arch).replace(max_steps=None, weights=None, freeze=None)
    say(f"resnet-gui: note: a new run of the architecture and plan of {args.arch}, from "
        f"random weights (--resume {args.arch} continues that run; --weights {args.arch} "
        "starts from its weights)")
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
            say(f"resnet-gui: note: --resume continues the checkpoint's plan; "
                f"{', '.join(ignored)} ignored")
    changes = {field: getattr(args, option) for option, field in options.items()
               if getattr(args, option) is not None}
    try:
        recipe = base.replace(**changes)
    except TypeError as error:  # pragma: no cover - argparse types prevent this
        raise UserError(str(error)) from None
    return validate_recipe(recipe)


def _survives_lost_stderr(method):
    """A progress method that goes on when standard error is closed: progress is not worth
    stopping a run for (nor is a half-drawn bar worth a traceback)."""

    def guarded(self, *args):
        try:
            method(self, *args)
        except (OSError, ValueError):  # a closed pipe, or a stream closed under it
            stderr_lost()
            self.bar = None
            self.enabled = False

    guarded.__name__, guarded.__doc__ = method.__name__, method.__doc__
    return guarded


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

    @_survives_lost_stderr
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

    @_survives_lost_stderr
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

    @_survives_lost_stderr
    def on_epoch_end(self, event) -> None:
        self._write(f"epoch {event.epoch + 1}/{self.epochs}: train loss {event.train_loss:.4f} "
                    f"acc {event.train_accuracy:.4f}, test loss {event.test_loss:.4f} "
                    f"acc {event.test_accuracy:.4f}, {event.seconds:.1f} s, "
                    f"{_speed(event.examples_per_sec)}")

    def on_train_end(self, event) -> None:
        self.close()

    def on_exception(self, error: BaseException) -> None:
        self.close()

    @_survives_lost_stderr
    def on_notice(self, message: str) -> None:
        self._write(f"resnet-gui: note: {message}")

    @_survives_lost_stderr
    def close(self) -> None:
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.close()


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


@dataclass(frozen=True)
class Outputs:
    """Where a run writes: its checkpoint and its log (``-``: standard output), or None."""

    checkpoint: str | None
    log: str | None


def check_paths(args: argparse.Namespace) -> Outputs:
    """Refuse, before any work, a path to read or write that cannot be used (see the module
    docstring); the checks that need torch come later, in :func:`check_checkpoint_target`."""
    if args.weights and args.weights != IMAGENET_WEIGHTS and not args.resume:
        file_to_read("--weights", args.weights, "resnet18.pth", f"a state dict (.pth), a "
                     f"resnet-gui checkpoint, or {IMAGENET_WEIGHTS}")
    if args.resume:
        file_to_read("--resume", args.resume, "model.pt",
                     "a checkpoint written by resnet-gui train --checkpoint")
    checkpoint = args.checkpoint or args.resume  # a resumed run saves back to its file
    if checkpoint:
        file_to_write("--checkpoint" if args.checkpoint else "--checkpoint (by default the "
                      "--resume file)", checkpoint, "model.pt")
        kept = previous_path(checkpoint)
        if existing_kind(kept) is not None:
            raise UserError(f"{kept}, where the checkpoint {checkpoint} keeps its previous "
                            f"version, is {existing_kind(kept)}; move it away or choose another "
                            "--checkpoint")
    log = None
    if args.log:
        log = "-" if names_standard_output(args.log) else file_to_write(
            "--log", args.log, "run.jsonl", dash=True)
    if log and log != "-":
        if os.path.isfile(log) and not is_resnet_gui_log(log):
            raise UserError(f"--log {log} exists and is not a resnet-gui log (its first line is "
                            "no log record), so it is left alone; choose another file")
        named = [("--log", log)]
        if checkpoint:
            named += [("--checkpoint", checkpoint),
                      ("the checkpoint's previous version", str(previous_path(checkpoint)))]
        if args.resume and not (checkpoint and same_file(checkpoint, args.resume)):
            named.append(("--resume", args.resume))
        distinct_outputs(named)
        if os.path.isfile(log) and os.stat(log).st_nlink > 1:
            # Appends go to the file under every name, and the lock is taken by name.
            raise UserError(f"--log {log} has other names (hard links), which another run could "
                            "write through; give the log a file of its own")
    return Outputs(checkpoint, log)


@contextlib.contextmanager
def locked(outputs: Outputs) -> Iterator[None]:
    """Hold the lock of every output file: a second run writing one of them is refused."""
    with contextlib.ExitStack() as stack:
        if outputs.checkpoint:
            stack.enter_context(FileLock(outputs.checkpoint,
                                         f"the checkpoint {outputs.checkpoint}"))
        if outputs.log and outputs.log != "-":
            stack.enter_context(FileLock(outputs.log, f"the log {outputs.log}"))
        yield


def check_checkpoint_target(args: argparse.Namespace, target: str | None) -> None:
    """A checkpoint file a new run would replace must be resnet-gui's, and not hold an
    unfinished run unless --overwrite says so (checked under the lock: no run changes it)."""
    from resnet_gui.engine.checkpoint import saved_progress

    if target is None or not os.path.exists(target):
        return
    if args.resume and same_file(target, args.resume):
        return  # the run being resumed saves back to its own file
    progress = saved_progress(target)
    if progress is None:
        raise UserError(f"--checkpoint {target} exists and is not a resnet-gui checkpoint (or "
                        "is too damaged to read), so it is left alone; choose another file")
    if not progress.finished and not args.overwrite:
        raise UserError(f"--checkpoint {target} holds an unfinished run (epoch "
                        f"{progress.epoch} of {progress.epochs}, step {progress.step}); continue "
                        f"it with --resume {target}, or give --overwrite to start a new run in "
                        "its place")


def choose_threads(args: argparse.Namespace, checkpoint: dict[str, Any] | None) -> str:
    """Set torch's thread count: --threads, else on --resume the count the checkpoint's run
    used (a resumed run repeats the uninterrupted one bit for bit only with the same count).
    Returns a phrase for the resume message."""
    import torch

    saved = checkpoint.get("threads") if checkpoint is not None else None
    if isinstance(saved, bool) or not isinstance(saved, int) or saved < 1:
        saved = None
    cores = os.cpu_count() or 1
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        if saved is not None and saved != args.threads:
            return (f"on {_threads(args.threads)} where the run used {saved}, so it will not "
                    "repeat the uninterrupted run bit for bit")
        return f"on {_threads(args.threads)}"
    if saved is not None and saved <= cores:
        torch.set_num_threads(saved)
        return f"on {_threads(saved)}, as the run used (--threads overrides)"
    if saved is not None:
        return (f"on {_threads(torch.get_num_threads())}: the run used {saved}, more than this "
                f"machine's {cores} cores, so it will not repeat the uninterrupted run bit for "
                "bit")
    return (f"on {_threads(torch.get_num_threads())} (the checkpoint does not record how many "
            "the run used; only the same count repeats it bit for bit)")


def _threads(count: int) -> str:
    return "1 thread" if count == 1 else f"{count} threads"


def check_resumable(args: argparse.Namespace, progress) -> bool:
    """False when the checkpoint's run already finished its plan (nothing to train); a
    --max-steps the checkpoint already reached is refused."""
    if progress.finished:
        return False
    if args.max_steps is not None and args.max_steps <= progress.step:
        raise UserError(f"--max-steps {args.max_steps}: the checkpoint {args.resume} is "
                        f"already at step {progress.step}; give a larger --max-steps to train "
                        "on")
    return True


def saved_recipe(checkpoint: dict[str, Any], path: str) -> Recipe:
    from resnet_gui.engine.checkpoint import damaged

    try:
        return Recipe.from_dict(checkpoint.get("recipe"))
    except (UserError, TypeError) as error:
        raise damaged(path, f"is damaged: its training recipe is not valid ({error})") from None


def report_finished(args: argparse.Namespace, checkpoint: dict[str, Any], progress,
                    outputs: Outputs) -> int:
    """Resuming a run that completed its plan: say so, log a complete ``end`` record, exit 0."""
    epoch, step = progress.epoch, progress.step
    message = (f"{args.resume} already completed its {epoch} epochs ({step} steps); there is "
               "nothing left to train (start a new run to train again)")
    record: dict[str, Any] = {"event": "end", "reason": "completed", "epoch": epoch,
                              "step": step, "seconds": 0.0}
    accuracy = checkpoint.get("last_test_accuracy")
    if isinstance(accuracy, float) and math.isfinite(accuracy):
        record["test_acc"] = accuracy
    record.update(checkpoint=args.resume, message=message)
    if outputs.log:
        log = JsonLog(outputs.log, resume_step=step)
        log.write(record)
        log.close()
        if log.failure:
            raise UserError(f"{log.failure}; {message}")
    say(f"resnet-gui: completed: {message}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    return distributed.run_on_processes(args, train_here)


def train_here(args: argparse.Namespace) -> int:
    """The run in this process (one of several under torchrun: see commands/distributed.py)."""
    check_threads(args.threads)
    check_telemetry_every(args.telemetry_every)
    outputs = check_paths(args)
    with StopOnSignal() as stopper, locked(outputs if _writes_files() else Outputs(None, None)):
        return _train(args, outputs, stopper)


def _writes_files() -> bool:
    """This process writes the run's files: alone, or rank 0 of several."""
    from resnet_gui.engine.distributed import current_world

    return current_world().is_main


def _train(args: argparse.Namespace, outputs: Outputs, stopper: StopOnSignal) -> int:
    from resnet_gui.engine.checkpoint import checkpoint_architecture, load_checkpoint, progress_of
    from resnet_gui.engine.data import load_data
    from resnet_gui.engine.distributed import current_world
    from resnet_gui.engine.tensorboard import TensorBoardWriter
    from resnet_gui.engine.trainer import Trainer, fit_architecture

    check_checkpoint_target(args, outputs.checkpoint)
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    progress = progress_of(checkpoint, args.resume) if checkpoint is not None else None
    if progress is not None and not check_resumable(args, progress):
        return report_finished(args, checkpoint, progress, outputs)
    threads = choose_threads(args, checkpoint)  # after the engine's import: see check_threads
    if args.arch is None and checkpoint is None:
        raise UserError("give an architecture to train (a preset name such as fmnist-fast, or "
                        "a JSON file), or --resume a checkpoint")
    if checkpoint is not None:
        # The stored plan, without the stored run's --max-steps (that bound ended it).
        base = saved_recipe(checkpoint, args.resume).replace(max_steps=None)
        arch = (resolve_architecture(args.arch) if args.arch
                else checkpoint_architecture(checkpoint, args.resume))
        say(f"resnet-gui: resuming {args.resume} at epoch {progress.epoch + 1}, step "
            f"{progress.step}, {threads}")
    else:
        arch, base = new_run_start(args)
    # The architecture's input size is the size that trains (--resize overrides it).
    recipe = with_input_size(build_recipe(args, base, resuming=checkpoint is not None), arch)

    say(f"resnet-gui: loading {recipe.dataset}...")
    with current_world().main_first():  # one download into a shared folder, not N
        data = load_data(recipe)
    arch = fit_architecture(arch, data, recipe)
    bar = ProgressBar(enabled=not args.no_progress)
    callbacks: list[Any] = [bar]
    log = (JsonLog(outputs.log, resume_step=progress.step if progress else None)
           if outputs.log else None)
    if log is not None:
        callbacks.append(log)
    if args.tensorboard:
        callbacks.append(TensorBoardWriter(args.tensorboard))
    trainer = Trainer(arch, recipe, callbacks=callbacks, checkpoint_path=outputs.checkpoint,
                      resume_from=args.resume, data=data)
    if args.telemetry_every is not None:
        trainer.telemetry_every = args.telemetry_every
    stopper.trainer = trainer
    if log is not None:
        log.on_failure = trainer.request_stop  # stop, saving the checkpoint, and say why
    if args.control:
        control.follow(sys.stdin, trainer)
    try:
        end = trainer.run()
    except Aborted as aborted:
        if log is not None:
            log.write({"event": "end", "reason": "aborted", "epoch": log.last_epoch,
                       "step": log.last_step, "message": aborted.message})
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()
    if log is not None and log.failure:
        kept = (f"the checkpoint {end.checkpoint} resumes it" if end.checkpoint
                else "no checkpoint was kept (give --checkpoint to keep one)")
        raise UserError(f"{log.failure}; training stopped at step {end.step} and {kept}")
    summary = (f"resnet-gui: {end.reason}: {end.epoch} epochs, {end.step} steps, "
               f"test accuracy {_percent(end.test_accuracy)}, "
               f"{_speed(end.examples_per_sec)}, {end.seconds:.1f} s")
    if end.checkpoint:
        summary += f"; checkpoint {end.checkpoint}"
    if end.learned is False:
        say(f"resnet-gui: warning: {end.verdict}")
    say(summary)
    # 128 + N when a signal stopped the run (not when one came as it was completing anyway).
    return stopper.exit_code if end.reason == "stopped" else 0


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %" if math.isfinite(value) else "not measured"


def _speed(value: float) -> str:
    """Throughput, or why there is none: the first steps (warm-up) are not timed."""
    return (f"{value:,.0f} examples/s" if math.isfinite(value)
            else "examples/s not measured (too few steps)")
