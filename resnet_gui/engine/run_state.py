"""The state of a run that a checkpoint saves: where the run is, its counters, the epoch's data
order, the running sums, the RNG and the last results.

One dataclass, saved through :meth:`RunState.to_checkpoint` and restored, every field checked,
through :meth:`RunState.from_checkpoint`. The networks', optimizer's and scaler's own state
dicts travel beside it (see :class:`resnet_gui.engine.loop.TrainingLoop`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from resnet_gui.arch.recipe import MAX_BATCH_SIZE, Recipe
from resnet_gui.engine.runs import RunLog
from resnet_gui.engine.telemetry import TelemetryHistory


class RunningSums:
    """Loss and correct answers summed over steps, kept as tensors: no device sync per batch."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.seen = 0

    def add(self, loss: torch.Tensor, correct: torch.Tensor, count: int) -> None:
        self.loss += loss.detach().double() * count
        self.correct += correct
        self.seen += count

    def means(self) -> tuple[float, float]:
        if self.seen == 0:
            return float("nan"), float("nan")
        return float(self.loss.item()) / self.seen, float(self.correct.item()) / self.seen

    def to_dict(self) -> dict[str, Any] | None:
        if not self.seen:
            return None
        return {"loss": self.loss.cpu(), "correct": self.correct.cpu(), "seen": self.seen}

    def load(self, saved: dict[str, Any] | None, most: int) -> None:
        self.reset()
        if not saved:
            return
        loss, correct, seen = saved["loss"], saved["correct"], int(saved["seen"])
        if not 0 <= seen <= most or not bool(torch.isfinite(loss.double())):
            raise ValueError("running sums out of range")
        self.loss += loss.to(self.device)
        self.correct += correct.to(self.device)
        self.seen = seen


@dataclass
class RunState:
    """Everything about a run's progress that is not a network's or optimizer's weights."""

    device: torch.device
    batch_size: int
    epoch: int = 0  # epochs completed
    position: int = 0  # examples of this epoch's order already trained on
    batch_in_epoch: int = 0
    step: int = 0  # optimizer steps of the whole run
    order: torch.Tensor | None = None  # this epoch's shuffled order, once drawn
    sums: RunningSums = field(init=False)  # this epoch's training loss and accuracy so far
    last_train: tuple[float, float] = (math.nan, math.nan)  # loss, accuracy of the last epoch
    last_test_accuracy: float = math.nan
    first_loss: float = math.nan  # the training loss the run started from (see verdict.py)
    telemetry: TelemetryHistory = field(default_factory=TelemetryHistory)  # per-block samples
    # The step and epoch reports so far: a checkpoint opened elsewhere shows its curves.
    curves: RunLog = field(default_factory=RunLog)

    def __post_init__(self) -> None:
        self.sums = RunningSums(self.device)

    def start_next_epoch(self) -> None:
        self.epoch += 1
        self.position, self.batch_in_epoch, self.order = 0, 0, None
        self.sums.reset()

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's fields for this state, with the RNG as it is now."""
        cuda = self.device.type == "cuda"
        return {
            "epoch": self.epoch,
            "position": self.position,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "batch_size": self.batch_size,
            "data_order": self.order.cpu() if self.order is not None else None,
            "epoch_sums": self.sums.to_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if cuda else []},
            "last_test_accuracy": self.last_test_accuracy,
            "last_train_loss": self.last_train[0],
            "last_train_accuracy": self.last_train[1],
            "first_loss": self.first_loss,
            # Bit-exact resume on the CPU needs the same thread count (reductions split by it).
            "threads": torch.get_num_threads(),
            "telemetry": self.telemetry.to_checkpoint() if len(self.telemetry) else None,
            "curves": self.curves.to_checkpoint(),
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], device: torch.device,
                        recipe: Recipe, num_train: int) -> "RunState":
        """The saved state, every field range-checked, and the RNG restored. Raises
        ``KeyError``, ``TypeError`` or ``ValueError`` on a damaged or hand-made file."""
        epochs = recipe.epochs
        batch_size = checkpoint.get("batch_size", recipe.batch_size)
        state = cls(device, _whole(batch_size, 1, MAX_BATCH_SIZE))
        state.epoch = _whole(checkpoint["epoch"], 0, epochs)
        state.position = _whole(checkpoint["position"], 0, num_train)
        state.batch_in_epoch = _whole(checkpoint["batch_in_epoch"], 0, num_train)
        state.step = _whole(checkpoint["step"], 0, max(epochs, 1) * max(num_train, 1))
        state.order = _order(checkpoint.get("data_order"), num_train)
        if state.position and state.order is None:
            raise ValueError("a position inside an epoch without its data order")
        state.sums.load(checkpoint.get("epoch_sums"), num_train)
        state.last_test_accuracy = _fraction(checkpoint.get("last_test_accuracy"))
        state.last_train = (_finite(checkpoint.get("last_train_loss")),
                            _fraction(checkpoint.get("last_train_accuracy")))
        state.first_loss = _finite(checkpoint.get("first_loss"))
        state.telemetry = TelemetryHistory.from_checkpoint(checkpoint.get("telemetry"),
                                                           max_step=state.step)
        state.curves = RunLog.from_checkpoint(checkpoint.get("curves"), state.step)
        _restore_rng(checkpoint["rng"], device)
        return state


def _whole(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{value!r} is not a whole number from {low} to {high}")
    return value


def _finite(value: Any) -> float:
    """A saved float, where NaN means "not measured"; infinities and non-numbers are damage."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isinf(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _fraction(value: Any) -> float:
    number = _finite(value)
    if not (math.isnan(number) or 0.0 <= number <= 1.0):
        raise ValueError(f"{value!r} is not between 0 and 1")
    return number


def _order(saved: Any, num_train: int) -> torch.Tensor | None:
    """The saved data order, which must be a permutation of the training set."""
    if saved is None:
        return None
    if not isinstance(saved, torch.Tensor) or saved.dtype != torch.int64 \
            or tuple(saved.shape) != (num_train,):
        raise ValueError("the data order is not one index per training image")
    if not torch.equal(torch.sort(saved).values, torch.arange(num_train)):
        raise ValueError("the data order is not a permutation of the training set")
    return saved


def _restore_rng(rng: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    cuda_states = rng.get("cuda") or []
    if device.type == "cuda" and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
