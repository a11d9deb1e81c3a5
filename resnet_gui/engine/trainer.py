"""The training loop: fast on a laptop CPU and on a GPU, and it never loses a run.

A plain loop with callbacks (see :mod:`resnet_gui.engine.events`). Batches come from our own
seeded index order over tensors in memory, and augmentation from a generator seeded by the
step, so a run resumed from any checkpoint (an epoch end, or a Stop in the middle of an epoch)
repeats the uninterrupted run bit for bit on the CPU. Stop and pause are ``threading.Event``
objects checked at every batch, safe to set from any thread.

The learning-rate plan is a function of progress in epochs, not of a step count, so it
survives a smaller batch after running out of GPU memory, and a resume, unchanged.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnet_gui.engine.analysis import Analysis, analyse
from resnet_gui.engine.checkpoint import (
    architecture_differences,
    checkpoint_architecture,
    damaged,
    load_checkpoint,
    mismatch_message,
    save_checkpoint,
    unwrap,
)
from resnet_gui.engine.data import (
    BatchMaker,
    DataBundle,
    augment_generator,
    epoch_order,
    load_data,
)
from resnet_gui.engine.device import (
    Placement,
    channels_last_is_safe,
    configure_backends,
    free_accelerator_memory,
    is_out_of_memory,
    placement_for,
    synchronize,
)
from resnet_gui.engine.events import (
    Callback,
    EpochEnd,
    Evaluation,
    FeatureProbe,
    StepEnd,
    TrainEnd,
    TrainStart,
)
from resnet_gui.engine.growth import (
    GROWN_KEY,
    growth_history,
    restore_optimizer,
    warmup_after_growth,
)
from resnet_gui.engine.inspect import evaluate_model, probe_test_image
from resnet_gui.engine.memory import require_memory_to_train
from resnet_gui.engine.model import build_model
from resnet_gui.engine.trained import PREPROCESSING_KEY, Preprocessing
from resnet_gui.engine.weights import parameter_groups, prepare_for_training
from resnet_gui.errors import CheckpointError, TrainingError, UserError
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, validate_recipe
from resnet_gui.arch.serialize import dumps

EVENTS_PER_SECOND = 30
WARMUP_STEPS = 2  # excluded from examples/s: allocator, autotuning and compilation settle
OOM_FLOOR = 8  # the smallest batch an out-of-memory retry goes down to
ONECYCLE_START = 1 / 25  # one-cycle starts and ends at these fractions of the peak rate
ONECYCLE_END = 1 / 2500
WARMUP_START = 0.01

# Settings that belong to the machine, not to the plan: a resumed run takes these from the
# caller and everything else from the checkpoint.
MACHINE_SETTINGS = ("data_dir", "device", "precision", "channels_last", "compile", "max_steps")


class DivergedError(TrainingError):
    """The loss became NaN or infinite."""

    def __init__(self, message: str, epoch: int, batch: int, last_finite_loss: float | None):
        super().__init__(message)
        self.epoch, self.batch, self.last_finite_loss = epoch, batch, last_finite_loss


def fit_architecture(arch: Architecture, data: DataBundle, recipe: Recipe) -> Architecture:
    """The architecture with the data's channels and classes and the input size it will see."""
    size = (recipe.resize, recipe.resize) if recipe.resize else data.image_size
    changes = {}
    if arch.in_channels != data.channels:
        changes["in_channels"] = data.channels
    if arch.num_classes != data.num_classes:
        changes["num_classes"] = data.num_classes
    if tuple(arch.input_size) != tuple(size):
        changes["input_size"] = tuple(size)
    return arch.replace(**changes) if changes else arch


def check_batch_norm_batch(analysis: Analysis, batch_size: int, num_train: int) -> None:
    """Batch norm trains on at least two values per channel: a batch of one image fails at
    the first batch-norm layer whose maps are 1x1 (PyTorch raises mid-step)."""
    if min(batch_size, num_train) >= 2:
        return
    for row in analysis.leaves:
        if row.type.startswith("BatchNorm") and math.prod(row.output_shape[1:]) < 2:
            fix = ("use a batch size of 2 or more" if batch_size < 2
                   else "give at least 2 training images")
            raise TrainingError(f"a batch of one image cannot train {row.name}: batch norm needs "
                                f"two values per channel and its maps are 1x1; {fix}")


def initialise(model: nn.Module, init: str, zero_init_last: bool) -> None:
    """Xavier-uniform weights (the chapter's ``init_weights``) or the builder's Kaiming."""
    if init == "xavier":
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
    if zero_init_last and hasattr(model, "zero_init_last"):
        model.zero_init_last()


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD or AdamW; weight decay applies to weights, not to biases and batch-norm scales."""
    groups = parameter_groups(model, recipe)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


@dataclass(frozen=True)
class LearningRatePlan:
    """The learning rate as a function of progress in epochs (0 .. epochs)."""

    recipe: Recipe

    def factor(self, progress: float) -> float:
        r = self.recipe
        epochs = float(r.epochs)
        progress = min(max(progress, 0.0), epochs)
        if r.schedule == "onecycle":
            peak = r.warmup_epochs if r.warmup_epochs > 0 else 0.25 * epochs
            peak = min(peak, epochs)
            if progress < peak:
                t = progress / peak
                return ONECYCLE_START + (1 - ONECYCLE_START) * 0.5 * (1 - math.cos(math.pi * t))
            t = (progress - peak) / max(epochs - peak, 1e-12)
            return ONECYCLE_END + (1 - ONECYCLE_END) * 0.5 * (1 + math.cos(math.pi * t))
        warm = min(r.warmup_epochs, epochs)
        if progress < warm:
            return WARMUP_START + (1 - WARMUP_START) * progress / warm
        if r.schedule == "constant":
            return 1.0
        if r.schedule == "step":
            return r.step_gamma ** int(progress // r.step_every)
        t = (progress - warm) / max(epochs - warm, 1e-12)  # cosine
        return 0.5 * (1 + math.cos(math.pi * t))

    def lr(self, progress: float) -> float:
        return self.recipe.lr * self.factor(progress)

    def state_dict(self, progress: float) -> dict[str, Any]:
        return {"schedule": self.recipe.schedule, "base_lr": float(self.recipe.lr),
                "progress": float(progress)}


def steps_in_epoch(num_examples: int, batch_size: int) -> int:
    """Batches per epoch; a lone last example is dropped (batch norm cannot train on one)."""
    full, rest = divmod(num_examples, batch_size)
    return full + (1 if rest >= 2 or (rest == 1 and full == 0) else 0)


class _Window:
    """Running sums since the last report, kept as tensors: no device sync per batch."""

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


class Trainer:
    """Trains one architecture with one recipe; see the module docstring.

    ``model`` is the network (valid before, during and after :meth:`run`; touch it only when
    the run is not live). ``data`` may be given already loaded (the window loads it once);
    otherwise :meth:`run` loads it from the recipe.
    """

    def __init__(
        self,
        arch: Architecture,
        recipe: Recipe,
        callbacks: Sequence[Callback] = (),
        checkpoint_path: str | Path | None = None,
        resume_from: str | Path | None = None,
        data: DataBundle | None = None,
    ) -> None:
        self.arch = arch
        self.recipe = validate_recipe(recipe)
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.resume_from = Path(resume_from) if resume_from else None
        self.data = data
        if data is not None:
            self.arch = fit_architecture(arch, data, self.recipe)
        self._model: nn.Module | None = None  # built on first use: see the model property
        self._run_model: nn.Module | None = None
        self.placement: Placement | None = None
        self.last_evaluation: Evaluation | None = None
        self.notices: list[str] = []
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._probe_lock = threading.Lock()
        self._probe: tuple[str, int] | None = None
        self._maker: BatchMaker | None = None
        self._device_data: DataBundle | None = None
        self._eval_batch = 256
        # Seconds between StepEnd events (the last step always reports); 0 reports every step.
        self.report_interval = 1.0 / EVENTS_PER_SECOND
        # On CUDA, replay the network's forward and backward as a CUDA graph: at small batches
        # launching hundreds of kernels one by one, not the GPU, sets the pace.
        self.cuda_graphs = True
        self._graphed_model: nn.Module | None = None

    @property
    def model(self) -> nn.Module:
        """The network: the run's once it has started, else a fresh one built on first use
        (building allocates every weight, so a trainer that is only configured builds none)."""
        if self._model is None:
            self._model = build_model(self.arch)
        return self._model

    @model.setter
    def model(self, model: nn.Module) -> None:
        self._model = model

    @property
    def run_model(self) -> nn.Module | None:
        """The network the last :meth:`run` trained, or None where the run stopped before
        building one (bad data, a network refused as too large). Never builds anything, so
        it is safe from any thread once the run has ended."""
        return self._run_model

    # -- control from any thread ------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop at the next batch boundary (a paused run wakes up to stop)."""
        self._stop.set()
        self._unpaused.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def set_probe(self, layer: str | None, image_index: int = 0) -> None:
        """Ask for ``layer``'s feature maps of test image ``image_index`` at each epoch end."""
        with self._probe_lock:
            self._probe = None if layer is None else (layer, int(image_index))

    # -- events -----------------------------------------------------------------------------

    def _emit(self, hook: str, event: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(event)

    def notice(self, message: str) -> None:
        self.notices.append(message)
        for callback in self.callbacks:
            handler = getattr(callback, "on_notice", None)
            if handler is not None:
                handler(message)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> TrainEnd:
        """Train until the plan ends, Stop, or ``max_steps``; blocking.

        User problems (missing data, divergence, a full disk, a checkpoint of another network)
        raise a :class:`UserError` subclass after ``on_exception``.
        """
        try:
            return self._run()
        except BaseException as error:
            self._release_graph()
            if not isinstance(error, KeyboardInterrupt):
                for callback in self.callbacks:
                    try:
                        callback.on_exception(error)
                    except Exception:  # a failing listener must not hide the real error
                        pass
            raise

    def _run(self) -> TrainEnd:
        started = time.perf_counter()
        checkpoint = load_checkpoint(self.resume_from) if self.resume_from else None
        recipe = self.recipe
        if checkpoint is not None:
            recipe = self._resumed_recipe(checkpoint)
            self.recipe = recipe
        if self.data is None:
            self.data = load_data(recipe)
        data = self.data
        if data.notice:
            self.notice(data.notice)
        arch = fit_architecture(self.arch, data, recipe)
        if checkpoint is not None:
            self._check_fits(checkpoint, arch, data)
        self.arch = arch
        # Shapes and sizes first, on the meta device: an input too small for the network, or
        # a network too large for the machine, is one sentence, not a failure mid-allocation.
        analysis = analyse(arch)
        for warning in analysis.warnings:
            self.notice(warning)

        placement = self.placement = placement_for(recipe.device, recipe.precision)
        device = placement.device
        require_memory_to_train(analysis, recipe.batch_size, device, placement.precision)
        check_batch_norm_batch(analysis, recipe.batch_size, data.num_train)
        configure_backends(device)
        torch.manual_seed(recipe.seed)
        model = build_model(arch)
        initialise(model, recipe.init, recipe.zero_init_last)
        started_from = prepare_for_training(model, arch, recipe, load=checkpoint is None)
        if started_from:
            self.notice(started_from)
        channels_last = recipe.channels_last and channels_last_is_safe(model, device)
        memory_format = torch.channels_last if channels_last else torch.preserve_format
        model = model.to(device=device, memory_format=memory_format)
        self.model = self._run_model = model
        device_data = self._device_data = self._place_data(data, device)
        maker = self._maker = BatchMaker.for_bundle(device_data, recipe, device, channels_last)
        augment_device = device_data.train_images.device  # where batches are cut and augmented
        optimizer = make_optimizer(model, recipe)
        plan = LearningRatePlan(recipe)
        scaler = torch.amp.GradScaler(device.type, enabled=placement.uses_scaler)
        loss_function = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

        num_train = data.num_train
        epoch, position, batch_in_epoch, step = 0, 0, 0, 0
        batch_size = recipe.batch_size
        order: torch.Tensor | None = None
        epoch_sums = _Window(device)
        last_test_accuracy = float("nan")
        last_train = (float("nan"), float("nan"))
        grown: list[dict[str, Any]] = []  # the run's growths (engine/growth.py)
        if checkpoint is not None:
            try:
                model.load_state_dict(checkpoint["model"])
                grown = growth_history(checkpoint)
                restore_optimizer(optimizer, checkpoint)
                if checkpoint.get("scaler"):
                    scaler.load_state_dict(checkpoint["scaler"])
                epoch, position = int(checkpoint["epoch"]), int(checkpoint["position"])
                batch_in_epoch, step = int(checkpoint["batch_in_epoch"]), int(checkpoint["step"])
                batch_size = int(checkpoint.get("batch_size", batch_size))
                if min(epoch, position, batch_in_epoch, step, batch_size - 1) < 0:
                    raise ValueError("a negative position")
                saved_order = checkpoint.get("data_order")
                order = saved_order if isinstance(saved_order, torch.Tensor) else None
                sums = checkpoint.get("epoch_sums") or {}
                if sums:
                    epoch_sums.loss += sums["loss"].to(device)
                    epoch_sums.correct += sums["correct"].to(device)
                    epoch_sums.seen = int(sums["seen"])
                last_test_accuracy = float(checkpoint.get("last_test_accuracy", float("nan")))
                torch.set_rng_state(checkpoint["rng"]["torch"])
                cuda_states = checkpoint["rng"].get("cuda") or []
                if device.type == "cuda" and len(cuda_states) == torch.cuda.device_count():
                    torch.cuda.set_rng_state_all(cuda_states)
            except torch.cuda.OutOfMemoryError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError, IndexError,
                    RuntimeError) as error:  # a damaged file, or one written by hand
                raise damaged(self.resume_from, "is damaged: its training state cannot be "
                              f"restored ({type(error).__name__})") from None
        train_model = torch.compile(model) if recipe.compile else model
        compiled_steps = 0
        graphed_batch = None  # the batch shape whose forward and backward replay a CUDA graph
        eager_forward = model.forward
        if device.type == "cuda" and not recipe.compile and self.cuda_graphs:
            graphed_batch = self._capture_cuda_graph(model, maker, device_data, batch_size)

        steps_per_epoch = steps_in_epoch(num_train, batch_size)
        input_shape = (data.channels, *maker.output_size(data.image_size))
        self._emit("on_train_start", TrainStart(
            epochs=recipe.epochs, steps_per_epoch=steps_per_epoch,
            total_steps=recipe.epochs * steps_per_epoch, start_epoch=epoch, start_step=step,
            device=str(device) if device.type != "cuda" else
            f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}",
            precision=placement.precision, batch_size=batch_size, num_train=num_train,
            num_test=data.num_test, class_names=tuple(data.class_names),
            input_shape=tuple(int(v) for v in input_shape)))

        window = _Window(device)
        last_finite_loss: float | None = None
        timed_seconds, timed_examples, run_steps = 0.0, 0, 0
        epoch_timed_seconds, epoch_timed_examples = 0.0, 0
        last_report = 0.0
        epoch_started = time.perf_counter()
        reason = "completed"

        def state_payload(progress_epoch: int, at_position: int, at_batch: int,
                          current_order: torch.Tensor | None, sums: _Window) -> dict[str, Any]:
            return {
                "architecture": dumps(arch),
                "recipe": recipe.to_dict(),
                "model": unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": plan.state_dict(progress_epoch + at_position / max(num_train, 1)),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "epoch": progress_epoch,
                "position": at_position,
                "batch_in_epoch": at_batch,
                "step": step,
                "batch_size": batch_size,
                "num_train": num_train,
                "data_order": current_order.cpu() if current_order is not None else None,
                "epoch_sums": {"loss": sums.loss.cpu(), "correct": sums.correct.cpu(),
                               "seen": sums.seen} if sums.seen else None,
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else []},
                "last_test_accuracy": last_test_accuracy,
                PREPROCESSING_KEY: Preprocessing.from_bundle(data, recipe).to_dict(),
                GROWN_KEY: grown,
            }

        # Losses not yet checked for finiteness, with (epoch, batch, lr) of their step; read
        # every step on the CPU, where reading is free, and in bunches on a GPU.
        pending_losses: list[torch.Tensor] = []
        pending_steps: list[tuple[int, int, float]] = []

        def check_losses(force: bool) -> None:
            nonlocal last_finite_loss
            if not pending_losses or not (force or device.type == "cpu"
                                          or len(pending_losses) >= 32):
                return
            values = torch.stack(pending_losses).float().cpu().numpy()
            steps = list(pending_steps)
            pending_losses.clear()
            pending_steps.clear()
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size == 0:
                last_finite_loss = float(values[-1])
                return
            index = int(bad[0])
            if index > 0:
                last_finite_loss = float(values[index - 1])
            raise self._diverged(float(values[index]), *steps[index], last_finite_loss)

        def report(force: bool) -> None:
            nonlocal last_report
            now = time.perf_counter()
            if window.seen == 0 or not (force or now - last_report >= self.report_interval):
                return
            check_losses(force=True)
            loss, accuracy = window.means()
            window.reset()
            last_report = now
            self._emit("on_batch_end", StepEnd(
                epoch=epoch, step=step, batch=batch_in_epoch,
                epoch_progress=epoch + position / max(num_train, 1), loss=loss,
                accuracy=accuracy, lr=float(optimizer.param_groups[0]["lr"]),
                examples_per_sec=timed_examples / timed_seconds if timed_seconds > 0
                else float("nan")))

        while epoch < recipe.epochs and reason == "completed":
            if order is None:
                order = epoch_order(num_train, recipe.seed, epoch)
            device_order = order.to(augment_device)
            while position < num_train:
                if recipe.max_steps is not None and step >= recipe.max_steps:
                    reason = "max_steps"
                    break
                if self._stop.is_set():
                    reason = "stopped"
                    break
                if not self._unpaused.is_set():
                    report(force=True)
                    while not self._unpaused.wait(0.05) and not self._stop.is_set():
                        pass
                    continue
                take = min(batch_size, num_train - position)
                if take == 1 and position > 0:  # a lone last example: see steps_in_epoch
                    position = num_train
                    break
                step_started = time.perf_counter()
                index = device_order[position:position + take]
                labels = device_data.train_labels[index]
                try:
                    generator = (augment_generator(recipe.seed, step, augment_device)
                                 if recipe.augment else None)
                    inputs = maker(device_data.train_images[index], generator)
                    progress = epoch + position / num_train
                    lr = plan.lr(progress) * warmup_after_growth(grown, progress)
                    for group in optimizer.param_groups:
                        group["lr"] = lr * group.get("lr_scale", 1.0)
                    # Autocast's weight cache cannot live across graph replays.
                    with placement.autocast(cache_enabled=graphed_batch is None):
                        if graphed_batch is None or tuple(inputs.shape) == graphed_batch:
                            logits = train_model(inputs)
                        else:  # a smaller last batch: the graph holds fixed shapes
                            logits = eager_forward(inputs)
                    loss = loss_function(logits.float(), labels)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if recipe.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                except Exception as error:
                    if train_model is not model and not compiled_steps:
                        # No compiler on this machine, or an op inductor cannot handle: the
                        # run goes on as it would have without --compile.
                        self.notice(f"torch.compile failed ({type(error).__name__}); training "
                                    "without it")
                        train_model = model
                        continue
                    if not is_out_of_memory(error):
                        raise
                    del error  # its traceback holds the failed step's tensors
                    if graphed_batch is not None:  # the graph holds the larger batch's memory
                        self._release_graph()
                        graphed_batch = None
                    batch_size = self._smaller_batch(batch_size, device, optimizer)
                    continue
                correct = (logits.detach().argmax(dim=1) == labels).sum()
                compiled_steps += train_model is not model
                step += 1
                run_steps += 1
                position += take
                batch_in_epoch += 1
                window.add(loss, correct, take)
                epoch_sums.add(loss, correct, take)
                pending_losses.append(loss.detach())
                pending_steps.append((epoch, batch_in_epoch, lr))
                check_losses(force=False)
                last_of_epoch = position >= num_train or (num_train - position == 1)
                last_of_run = recipe.max_steps is not None and step >= recipe.max_steps
                if last_of_epoch or last_of_run:
                    synchronize(device)
                report(force=last_of_epoch or last_of_run)
                if run_steps > WARMUP_STEPS:
                    elapsed = time.perf_counter() - step_started
                    timed_seconds += elapsed
                    timed_examples += take
                    epoch_timed_seconds += elapsed
                    epoch_timed_examples += take
            if reason != "completed":
                break
            # -- epoch end ------------------------------------------------------------------
            report(force=True)
            check_losses(force=True)
            last_train = epoch_sums.means()
            evaluation = self.evaluate()
            last_test_accuracy = evaluation.accuracy
            probe = self._compute_probe()
            epoch += 1
            position, batch_in_epoch, order = 0, 0, None
            epoch_sums.reset()
            saved = None
            if self.checkpoint_path is not None:
                save_checkpoint(self.checkpoint_path,
                                state_payload(epoch, 0, 0, None, epoch_sums))
                saved = str(self.checkpoint_path)
            now = time.perf_counter()
            self._emit("on_epoch_end", EpochEnd(
                epoch=epoch - 1, step=step, train_loss=last_train[0],
                train_accuracy=last_train[1], test_loss=evaluation.loss,
                test_accuracy=evaluation.accuracy, lr=float(optimizer.param_groups[0]["lr"]),
                seconds=now - epoch_started,
                examples_per_sec=epoch_timed_examples / epoch_timed_seconds
                if epoch_timed_seconds > 0 else float("nan"),
                evaluation=evaluation, probe=probe, checkpoint=saved))
            epoch_started = now
            epoch_timed_seconds, epoch_timed_examples = 0.0, 0

        report(force=True)
        check_losses(force=True)
        saved = None
        message = ""
        if reason in ("stopped", "max_steps"):
            if epoch_sums.seen:
                last_train = epoch_sums.means()
            if reason == "max_steps" and epoch_sums.seen:
                # A bounded run ends with a result: evaluate the weights it leaves.
                last_test_accuracy = self.evaluate().accuracy
            if self.checkpoint_path is not None:
                save_checkpoint(self.checkpoint_path, state_payload(
                    epoch, position, batch_in_epoch, order, epoch_sums))
                saved = str(self.checkpoint_path)
            message = (f"stopped after {step} steps" if reason == "stopped"
                       else f"reached --max-steps {recipe.max_steps}")
            if saved:
                message += f"; the checkpoint {saved} resumes it"
        elif self.checkpoint_path is not None and self.checkpoint_path.exists():
            saved = str(self.checkpoint_path)
        end = TrainEnd(
            reason=reason, epoch=epoch, step=step, train_loss=last_train[0],
            train_accuracy=last_train[1], test_accuracy=last_test_accuracy,
            examples_per_sec=timed_examples / timed_seconds if timed_seconds > 0
            else float("nan"),
            seconds=time.perf_counter() - started, checkpoint=saved, message=message)
        self._release_graph()
        self._emit("on_train_end", end)
        return end

    def _release_graph(self) -> None:
        """Give the model back its eager forward (and free the graph's static memory)."""
        model, self._graphed_model = self._graphed_model, None
        if model is not None:
            model.__dict__.pop("forward", None)

    # -- pieces of the run ------------------------------------------------------------------

    def _capture_cuda_graph(self, model: nn.Module, maker: BatchMaker, data: DataBundle,
                            batch_size: int) -> tuple[int, ...] | None:
        """Graph ``model``'s training forward and backward for full batches; None when the
        capture fails (the run goes on eagerly, with a notice)."""
        if data.num_train < batch_size:
            return None
        placement = self.placement
        sample = maker(data.train_images[:batch_size])
        # The capture's warm-up passes update batch-norm statistics: put them back after.
        buffers = {name: value.detach().clone() for name, value in model.named_buffers()}
        try:
            with placement.autocast(cache_enabled=False):
                torch.cuda.make_graphed_callables(model, (sample,))
        except Exception as error:  # an op that cannot be captured, or no memory for it
            model.__dict__.pop("forward", None)
            free_accelerator_memory(placement.device)
            self.notice(f"CUDA graphs are unavailable here ({type(error).__name__}); "
                        "training without them")
            return None
        finally:
            with torch.no_grad():
                for name, value in model.named_buffers():
                    value.copy_(buffers[name])
            model.zero_grad(set_to_none=True)
        self._graphed_model = model
        return tuple(sample.shape)

    def _resumed_recipe(self, checkpoint: dict[str, Any]) -> Recipe:
        try:
            saved = Recipe.from_dict(checkpoint["recipe"])
        except (KeyError, TypeError, UserError):
            raise CheckpointError(f"{self.resume_from} holds no readable training recipe; it "
                                  "cannot be resumed") from None
        return saved.replace(**{name: getattr(self.recipe, name) for name in MACHINE_SETTINGS})

    def _check_fits(self, checkpoint: dict[str, Any], arch: Architecture, data: DataBundle
                    ) -> None:
        saved = checkpoint_architecture(checkpoint, str(self.resume_from))
        differences = architecture_differences(saved, arch)
        if differences:
            raise CheckpointError(mismatch_message(self.resume_from, saved, arch, differences))
        if int(checkpoint.get("num_train", data.num_train)) != data.num_train:
            raise CheckpointError(
                f"checkpoint {self.resume_from} was trained on {int(checkpoint['num_train']):,} "
                f"training images but the data now has {data.num_train:,}; resume with the same "
                "dataset and --limit-train")

    def _place_data(self, data: DataBundle, device: torch.device) -> DataBundle:
        if device.type == "cpu":
            return data
        try:
            return data.to(device)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            free_accelerator_memory(device)
            self.notice(f"the dataset does not fit in {device} memory, so batches travel from "
                        "the computer's memory (slower)")
            return data

    def _smaller_batch(self, batch_size: int, device: torch.device,
                       optimizer: torch.optim.Optimizer) -> int:
        optimizer.zero_grad(set_to_none=True)
        free_accelerator_memory(device)
        floor = min(OOM_FLOOR, self.recipe.batch_size)
        smaller = batch_size // 2
        if smaller < floor:
            raise TrainingError(
                f"{device} ran out of memory even at batch size {batch_size}; use a smaller "
                "network, a smaller --resize, or --device cpu")
        self.notice(f"{device} ran out of memory at batch size {batch_size}; continuing at "
                    f"{smaller}")
        self._eval_batch = min(self._eval_batch, smaller)
        return smaller

    def _diverged(self, value: float, epoch: int, batch: int, lr: float,
                  last_finite: float | None) -> DivergedError:
        kind = "NaN" if math.isnan(value) else "infinite"
        where = f"epoch {epoch + 1}, batch {batch}"
        last = (f"the last finite loss was {last_finite:.4g}" if last_finite is not None
                else "no step had a finite loss")
        kept = (f"; the last good checkpoint {self.checkpoint_path} is kept"
                if self.checkpoint_path is not None and self.checkpoint_path.exists() else "")
        return DivergedError(
            f"training diverged: the loss became {kind} at {where} ({last}); lower the "
            f"learning rate (it was {lr:.3g}; try {lr / 10:.3g}){kept}",
            epoch, batch, last_finite)

    def evaluate(self, max_images: int | None = None) -> Evaluation:
        """The model on the test set: loss, accuracy, confusion matrix, per-class accuracy
        and the most confidently wrong images. Call it when no run is live."""
        data = self._device_data or self.data
        if data is None:
            raise UserError("no data is loaded yet; run the trainer or pass data=")
        model = self.model
        device = next(model.parameters()).device
        if data.test_images.device != device and device.type != "cpu":
            data = self._device_data = data.to(device)
        maker = self._maker or BatchMaker.for_bundle(data, self.recipe, device)
        placement = self.placement or Placement(device, "fp32")
        images, labels = data.test_images, data.test_labels
        if max_images is not None:
            images, labels = images[:max_images], labels[:max_images]
        batch = max(self._eval_batch, 2 * self.recipe.batch_size)
        while True:
            try:
                evaluation = evaluate_model(model, images, labels, maker, data.num_classes,
                                            batch_size=min(batch, 1024),
                                            autocast=placement.autocast)
                break
            except Exception as error:
                if not is_out_of_memory(error) or batch <= 1:
                    raise
                free_accelerator_memory(device)
                batch //= 2
                self._eval_batch = batch
        self.last_evaluation = evaluation
        return evaluation

    def _compute_probe(self) -> FeatureProbe | None:
        with self._probe_lock:
            wish = self._probe
        if wish is None:
            return None
        layer, image_index = wish
        data = self._device_data or self.data
        if data is None or not 0 <= image_index < data.num_test:
            self.notice(f"test image #{image_index} does not exist; the feature maps were "
                        "skipped")
            return None
        try:
            return probe_test_image(self.model, data.test_images, data.test_labels,
                                    image_index, layer, self._maker)
        except UserError as problem:
            self.notice(f"feature maps skipped: {problem}")
            return None


def train(arch: Architecture, recipe: Recipe, **kwargs: Any) -> TrainEnd:
    """Build a :class:`Trainer` and run it."""
    return Trainer(arch, recipe, **kwargs).run()


__all__ = ["DivergedError", "LearningRatePlan", "Trainer", "fit_architecture", "initialise",
           "make_optimizer", "steps_in_epoch", "train"]
