"""Training on several processes (torchrun and DistributedDataParallel): the same training loop,
wrapped, not a second one.

torchrun, or ``resnet-gui train --nproc N`` which starts torchrun's agent, runs one process per
device and tells each its place through the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), as for torchvision's reference scripts.
:func:`join` sets up the process group from it (NCCL on CUDA GPUs, gloo on the CPU); every
:class:`~resnet_gui.engine.loop.TrainingLoop` of the process then asks :func:`current_world`
what differs from a run on one process:

- the network is wrapped in DistributedDataParallel, which averages gradients as backward
  computes them;
- each global batch of the seeded order is cut into one contiguous share per process, so the
  shares together are the batch one process would take, augmentation included. ``--batch-size``
  is the global batch; when it does not divide by the processes the shares differ by one
  example, and each process weights its loss so that the averaged gradient is still the mean
  over the global batch;
- loss sums and correct counts are summed over the processes at every step, so every process
  (and so rank 0's log and progress bar) sees the whole run, and stop and pause are agreed on
  at batch boundaries: every process stops at the same step;
- the test set is cut into shares too, evaluated with rank 0's batch-norm statistics and
  gathered, so each evaluation costs 1/N of one process's;
- rank 0 alone writes the checkpoint, in the single-process format: its position counts global
  examples, so a run resumes on any number of processes.

A process whose peer dies sees its next collective fail (gloo) or is ended by torchrun's agent
(which stops every worker once one fails); it leaves with :data:`PEER_LOST_EXIT`, so a launcher
can tell the process that failed first from those that lost it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from resnet_gui.engine.data import derive_seed
from resnet_gui.engine.events import Evaluation
from resnet_gui.errors import TrainingError, UserError

if TYPE_CHECKING:
    from resnet_gui.engine.trainer import Trainer

# Long enough for rank 0 to write a large checkpoint while the others wait at the next step;
# short enough that a hung peer ends the run instead of holding the machine. The environment
# variable sets another, in seconds.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
TIMEOUT_VARIABLE = "RESNET_GUI_COLLECTIVE_TIMEOUT"
AGREE_EVERY_ON_GPU = 8  # steps between stop/pause agreements where reading a flag costs a sync
PAUSE_POLL_SECONDS = 0.2  # a paused run's processes agree on resuming this often
PROCESS_RNG_PURPOSE = 4  # derive_seed's purposes: 1 order, 2 augmentation, 3 precise BN
PEER_LOST_EXIT = 75  # the exit status of a process that lost a peer (EX_TEMPFAIL)
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class PeerLostError(TrainingError):
    """A collective failed: another process of the run died, hung or could not be reached."""


@dataclass(frozen=True)
class World:
    """This process's place in the run; ``World()`` is a run on one process, for which every
    method does nothing or hands its argument back."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""  # "nccl" or "gloo"; "" alone
    sync_batch_norm: bool = False

    @property
    def alone(self) -> bool:
        return self.size == 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return "one process" if self.alone else f"{self.size} processes ({self.backend})"

    # -- shares --------------------------------------------------------------------------------

    def share(self, count: int, rank: int | None = None) -> slice:
        """This process's (or ``rank``'s) contiguous part of ``count`` items; the parts of all
        ranks are disjoint, cover every item and differ in size by one at most."""
        rank = self.rank if rank is None else rank
        return slice(count * rank // self.size, count * (rank + 1) // self.size)

    @property
    def smallest_batch(self) -> int:
        """The fewest examples a last batch may have: two for batch norm, and one per process."""
        return max(2, self.size)

    def check_batch(self, batch_size: int, num_train: int) -> None:
        """Every process needs a share of every batch."""
        if self.alone:
            return
        if batch_size < self.size:
            raise UserError(f"--batch-size {batch_size} is the global batch, shared by "
                            f"{self.size} processes; give at least {self.size}")
        if num_train < self.size:
            raise UserError(f"{num_train} training images cannot be shared by {self.size} "
                            "processes; use more images or fewer processes")

    def gradient_weight(self, count: int, total: int) -> float:
        """The factor on a share's mean loss that makes DDP's average of the processes'
        gradients the mean over the global batch (1 where the batch divides evenly)."""
        return count * self.size / total

    # -- the network ---------------------------------------------------------------------------

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in DistributedDataParallel (batch norm synchronised when asked for and
        the backend can); the model itself when alone. The wrapper broadcasts rank 0's weights
        to every process as it is built."""
        if self.alone:
            return model
        if self.sync_batch_norm:
            converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            assert converted is model  # converted in place: the root is never a batch norm
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True)

    def seed_process(self, seed: int, step: int) -> None:
        """Give processes other than rank 0 their own global RNG stream (dropout draws from
        it), so shares of a batch do not all drop the same units; rank 0 keeps the stream a
        checkpoint restores."""
        if self.rank:
            torch.manual_seed(derive_seed(seed, PROCESS_RNG_PURPOSE, step * self.size + self.rank))

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block (a download into a folder the processes share) before the
        others do."""
        if not self.alone and not self.is_main:
            self._barrier()
        yield
        if not self.alone and self.is_main:
            self._barrier()

    def broadcast_state(self, model: nn.Module) -> None:
        """Rank 0's buffers (batch-norm statistics) in every process: each process updated its
        own from its share, and evaluation and the checkpoint use rank 0's."""
        if self.alone:
            return
        with translated_errors():
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    # -- sums and agreement --------------------------------------------------------------------

    def step_totals(self, loss: torch.Tensor, correct: torch.Tensor, count: int, total: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The global batch's mean loss and correct answers, from this process's share of
        ``count`` of its ``total`` examples. Stays on the device (no sync)."""
        if self.alone:
            return loss, correct
        sums = torch.stack([loss.detach().double() * count, correct.double()])
        self._all_reduce(sums, dist.ReduceOp.SUM)
        return sums[0] / total, sums[1].round().long()

    def agree(self, stop: bool, pause: bool, step: int | None = None) -> tuple[bool, bool]:
        """Whether any process wants to stop, or to pause. On GPUs (where reading the answer
        waits for the queued work) only every few steps of ``step``; always when it is None."""
        if self.alone:
            return stop, pause
        if step is not None and self.backend == "nccl" and step % AGREE_EVERY_ON_GPU:
            return False, False
        flags = torch.tensor([stop, pause], dtype=torch.int32, device=self._collective_device)
        self._all_reduce(flags, dist.ReduceOp.MAX)
        wanted = flags.tolist()
        return bool(wanted[0]), bool(wanted[1])

    def wait_while_paused(self, trainer: Trainer) -> None:
        """Hold until the run is resumed or stopped: on one process, the trainer's own wait;
        on several, every process polls the agreement until none is paused."""
        if self.alone:
            trainer.wait_until_resumed()
            return
        while True:
            time.sleep(PAUSE_POLL_SECONDS)
            stop, pause = self.agree(trainer.stop_requested, trainer.paused)
            if stop or not pause:
                return

    def same_everywhere(self, model: nn.Module) -> bool:
        """Whether every process holds the same weights (their sum of squares, compared)."""
        if self.alone:
            return True
        with torch.no_grad():
            total = sum((p.detach().double() ** 2).sum() for p in model.parameters())
        low = torch.as_tensor(total, dtype=torch.float64, device=self._collective_device)
        high = low.clone()
        self._all_reduce(low, dist.ReduceOp.MIN)
        self._all_reduce(high, dist.ReduceOp.MAX)
        return bool(low == high)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, trainer: Trainer, model: nn.Module) -> Evaluation:
        """The test set: each process evaluates its share with rank 0's statistics and the
        shares are gathered into one :class:`Evaluation` (the same in every process)."""
        if self.alone:
            return trainer.evaluate()
        self.broadcast_state(model)
        part = self.share(trainer.data.num_test)
        partial = trainer.evaluate(part=part)
        gathered: list[Any] = [None] * self.size
        with translated_errors():
            dist.all_gather_object(gathered, (part.start, partial))
        merged = merge_evaluations(gathered)
        trainer.last_evaluation = merged
        return merged

    # -- collectives ---------------------------------------------------------------------------

    @property
    def _collective_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else \
            torch.device("cpu")

    def _barrier(self) -> None:
        with translated_errors():
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def _all_reduce(self, tensor: torch.Tensor, op: Any) -> None:
        with translated_errors():
            dist.all_reduce(tensor, op=op)


def merge_evaluations(parts: Sequence[tuple[int, Evaluation]]) -> Evaluation:
    """One evaluation from evaluations of consecutive shares of a test set, each given with
    the index of its first image; equal to evaluating the whole set at once."""
    parts = sorted(parts, key=lambda part: part[0])
    counts = [int(part.confusion.sum()) for _, part in parts]
    total = sum(counts)
    confusion = sum((part.confusion for _, part in parts), np.zeros_like(parts[0][1].confusion))
    loss = sum(part.loss * count for (_, part), count in zip(parts, counts) if count)
    rows = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(rows > 0, np.diag(confusion) / np.maximum(rows, 1), np.nan)
    wrong = np.concatenate([part.wrong_indices + start for start, part in parts])
    predicted = np.concatenate([part.wrong_predicted for _, part in parts])
    confidence = np.concatenate([part.wrong_confidence for _, part in parts])
    kept = max(len(part.wrong_indices) for _, part in parts)
    # Stable, and the shares come in index order: ties stay in index order, as in one pass.
    worst = np.argsort(-confidence, kind="stable")[:kept]
    return Evaluation(
        loss=loss / total if total else math.nan,
        accuracy=float(np.trace(confusion) / total) if total else math.nan,
        confusion=confusion.astype(np.int64), per_class_accuracy=per_class.astype(np.float64),
        wrong_indices=wrong[worst].astype(np.int64), wrong_predicted=predicted[worst],
        wrong_confidence=confidence[worst],
        predictions=np.concatenate([part.predictions for _, part in parts]))


# -- the process group ---------------------------------------------------------------------------

_current = World()


def current_world() -> World:
    """The world this process joined (:func:`join`), or a world of one."""
    return _current


def launched_by_torchrun(environ: Mapping[str, str] = os.environ) -> bool:
    return all(name in environ for name in TORCHRUN_VARIABLES)


def device_setting(requested: str | None, world: World) -> str | None:
    """The ``--device`` each process trains on: its own GPU (``cuda:LOCAL_RANK``) or the CPU.
    ``requested`` is the user's setting (None: the recipe's)."""
    if world.alone:
        return requested
    return f"cuda:{world.local_rank}" if world.backend == "nccl" else "cpu"


def join(device: str | None, sync_batch_norm: bool = False,
         environ: Mapping[str, str] = os.environ) -> World:
    """Join the process group torchrun describes in ``environ`` (a world of one when it
    describes none, or a single process). ``device`` is the run's ``--device`` setting:
    ``auto`` or ``cuda`` with CUDA GPUs here means one GPU per process and NCCL, else gloo on
    the CPU."""
    global _current
    if not launched_by_torchrun(environ) or int(environ["WORLD_SIZE"]) <= 1:
        return World()
    rank, size = int(environ["RANK"]), int(environ["WORLD_SIZE"])
    local_rank = int(environ["LOCAL_RANK"])
    backend = _backend_for(device or "auto", local_rank, size)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    with translated_errors("could not join the other processes"):
        dist.init_process_group(
            backend, timeout=collective_timeout(environ),
            device_id=torch.device("cuda", local_rank) if backend == "nccl" else None)
    _current = World(rank, size, local_rank, backend, sync_batch_norm and backend == "nccl")
    return _current


def collective_timeout(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How long a process waits for the others at a collective before the run ends."""
    setting = environ.get(TIMEOUT_VARIABLE, "").strip()
    if not setting:
        return COLLECTIVE_TIMEOUT
    try:
        seconds = float(setting)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserError(f"{TIMEOUT_VARIABLE}={setting!r} is not a number of seconds above 0; "
                        "set it to, say, 600, or unset it")
    return timedelta(seconds=seconds)


def leave() -> None:
    """Leave the process group (after the run, or when it failed)."""
    global _current
    _current = World()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _backend_for(device: str, local_rank: int, size: int) -> str:
    if device == "mps":
        raise UserError("several processes train on CPUs or CUDA GPUs, not on an Apple GPU; "
                        "use --device cpu")
    if device.startswith("cuda:"):
        raise UserError(f"--device {device} names one GPU, but each of the {size} processes "
                        "takes its own; give --device cuda (or leave it out) to use one GPU per "
                        "process")
    if not (device == "cuda" or (device == "auto" and torch.cuda.is_available())):
        return "gloo"
    if not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but this machine has no usable CUDA GPU; "
                        "use --device cpu")
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"torchrun started more processes on this machine than it has GPUs "
                        f"({torch.cuda.device_count()}); start at most that many per machine "
                        "(--nproc-per-node)")
    return "nccl"


def is_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because a peer died or hung: torch
    raises DistError subclasses, and a bare RuntimeError from gloo's transport inside DDP's
    backward."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and "/gloo/" in str(error))


@contextlib.contextmanager
def translated_errors(doing: str = "lost contact with another process of the run"
                      ) -> Iterator[None]:
    """A failed collective as one sentence (:class:`PeerLostError`), not a traceback."""
    try:
        yield
    except (dist.DistError, RuntimeError) as error:
        if not is_peer_failure(error):
            raise
        raise PeerLostError(f"{doing} ({_first_line(error)}); the run ended, and its last "
                            "checkpoint is kept") from None


def _first_line(error: BaseException) -> str:
    """The gist of a torch.distributed message: its first line, without the source path."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if text.startswith("[") and "] " in text:  # "[.../gloo/transport/tcp/pair.cc:545] Read..."
        text = text.split("] ", 1)[1]
    text = text.split(". ")[0]
    return text if len(text) <= 160 else text[:157] + "..."
