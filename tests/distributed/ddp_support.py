"""Runs of the real trainer on two gloo processes over loopback, started by torchrun's agent
(``elastic_launch``, what ``torchrun --standalone`` runs) with a function as each process's
program. Each process returns what it saw, as plain numpy and numbers."""

from __future__ import annotations

import threading
import time
from typing import Any

import torch
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from resnet_gui.engine import distributed
from resnet_gui.engine.events import Callback, EpochEnd, StepEnd, TrainEnd
from resnet_gui.engine.trainer import Trainer
from tests.engine.test_trainer import TINY, recipe, tiny_data


PAUSE_SECONDS = 1.0


def launch_two(function, *args: Any) -> dict[int, Any]:
    """``function(*args)`` on two processes; their return values by rank."""
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, run_id="test",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          start_method="spawn")
    return elastic_launch(config, function)(*args)


class Steps(Callback):
    """The step events a process saw; ``on_step`` runs at each."""

    def __init__(self, on_step=None) -> None:
        self.steps: list[tuple[StepEnd, float]] = []  # with the moment each came
        self.epochs: list[EpochEnd] = []
        self.end: TrainEnd | None = None
        self.on_step = on_step

    def on_batch_end(self, event: StepEnd) -> None:
        self.steps.append((event, time.monotonic()))
        if self.on_step is not None:
            self.on_step(event)

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.epochs.append(event)

    def on_train_end(self, event: TrainEnd) -> None:
        self.end = event


def train_tiny(checkpoint: str, steer_rank_1: bool = False) -> dict[str, Any]:
    """Train TINY for two epochs as one of the processes. With ``steer_rank_1``, rank 1 alone
    pauses after step 2 (resuming PAUSE_SECONDS later) and asks for a stop after step 4."""
    torch.set_num_threads(1)
    world = distributed.join("cpu")
    trainer: Trainer | None = None
    held = []  # the pauses this process went through
    wait = distributed.World.wait_while_paused

    def recorded_wait(self, trainer_waiting) -> None:
        held.append(time.monotonic())
        wait(self, trainer_waiting)

    distributed.World.wait_while_paused = recorded_wait

    def steer(event: StepEnd) -> None:
        if not steer_rank_1 or world.rank != 1:
            return
        if event.step == 2:
            trainer.pause()
            threading.Timer(PAUSE_SECONDS, trainer.resume).start()
        elif event.step == 4:
            trainer.request_stop()

    seen = Steps(steer)
    trainer = Trainer(TINY, recipe(epochs=2, batch_size=15, augment=True), callbacks=[seen],
                      checkpoint_path=checkpoint if world.is_main else None, data=tiny_data())
    trainer.report_interval = 0.0
    try:
        end = trainer.run()
        same = world.same_everywhere(trainer.model)
    finally:
        distributed.leave()
    return {
        "rank": world.rank, "size": world.size, "end": end, "same": same, "held": len(held),
        "weights": {name: value.detach().numpy().copy()
                    for name, value in trainer.model.state_dict().items()},
        "steps": [(event.step, event.loss, moment) for event, moment in seen.steps],
        "epochs": [(event.train_loss, event.test_loss, event.test_accuracy)
                   for event in seen.epochs],
        "confusion": trainer.last_evaluation.confusion if trainer.last_evaluation else None,
    }
