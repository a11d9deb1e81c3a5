"""The training loop's public handle: fast on a laptop CPU and on a GPU, and it never loses a
run.

A :class:`Trainer` is configured with an architecture and a recipe; :meth:`Trainer.run` builds a
:class:`~resnet_gui.engine.loop.TrainingLoop` (set-up, steps, epochs, checkpoints) and runs it.
Batches come from our own seeded index order over tensors in memory, and augmentation from a
generator seeded by the step, so a run resumed from any checkpoint (an epoch end, or a Stop in
the middle of an epoch) repeats the uninterrupted run bit for bit on the CPU. Stop and pause
are ``threading.Event`` objects checked at every batch, safe to set from any thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, plan_for_budget, validate_recipe, with_input_size
from resnet_gui.engine.analysis import Analysis, analyse
from resnet_gui.engine.checkpoint import (
    architecture_differences,
    checkpoint_architecture,
    load_checkpoint,
    mismatch_message,
)
from resnet_gui.engine.data import BatchMaker, DataBundle, load_data
from resnet_gui.engine.device import (
    Placement,
    free_accelerator_memory,
    is_out_of_memory,
    placement_for,
)
from resnet_gui.engine.distributed import current_world
from resnet_gui.engine.events import Callback, Evaluation, FeatureProbe, TrainEnd
from resnet_gui.engine.explain import with_block_views
from resnet_gui.engine.inspect import evaluate_model, probe_test_image
from resnet_gui.engine.loop import TrainingLoop
from resnet_gui.engine.memory import require_memory_to_train
from resnet_gui.engine.model import build_model
from resnet_gui.engine.schedule import (  # noqa: F401 (re-exported: the trainer's vocabulary)
    LearningRatePlan,
    initialise,
    make_optimizer,
    steps_in_epoch,
)
from resnet_gui.engine.telemetry import DEFAULT_EVERY as DEFAULT_TELEMETRY_EVERY
from resnet_gui.engine.telemetry import BlockTelemetry
from resnet_gui.errors import CheckpointError, TrainingError, UserError

EVENTS_PER_SECOND = 30

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
        self.recipe = with_input_size(validate_recipe(recipe), arch)
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.resume_from = Path(resume_from) if resume_from else None
        self.data = data
        if data is not None:
            self.recipe = plan_for_budget(self.recipe, data.num_train, arch)
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
        # Per-block telemetry every this many steps (0: none); an observation setting like
        # report_interval, not part of the plan: it changes nothing the network learns.
        self.telemetry_every = DEFAULT_TELEMETRY_EVERY

    @property
    def model(self) -> nn.Module:
        """The network: the run's once it has started, else a fresh one built on first use
        (building allocates every weight, so a trainer that is only configured builds none)."""
        if self._model is None:
            self._model = self.build_network()
        return self._model

    def build_network(self) -> nn.Module:
        """A fresh network of the trainer's architecture, on the CPU."""
        return build_model(self.arch)

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

    def wait_until_resumed(self) -> None:
        """Block the training thread while paused (Stop wakes it too)."""
        while not self._unpaused.wait(0.05) and not self._stop.is_set():
            pass

    def set_probe(self, layer: str | None, image_index: int = 0) -> None:
        """Ask for ``layer``'s feature maps of test image ``image_index`` at each epoch end."""
        with self._probe_lock:
            self._probe = None if layer is None else (layer, int(image_index))

    # -- events -----------------------------------------------------------------------------

    def emit(self, hook: str, event: Any) -> None:
        """``hook(event)`` on every callback that has it (a listener written before a hook
        existed simply does not hear it)."""
        for callback in self.callbacks:
            handler = getattr(callback, hook, None)
            if handler is not None:
                handler(event)

    def notice(self, message: str) -> None:
        self.notices.append(message)
        self.emit("on_notice", message)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> TrainEnd:
        """Train until the plan ends, Stop, or ``max_steps``; blocking.

        User problems (missing data, divergence, a full disk, a checkpoint of another network)
        raise a :class:`UserError` subclass after ``on_exception``.
        """
        try:
            checkpoint = self._prepare()
            loop = TrainingLoop(self, self.arch, self.recipe, self.data, checkpoint)
            with BlockTelemetry.attached(loop, self.telemetry_every):
                end = loop.run()
        except BaseException as error:
            self.release_graph()
            if not isinstance(error, KeyboardInterrupt):
                for callback in self.callbacks:
                    try:
                        callback.on_exception(error)
                    except Exception:  # a failing listener must not hide the real error
                        pass
            raise
        self.release_graph()
        self.emit("on_train_end", end)
        return end

    def _prepare(self) -> dict[str, Any] | None:
        """The plan, data and architecture of the run, checked before anything is allocated:
        an input too small for the network, or a network too large for the machine, is one
        sentence, not a failure mid-allocation. Returns the checkpoint resumed from."""
        checkpoint = load_checkpoint(self.resume_from) if self.resume_from else None
        if checkpoint is not None:
            self.recipe = with_input_size(self._resumed_recipe(checkpoint), self.arch)
        if self.data is None:
            self.data = load_data(self.recipe)
        # Settings left to "auto" are chosen for this run's length (a resumed one has its own).
        self.recipe = plan_for_budget(self.recipe, self.data.num_train, self.arch)
        if self.data.notice:
            self.notice(self.data.notice)
        arch = fit_architecture(self.arch, self.data, self.recipe)
        if checkpoint is not None:
            self._check_fits(checkpoint, arch, self.data)
        self.arch = arch
        analysis = analyse(arch)
        for warning in analysis.warnings:
            self.notice(warning)
        placement = self.placement = placement_for(self.recipe.device, self.recipe.precision)
        world = current_world()
        world.check_batch(self.recipe.batch_size, self.data.num_train)
        share = math.ceil(self.recipe.batch_size / world.size)  # what one process holds
        require_memory_to_train(analysis, share, placement.device, placement.precision)
        check_batch_norm_batch(analysis, share, self.data.num_train)
        return checkpoint

    def release_graph(self) -> None:
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

    def diverged(self, value: float, epoch: int, batch: int, lr: float,
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

    def evaluate(self, max_images: int | None = None, part: slice | None = None) -> Evaluation:
        """The model on the test set (or the ``part`` of it one process of several
        evaluates): loss, accuracy, confusion matrix, per-class accuracy and the most
        confidently wrong images. Call it when no run is live."""
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
        if part is not None:
            images, labels = images[part], labels[part]
        batch = max(self._eval_batch, 2 * self.recipe.batch_size)
        while True:
            try:
                evaluation = evaluate_model(model, images, labels, maker, data.num_classes,
                                            batch_size=min(batch, 1024),
                                            autocast=placement.autocast,
                                            flip=self.recipe.test_flip)
                break
            except Exception as error:
                if not is_out_of_memory(error) or batch <= 1:
                    raise
                free_accelerator_memory(device)
                batch //= 2
                self._eval_batch = batch
        self.last_evaluation = evaluation
        return evaluation

    def compute_probe(self) -> FeatureProbe | None:
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
            return with_block_views(self.model, probe_test_image(
                self.model, data.test_images, data.test_labels, image_index, layer,
                self._maker))
        except UserError as problem:
            self.notice(f"feature maps skipped: {problem}")
            return None


def train(arch: Architecture, recipe: Recipe, **kwargs: Any) -> TrainEnd:
    """Build a :class:`Trainer` and run it."""
    return Trainer(arch, recipe, **kwargs).run()


__all__ = ["DivergedError", "LearningRatePlan", "Trainer", "fit_architecture", "initialise",
           "make_optimizer", "steps_in_epoch", "train"]
