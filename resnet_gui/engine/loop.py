"""One training run as an object: set-up, one step, one epoch, evaluation, checkpointing and
reports, each a method.

Where new things go:
- a per-step hook (telemetry, say): append it to ``loop.step_hooks``; it runs after every
  optimizer step, with the gradients still in place (see :meth:`TrainingLoop.train_step`);
- several processes (:mod:`resnet_gui.engine.distributed`): ``loop.world`` wraps the network
  in DDP (:meth:`TrainingLoop._wrap_model`), gives each process its share of every batch
  (:meth:`TrainingLoop.train_step`), sums the metrics and agrees on stop and pause; a world of
  one does none of it.

The :class:`~resnet_gui.engine.trainer.Trainer` is the public handle (stop, pause, probe,
evaluate); it builds a loop for each :meth:`~resnet_gui.engine.trainer.Trainer.run`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, clips_gradients
from resnet_gui.arch.serialize import dumps
from resnet_gui.engine.allocator import keep_freed_memory
from resnet_gui.engine.batchnorm import recompute_statistics, training_batches
from resnet_gui.engine.checkpoint import damaged, save_checkpoint, unwrap
from resnet_gui.engine.data import (
    BatchMaker,
    DataBundle,
    augment_generator,
    derive_seed,
    epoch_order,
)
from resnet_gui.engine.distributed import current_world
from resnet_gui.engine.device import (
    channels_last_is_safe,
    configure_backends,
    free_accelerator_memory,
    is_out_of_memory,
    synchronize,
)
from resnet_gui.engine.events import EpochEnd, Evaluation, StepEnd, TrainEnd, TrainStart
from resnet_gui.engine.growth import (
    GROWN_KEY,
    growth_history,
    restore_optimizer,
    warmup_after_growth,
)
from resnet_gui.engine.run_state import RunningSums, RunState
from resnet_gui.engine.schedule import (
    LearningRatePlan,
    initialise,
    make_optimizer,
    set_learning_rate,
    steps_in_epoch,
)
from resnet_gui.engine.stem_order import pool_before_relu
from resnet_gui.engine.tiny_maps import matmul_for_tiny_maps
from resnet_gui.engine.trained import PREPROCESSING_KEY, Preprocessing
from resnet_gui.engine.verdict import RunOutcome, Verdict, chance_accuracy, judge
from resnet_gui.engine.weights import prepare_for_training
from resnet_gui.errors import TrainingError

if TYPE_CHECKING:
    from resnet_gui.engine.trainer import Trainer

WARMUP_STEPS = 2  # excluded from examples/s: allocator, autotuning and compilation settle
OOM_FLOOR = 8  # the smallest batch an out-of-memory retry goes down to
PENDING_LOSSES_ON_GPU = 32  # losses read back in bunches on an accelerator
PRECISE_BN_PURPOSE = 3  # derive_seed's purposes: 1 the epoch order, 2 augmentation

StepHook = Callable[["TrainingLoop"], None]


class LossWatch:
    """Losses not yet checked for finiteness, with (epoch, batch, lr) of their step; read every
    step on the CPU, where reading is free, and in bunches on an accelerator."""

    def __init__(self, device: torch.device, diverged: Callable[..., Exception]) -> None:
        self.every_step = device.type == "cpu"
        self.diverged = diverged
        self.last_finite: float | None = None
        self._losses: list[torch.Tensor] = []
        self._where: list[tuple[int, int, float]] = []

    def add(self, loss: torch.Tensor, epoch: int, batch: int, lr: float) -> None:
        self._losses.append(loss.detach())
        self._where.append((epoch, batch, lr))
        self.check(force=False)

    def check(self, force: bool) -> None:
        """Raise the divergence error of the first non-finite loss."""
        if not self._losses or not (force or self.every_step
                                    or len(self._losses) >= PENDING_LOSSES_ON_GPU):
            return
        values = torch.stack(self._losses).float().cpu().numpy()
        where = list(self._where)
        self._losses.clear()
        self._where.clear()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size == 0:
            self.last_finite = float(values[-1])
            return
        index = int(bad[0])
        if index > 0:
            self.last_finite = float(values[index - 1])
        raise self.diverged(float(values[index]), *where[index], self.last_finite)


class Timing:
    """Examples and seconds of timed steps, for the run and for the current epoch."""

    def __init__(self) -> None:
        self.steps = 0  # steps taken by this process (the first WARMUP_STEPS are not timed)
        self.seconds, self.examples = 0.0, 0
        self.epoch_seconds, self.epoch_examples = 0.0, 0
        self.epoch_started = time.perf_counter()

    def add(self, seconds: float, examples: int) -> None:
        self.steps += 1
        if self.steps > WARMUP_STEPS:
            self.seconds += seconds
            self.examples += examples
            self.epoch_seconds += seconds
            self.epoch_examples += examples

    def throughput(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else math.nan

    def epoch_throughput(self) -> float:
        return self.epoch_examples / self.epoch_seconds if self.epoch_seconds > 0 else math.nan

    def next_epoch(self) -> float:
        """Seconds the epoch took, and a fresh epoch count."""
        now = time.perf_counter()
        seconds, self.epoch_started = now - self.epoch_started, now
        self.epoch_seconds, self.epoch_examples = 0.0, 0
        return seconds


class TrainingLoop:
    """One run of ``trainer``: its network, optimizer and :class:`RunState`, built at set-up
    (and restored from ``checkpoint`` when resuming)."""

    def __init__(self, trainer: Trainer, arch: Architecture, recipe: Recipe, data: DataBundle,
                 checkpoint: dict[str, Any] | None) -> None:
        self.trainer, self.arch, self.recipe, self.data = trainer, arch, recipe, data
        self.num_train = data.num_train
        self.checkpoint_path: Path | None = trainer.checkpoint_path
        self.step_hooks: list[StepHook] = []
        self.world = current_world()
        self.reason = "completed"
        self.started = time.perf_counter()
        self._set_up_device()
        self._set_up_model()
        self._set_up_optimizer()
        self.state = RunState(self.device, recipe.batch_size)
        self.grown: list[dict[str, Any]] = []  # the run's growths (engine/growth.py)
        if checkpoint is not None:
            self.restore(checkpoint)
        self.world.seed_process(recipe.seed, self.state.step)
        self._set_up_fast_paths()
        self.window = RunningSums(self.device)  # the steps since the last report
        self.losses = LossWatch(self.device, trainer.diverged)
        self.timing = Timing()
        self.last_report = 0.0

    # -- set-up -----------------------------------------------------------------------------

    def _set_up_device(self) -> None:
        self.placement = self.trainer.placement
        self.device = self.placement.device
        configure_backends(self.device)

    def _set_up_model(self) -> None:
        """The network, seeded, initialised and placed; batches are cut where its data is."""
        torch.manual_seed(self.recipe.seed)
        model = self.trainer.build_network()
        initialise(model, self.recipe.init, self.recipe.zero_init_last)
        started_from = prepare_for_training(model, self.arch, self.recipe,
                                            load=self.trainer.resume_from is None)
        if started_from:
            self.trainer.notice(started_from)
        self.channels_last = self.recipe.channels_last and channels_last_is_safe(model,
                                                                                  self.device)
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(device=self.device, memory_format=memory_format)
        self.trainer.model = self.trainer._run_model = self.model
        self.device_data = self.trainer._device_data = self._place_data()
        self.maker = self.trainer._maker = BatchMaker.for_bundle(
            self.device_data, self.recipe, self.device, self.channels_last)
        self.augment_device = self.device_data.train_images.device

    def _set_up_optimizer(self) -> None:
        self.optimizer = make_optimizer(self.model, self.recipe)
        self.plan = LearningRatePlan(self.recipe)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.placement.uses_scaler)
        self.loss_function = nn.CrossEntropyLoss(label_smoothing=self.recipe.label_smoothing)

    def _set_up_fast_paths(self) -> None:
        """torch.compile when asked for; on CUDA, a graph of the training forward and
        backward for full batches (at small batches kernel launches set the pace)."""
        self.train_model = self._wrap_model(self.model)
        self.compiled_steps = 0
        # The uncompiled, ungraphed step: the network's own forward alone (a CUDA graph later
        # replaces its forward attribute), or its DDP wrapper, which syncs the gradients.
        self.eager_forward = self.model.forward if self.world.alone else self.step_model
        # Set by a step hook for the next step: run it with the plain module, whose module
        # hooks run (they do not inside a CUDA graph or a compiled forward).
        self.eager_step = False
        self.graphed_batch: tuple[int, ...] | None = None
        if self.device.type == "cuda" and not self.recipe.compile and self.trainer.cuda_graphs \
                and self.world.alone:
            self.graphed_batch = self.trainer._capture_cuda_graph(
                self.model, self.maker, self.device_data, self.state.batch_size)

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        """The module the steps call: the network itself, or a compiled or distributed
        wrapper around it (``step_model``: the network or its DDP wrapper, uncompiled).
        Checkpoints always save the unwrapped network."""
        self.step_model = self.world.wrap(model, self.device)
        return torch.compile(self.step_model) if self.recipe.compile else self.step_model

    def _place_data(self) -> DataBundle:
        if self.device.type == "cpu":
            return self.data
        try:
            return self.data.to(self.device)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            free_accelerator_memory(self.device)
            self.trainer.notice(f"the dataset does not fit in {self.device} memory, so batches "
                                "travel from the computer's memory (slower)")
            return self.data

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint_payload(self) -> dict[str, Any]:
        state = self.state
        progress = state.epoch + state.position / max(self.num_train, 1)
        return {
            "architecture": dumps(self.arch),
            "recipe": self.recipe.to_dict(),
            "class_names": list(self.data.class_names),
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.plan.state_dict(progress),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "num_train": self.num_train,
            PREPROCESSING_KEY: Preprocessing.from_bundle(self.data, self.recipe).to_dict(),
            GROWN_KEY: self.grown,
            **state.to_checkpoint(),
        }

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Weights, optimizer, scaler and run state from ``checkpoint``, as a whole."""
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.grown = growth_history(checkpoint)
            restore_optimizer(self.optimizer, checkpoint)  # fresh after a growth
            if checkpoint.get("scaler"):
                self.scaler.load_state_dict(checkpoint["scaler"])
            self.state = RunState.from_checkpoint(checkpoint, self.device, self.recipe,
                                                  self.num_train)
        except torch.cuda.OutOfMemoryError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError,
                RuntimeError) as error:  # a damaged file, or one written by hand
            raise damaged(self.trainer.resume_from, "is damaged: its training state cannot be "
                          f"restored ({type(error).__name__})") from None

    def save(self) -> str | None:
        """Save the checkpoint (when the run has a path; rank 0 alone, of several processes);
        the path saved, or None."""
        if self.checkpoint_path is None:
            return None
        if self.world.is_main:
            save_checkpoint(self.checkpoint_path, self.checkpoint_payload())
        return str(self.checkpoint_path)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> TrainEnd:
        self.trainer.emit("on_train_start", start_event(self))
        with self._cpu_kernels():
            while self.state.epoch < self.recipe.epochs and self.reason == "completed":
                self.train_epoch()
                if self.reason == "completed":
                    self.end_epoch()
        return self.finish()

    def _cpu_kernels(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cpu" and not self.recipe.compile:
            return cpu_training_kernels(self.model)
        return contextlib.nullcontext()

    def _epoch_order(self) -> torch.Tensor:
        """This epoch's order of training examples, on the device batches are cut on."""
        if self.state.order is None:
            self.state.order = epoch_order(self.num_train, self.recipe.seed, self.state.epoch)
        return self.state.order.to(self.augment_device)

    def train_epoch(self) -> None:
        """Steps until the epoch's end, or until Stop or ``max_steps`` set ``reason``."""
        state, order = self.state, self._epoch_order()
        while state.position < self.num_train:
            stop, pause = self.world.agree(self.trainer.stop_requested, self.trainer.paused,
                                           state.step)
            self.reason = self._interruption(stop)
            if self.reason != "completed":
                return
            if pause:
                self._wait_while_paused()
                continue
            take = min(state.batch_size, self.num_train - state.position)
            if take < self.world.smallest_batch and state.position > 0:
                state.position = self.num_train  # too few for a last batch: see steps_in_epoch
                return
            self.train_step(order[state.position:state.position + take])

    def _interruption(self, stop: bool) -> str:
        max_steps = self.recipe.max_steps
        if max_steps is not None and self.state.step >= max_steps:
            return "max_steps"
        return "stopped" if stop else "completed"

    def _wait_while_paused(self) -> None:
        self.report(force=True)
        self.world.wait_while_paused(self.trainer)

    def train_step(self, index: torch.Tensor) -> None:
        """One optimizer step on the examples at ``index`` (this process's share of them, of
        several). A step that ran out of memory or could not compile is retried by the epoch
        loop (smaller, or uncompiled)."""
        started = time.perf_counter()
        share = self.world.share(len(index))
        labels = self.device_data.train_labels[index[share]]
        try:
            logits, loss, lr = self._forward_backward(index, share, labels)
        except Exception as error:
            self._recover(error)
            return
        state, take = self.state, len(index)
        correct = (logits.detach().argmax(dim=1) == labels).sum()
        loss, correct = self.world.step_totals(loss, correct, len(labels), take)
        self.compiled_steps += self.train_model is not self.step_model and not self.eager_step
        state.step += 1
        state.position += take
        state.batch_in_epoch += 1
        self.window.add(loss, correct, take)
        state.sums.add(loss, correct, take)
        self.losses.add(loss, state.epoch, state.batch_in_epoch, lr)
        for hook in self.step_hooks:
            hook(self)
        last = (state.position >= self.num_train - 1
                or (self.recipe.max_steps is not None and state.step >= self.recipe.max_steps))
        if last:
            synchronize(self.device)
        self.report(force=last)
        self.timing.add(time.perf_counter() - started, take)

    def _forward_backward(self, index: torch.Tensor, share: slice, labels: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, float]:
        state, recipe = self.state, self.recipe
        generator = (augment_generator(recipe.seed, state.step, self.augment_device)
                     if recipe.augment else None)
        part = None if self.world.alone else (share.start, len(index))
        inputs = self.maker(self.device_data.train_images[index[share]], generator, part)
        progress = state.epoch + state.position / self.num_train
        lr = self.plan.lr(progress) * warmup_after_growth(self.grown, progress)
        set_learning_rate(self.optimizer, lr)
        # Autocast's weight cache cannot live across graph replays.
        with self.placement.autocast(cache_enabled=self.graphed_batch is None):
            if not self.eager_step and (self.graphed_batch is None
                                        or tuple(inputs.shape) == self.graphed_batch):
                logits = self.train_model(inputs)
            else:  # asked for, or a smaller last batch: the graph holds fixed shapes
                logits = self.eager_forward(inputs)
        loss = self.loss_function(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        weight = self.world.gradient_weight(len(labels), len(index))
        self.scaler.scale(loss if weight == 1 else loss * weight).backward()
        if clips_gradients(recipe):
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), recipe.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return logits, loss, lr

    def _recover(self, error: Exception) -> None:
        """Go on without torch.compile after it failed, or at a smaller batch after running
        out of memory; re-raise anything else."""
        if self.train_model is not self.step_model and not self.compiled_steps:
            # No compiler on this machine, or an op inductor cannot handle: the run goes on
            # as it would have without --compile.
            self.trainer.notice(f"torch.compile failed ({type(error).__name__}); training "
                                "without it")
            self.train_model = self.step_model
            return
        if not is_out_of_memory(error):
            raise error
        if not self.world.alone:  # every process would have to agree on the smaller batch
            raise TrainingError(f"{self.device} ran out of memory at a global batch of "
                                f"{self.state.batch_size} ({self.world.describe()}); give a "
                                "smaller --batch-size")
        del error  # its traceback holds the failed step's tensors
        if self.graphed_batch is not None:  # the graph holds the larger batch's memory
            self.trainer.release_graph()
            self.graphed_batch = None
        self.state.batch_size = self._smaller_batch(self.state.batch_size)

    def _smaller_batch(self, batch_size: int) -> int:
        self.optimizer.zero_grad(set_to_none=True)
        free_accelerator_memory(self.device)
        floor = min(OOM_FLOOR, self.recipe.batch_size)
        smaller = batch_size // 2
        if smaller < floor:
            raise TrainingError(
                f"{self.device} ran out of memory even at batch size {batch_size}; use a "
                "smaller network, a smaller --resize, or --device cpu")
        self.trainer.notice(f"{self.device} ran out of memory at batch size {batch_size}; "
                            f"continuing at {smaller}")
        self.trainer._eval_batch = min(self.trainer._eval_batch, smaller)
        return smaller

    # -- reports, epoch end and run end ------------------------------------------------------

    def report(self, force: bool) -> None:
        """A StepEnd for the steps since the last one, at most every ``report_interval``."""
        now = time.perf_counter()
        if self.window.seen == 0 or not (
                force or now - self.last_report >= self.trainer.report_interval):
            return
        self.losses.check(force=True)
        loss, accuracy = self.window.means()
        if math.isnan(self.state.first_loss):
            self.state.first_loss = loss
        self.window.reset()
        self.last_report = now
        state = self.state
        event = StepEnd(
            epoch=state.epoch, step=state.step, batch=state.batch_in_epoch,
            epoch_progress=state.epoch + state.position / max(self.num_train, 1), loss=loss,
            accuracy=accuracy, lr=self._lr(), examples_per_sec=self.timing.throughput())
        state.curves.add_step(event)
        self.trainer.emit("on_batch_end", event)

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def evaluate(self) -> Evaluation:
        """The test set, after recomputing batch-norm statistics where the plan asks for it
        (in eval mode the network normalises with them)."""
        if self.recipe.precise_bn:
            generator = torch.Generator().manual_seed(
                derive_seed(self.recipe.seed, PRECISE_BN_PURPOSE, self.state.epoch))
            order = torch.randperm(self.num_train, generator=generator)
            recompute_statistics(self.model, training_batches(
                self.device_data.train_images, order, self.maker, self.state.batch_size),
                self._eval_forward)
        return self.world.evaluate(self.trainer, self.model)

    def _eval_forward(self, inputs: torch.Tensor) -> torch.Tensor:
        with self.placement.autocast(cache_enabled=self.graphed_batch is None):
            return self.eager_forward(inputs)

    def end_epoch(self) -> None:
        """Evaluate, probe, report the epoch, then save the checkpoint that claims it (a
        listener's record of the epoch comes first, so no checkpoint is ahead of the log)."""
        self.report(force=True)
        self.losses.check(force=True)
        state = self.state
        state.last_train = state.sums.means()
        evaluation = self.evaluate()
        state.last_test_accuracy = evaluation.accuracy
        probe = self.trainer.compute_probe()
        finished_epoch = state.epoch
        state.start_next_epoch()
        throughput = self.timing.epoch_throughput()
        seconds = self.timing.next_epoch()
        event = EpochEnd(
            epoch=finished_epoch, step=state.step, train_loss=state.last_train[0],
            train_accuracy=state.last_train[1], test_loss=evaluation.loss,
            test_accuracy=evaluation.accuracy, lr=self._lr(),
            seconds=seconds, examples_per_sec=throughput, evaluation=evaluation,
            probe=probe, checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None)
        state.curves.add_epoch(event)
        self.trainer.emit("on_epoch_end", event)
        self.save()

    def finish(self) -> TrainEnd:
        """The run's end: a stopped or bounded run is evaluated (bounded) and saved."""
        self.report(force=True)
        self.losses.check(force=True)
        state, saved, message = self.state, None, ""
        if self.reason in ("stopped", "max_steps"):
            if state.sums.seen:
                state.last_train = state.sums.means()
            if self.reason == "max_steps" and state.sums.seen:
                # A bounded run ends with a result: evaluate the weights it leaves.
                state.last_test_accuracy = self.evaluate().accuracy
            saved = self.save()
            message = (f"stopped after {state.step} steps" if self.reason == "stopped"
                       else f"reached --max-steps {self.recipe.max_steps}")
            if saved:
                message += f"; the checkpoint {saved} resumes it"
        elif self.checkpoint_path is not None and self.checkpoint_path.exists():
            saved = str(self.checkpoint_path)
        verdict = self.verdict()
        return TrainEnd(
            reason=self.reason, epoch=state.epoch, step=state.step,
            train_loss=state.last_train[0], train_accuracy=state.last_train[1],
            test_accuracy=state.last_test_accuracy,
            examples_per_sec=self.timing.throughput(),
            seconds=time.perf_counter() - self.started, checkpoint=saved, message=message,
            learned=None if verdict is None else verdict.learned,
            verdict="" if verdict is None else verdict.message)

    def verdict(self) -> Verdict | None:
        """Whether the network learned, for a run that ran its plan or its step bound and
        was evaluated; None for a stopped run (the user ended it: no judgement)."""
        evaluation = self.trainer.last_evaluation
        if self.reason not in ("completed", "max_steps") or evaluation is None:
            return None
        data, state = self.device_data, self.state
        return judge(RunOutcome(
            test_accuracy=evaluation.accuracy, test_loss=evaluation.loss,
            train_loss=state.last_train[0], first_loss=state.first_loss,
            chance=chance_accuracy(data.test_labels.cpu().numpy(), data.num_classes),
            steps=state.step, lr=self.recipe.lr, batch_size=state.batch_size))


def start_event(loop: TrainingLoop) -> TrainStart:
    """What a run starting (or resuming) tells its listeners: its plan, data and machine."""
    data, state, device = loop.data, loop.state, loop.device
    steps_per_epoch = steps_in_epoch(loop.num_train, state.batch_size,
                                     loop.world.smallest_batch)
    index = device.index if device.index is not None else (
        torch.cuda.current_device() if device.type == "cuda" else None)
    return TrainStart(
        epochs=loop.recipe.epochs, steps_per_epoch=steps_per_epoch,
        total_steps=loop.recipe.epochs * steps_per_epoch, start_epoch=state.epoch,
        start_step=state.step,
        device=f"cuda:{index}" if device.type == "cuda" else str(device),
        precision=loop.placement.precision, batch_size=state.batch_size,
        num_train=loop.num_train, num_test=data.num_test,
        class_names=tuple(data.class_names),
        input_shape=tuple(int(v) for v in (data.channels,
                                           *loop.maker.output_size(data.image_size))),
        architecture=loop.arch.name, recipe=loop.recipe.to_dict(),
        processes=loop.world.size)


def cpu_training_kernels(model: nn.Module) -> contextlib.ExitStack:
    """On the CPU, the same functions computed faster while training ``model``: 3x3
    convolutions over small maps partly as matrix products, the stem's pool before its ReLU,
    and freed memory kept for the next step (tiny_maps, stem_order, allocator)."""
    kernels = contextlib.ExitStack()
    kernels.enter_context(matmul_for_tiny_maps(model))
    kernels.enter_context(pool_before_relu(model))
    kernels.enter_context(keep_freed_memory())
    return kernels
