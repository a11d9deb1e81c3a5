"""``resnet-gui train`` on several processes: under torchrun, and ``--nproc N``, which starts
torchrun's agent on this machine.

Under torchrun (``torchrun --nproc-per-node N -m resnet_gui -- train ARCH ...``) each process
joins the process group torchrun describes (:func:`resnet_gui.engine.distributed.join`) and
runs the ordinary ``train`` command on its own device. Rank 0 alone writes the log, the
TensorBoard files, the progress bar and the checkpoint; the other ranks print nothing but
their own failure.

``--nproc N`` runs the same command through torchrun's elastic agent in this process
(``torch.distributed.launcher.api.elastic_launch``, the launcher of ``torchrun --standalone``).
Ctrl-C, and SIGTERM (the window's Stop), reach every process as Ctrl-C does on one: each stops
after the step all of them agree on, and rank 0 saves. When a process fails or is killed, the
agent stops the others and the run ends with one sentence naming that process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from resnet_gui.errors import UsageError, UserError

LAUNCHED_VARIABLE = "RESNET_GUI_LAUNCHED"  # set for the processes --nproc starts
SHUTDOWN_SECONDS = 60  # for stopped processes to finish their step and for rank 0 to save
MAX_PROCESSES = 64
STOP_EXITS = (128 + signal.SIGINT, 128 + signal.SIGTERM)  # a process that stopped and saved
NOT_AVAILABLE = "<N/A>"  # torchelastic's error_file of a process that wrote none

TrainCommand = Callable[[argparse.Namespace], int]


def add_options(group: argparse._ArgumentGroup) -> None:
    """``--nproc`` and ``--sync-bn``, in ``train``'s ``machine`` group."""
    group.add_argument("--nproc", type=int, metavar="N",
                       help="train on N processes on this machine through torchrun: one per "
                       "GPU, or N CPU processes with --device cpu; --batch-size stays the "
                       "global batch")
    group.add_argument("--sync-bn", action="store_true",
                       help="with several GPU processes, batch norm uses the statistics of the "
                       "whole global batch (NCCL only)")


def run_on_processes(args: argparse.Namespace, train: TrainCommand) -> int:
    """``train(args)`` in this process, in a process torchrun started, or (``--nproc N``) on
    N processes started here."""
    from resnet_gui.engine.distributed import launched_by_torchrun

    under_torchrun = launched_by_torchrun()
    if args.nproc is not None:
        if under_torchrun and os.environ.get(LAUNCHED_VARIABLE) != "1":
            raise UsageError("--nproc starts torchrun itself; under torchrun leave it out "
                             "(torchrun's --nproc-per-node sets the processes)")
        if not 1 <= args.nproc <= MAX_PROCESSES:
            raise UsageError(f"--nproc must be between 1 and {MAX_PROCESSES}, got {args.nproc}")
        if not under_torchrun and args.nproc > 1:
            return launch(args)
    if not under_torchrun:
        if args.sync_bn:
            print("resnet-gui: note: --sync-bn has nothing to synchronise in a single process",
                  file=sys.stderr)
        return train(args)
    return work(args, train)


# -- a process torchrun started -------------------------------------------------------------------


def work(args: argparse.Namespace, train: TrainCommand) -> int:
    """Join the process group, run ``train`` as this rank, and leave. A failure is recorded
    for torchrun (its error file) as one sentence, and printed unless --nproc started us (the
    launcher prints the one that matters)."""
    from resnet_gui.engine.distributed import (
        PEER_LOST_EXIT,
        PeerLostError,
        device_setting,
        join,
        leave,
        translated_errors,
    )

    world = None
    try:
        with _sigterm_as_ctrl_c():
            world = join(args.device, args.sync_bn)
            if args.sync_bn and world.is_main and world.backend == "gloo":
                print("resnet-gui: note: --sync-bn needs GPUs (NCCL); on the CPU (gloo) each "
                      "process normalises its share of the batch by itself", file=sys.stderr)
            args.device = device_setting(args.device, world)
            quiet = contextlib.nullcontext() if world.is_main else _silenced()
            if not world.is_main:  # rank 0 alone writes and reads
                args.log, args.tensorboard, args.control = None, None, False
                args.no_progress = True
            with quiet, translated_errors():
                return train(args)
    except UserError as error:
        _report(error, world.rank if world is not None else None)
        return PEER_LOST_EXIT if isinstance(error, PeerLostError) else error.exit_code
    finally:
        leave()


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (torchrun passes it on when it is stopped) does what Ctrl-C does: stop after
    the step all processes agree on, and save."""

    def as_ctrl_c(_signum: int, _frame: Any) -> None:
        signal.raise_signal(signal.SIGINT)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, as_ctrl_c) if main_thread else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _silenced():
    """Ranks other than 0 print nothing (as torchvision's reference scripts do); a traceback
    still reaches stderr, printed after this block has restored it."""
    with open(os.devnull, "w", encoding="utf-8") as devnull, \
            contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
        yield


def _report(error: UserError, rank: int | None) -> None:
    """``error`` into torchrun's error file for this process, and on stderr unless the
    --nproc launcher will say it."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        # torchelastic's format (ErrorHandler.record_exception); with no "py_callstack",
        # torchrun's own report shows the message.
        record = {"message": {"message": str(error),
                              "extraInfo": {"timestamp": str(int(time.time()))}}}
        with contextlib.suppress(OSError):
            Path(path).write_text(json.dumps(record), encoding="utf-8")
    if os.environ.get(LAUNCHED_VARIABLE) != "1":
        who = f"process {rank}: " if rank else ""
        print(f"resnet-gui: error: {who}{error}", file=sys.stderr)


# -- --nproc: the launcher ----------------------------------------------------------------------


def launch(args: argparse.Namespace) -> int:
    """Run this very command on ``args.nproc`` processes through torchrun's standalone agent;
    the exit status of the run."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    count = args.nproc
    _check_devices(count, args.device, args.threads)
    os.environ[LAUNCHED_VARIABLE] = "1"
    if args.threads is None:  # the cores shared out, as torchrun does with OMP_NUM_THREADS
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    _quiet_agent()
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=f"resnet-gui-{uuid.uuid4()}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
        # SIGTERM is ours: it reaches the processes as Ctrl-C, which stops and saves.
        signals_to_handle="SIGINT,SIGHUP,SIGQUIT", shutdown_timeout=SHUTDOWN_SECONDS)
    received: list[int] = []

    def stop_like_ctrl_c(signum: int, _frame: Any) -> None:
        received.append(signum)
        raise SignalException(f"resnet-gui got signal {signum}", sigval=signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    print(f"resnet-gui: starting {count} processes (torchrun, standalone)", file=sys.stderr)
    try:
        elastic_launch(config, sys.executable)("-u", "-m", "resnet_gui", *args.command_line)
    except ChildFailedError as failed:
        message, status = failure_summary(failed.failures, count,
                                          args.checkpoint or args.resume)
        if message:
            print(f"resnet-gui: error: {message}", file=sys.stderr)
        return status
    except SignalException as stopped:
        return 128 + (received[0] if received else int(stopped.sigval))
    except Exception as error:  # the rendezvous or the agent itself failed
        raise UserError(f"could not start {count} processes through torchrun "
                        f"({type(error).__name__}: {error}); train on one process instead "
                        "(leave out --nproc)") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _quiet_agent() -> None:
    """No log lines from torchrun's agent: what it would say about a failure, the launcher
    says in one sentence. (Each of its modules sets its own logger's level.)"""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _check_devices(count: int, device: str | None, threads: int | None) -> None:
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    on_gpus = (device in (None, "auto", "cuda") and gpus > 0) or (device or "").startswith("cuda")
    if on_gpus and count > gpus:
        raise UsageError(f"--nproc {count} asks for one GPU per process but this machine has "
                         f"{gpus}; use --nproc {gpus}, or --device cpu for CPU processes")
    cores = os.cpu_count() or 1
    if not on_gpus and count * (threads or 1) > cores:
        each = f" of {threads} threads" if threads else ""
        raise UsageError(f"--nproc {count} CPU processes{each} need more cores than this "
                         f"machine's {cores}; use --nproc {max(1, cores // (threads or 1))} "
                         "or fewer")


def failure_summary(failures: Mapping[int, Any], size: int, checkpoint: str | None
                    ) -> tuple[str, int]:
    """One sentence on how a run of ``size`` processes ended (torchelastic's
    ``ProcessFailure`` per failed rank), and the exit status: the sentence of the process that
    failed first (not of those that lost it), or what killed it; none for a run that stopped
    on request (rank 0 has said so)."""
    from resnet_gui.engine.distributed import PEER_LOST_EXIT

    if all(failure.exitcode in STOP_EXITS for failure in failures.values()):
        return "", max(failure.exitcode for failure in failures.values())
    messages = {_message(failure) for failure in failures.values()}
    codes = {failure.exitcode for failure in failures.values()}
    if len(failures) == size and len(messages) == 1 and codes <= {1, 2}:
        return messages.pop(), codes.pop()  # the same mistake everywhere: say it once

    def blame(item: tuple[int, Any]) -> tuple[bool, int, int]:
        rank, failure = item
        followed = failure.exitcode in (PEER_LOST_EXIT, *STOP_EXITS,
                                        -signal.SIGTERM, -signal.SIGINT)
        return followed, failure.timestamp, rank

    rank, failure = min(failures.items(), key=blame)
    if _message(failure):  # the process said what went wrong: its sentence is the run's
        who = "" if rank == 0 else f"process {rank} of {size}: "
        return f"{who}{_message(failure)}", failure.exitcode if failure.exitcode in (1, 2) else 1
    if failure.exitcode < 0:
        what = f"was killed by {failure.signal_name()}"
    else:
        what = f"exited with status {failure.exitcode} (see its output above)"
    if not checkpoint:
        kept = "no checkpoint was asked for"
    elif Path(checkpoint).is_file():
        kept = f"the checkpoint {checkpoint} from its last save is kept"
    else:
        kept = "no checkpoint had been saved yet"
    return (f"process {rank} of {size} {what}; the other processes were stopped and {kept}",
            1)

def _message(failure: Any) -> str:
    """The sentence a process recorded in its error file ('' when it recorded none)."""
    if failure.error_file == NOT_AVAILABLE:
        return ""
    message = failure.message
    return str(message.get("message", "")) if isinstance(message, dict) else str(message)
