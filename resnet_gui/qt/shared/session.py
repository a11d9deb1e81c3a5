"""The training session: what the Train and Inspect tabs share, in the GUI thread.

It owns the :class:`TrainingController` (the worker thread), the run store, the loaded test
images, the latest evaluation and the model the inspect views may probe when no run is live.
The window's architecture document is reached only through three callables, so the session
works with the editor's document or without one (tests, benchmarks).
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from resnet_gui.engine.events import EpochEnd, Evaluation, TrainStart
from resnet_gui.engine.runs import Run, RunStore, RunSummary
from resnet_gui.errors import UserError
from resnet_gui.qt.shared.background import BackgroundJobs
from resnet_gui.qt.shared.growth import (
    GROWN_FOLDER,
    Continuation,
    PendingGrowth,
    continuation_for,
    matches,
)
from resnet_gui.qt.shared.process_worker import (
    ProcessChoice,
    ProcessController,
    ProcessJob,
    evaluate_network,
)
from resnet_gui.qt.shared.test_images import TestImages
from resnet_gui.qt.shared.training_worker import (
    EpochUpdate,
    ProbeView,
    TrainingController,
    TrainingJob,
    default_data_loader,
    prepare_probe,
)
from resnet_gui.arch.model import Architecture
from resnet_gui.arch.recipe import Recipe, with_input_size

LOCK_REASON = "a training run is live"


@dataclass
class ArchitectureLink:
    """How the session reaches the window's architecture document."""

    get: Callable[[], Architecture]
    set: Callable[[Architecture, str], None] | None = None  # apply as an undoable edit
    lock: Callable[[bool, str], None] | None = None
    subscribe: Callable[[Callable[[], None]], None] | None = None  # call back on every change


@dataclass(frozen=True)
class IdleNetwork:
    """The network the inspect views may compute on (in :attr:`TrainingSession.idle_jobs`'
    thread) while no run is live, and how images become its input."""

    model: Any
    source: str  # "untrained network", "after training (3 epochs)", ...
    preprocessing: Any  # engine.trained.Preprocessing, as the checkpoint records it
    prepare: Callable[[Any], Any]  # uint8 images (N, C, H, W) -> the input, on its device
    arch: Architecture


class TrainingSession(QObject):
    """Shared state and commands of the training and inspect panels."""

    state_changed = Signal(str)  # the controller's state
    run_started = Signal(object)  # TrainStart
    step = Signal(object)  # StepEnd
    epoch = Signal(object)  # EpochEnd
    telemetry = Signal(object)  # TelemetryEvent: the blocks at a sampled step
    run_ended = Signal(object)  # TrainEnd
    error = Signal(str)
    notice = Signal(str)  # the engine's remarks (the bundled sample is in use, ...)
    idle = Signal()  # the worker thread has ended
    runs_changed = Signal()
    run_updated = Signal(object)  # RunSummary of the live run
    images_changed = Signal(object)  # TestImages | None
    evaluation_changed = Signal(object, object)  # Evaluation, class names
    probe_ready = Signal(object, str)  # ProbeView, where it came from
    probe_message = Signal(str)
    architecture_changed = Signal()
    recipe_reopened = Signal(object)  # Recipe

    def __init__(self, architecture: ArchitectureLink, store: RunStore | None = None,
                 parent: QObject | None = None, trainer_factory=None, data_loader=None) -> None:
        super().__init__(parent)
        self.architecture = architecture
        self.store = store if store is not None else RunStore()
        # The thread worker, or torchrun's processes: the one of the live or last run.
        self.controllers = (TrainingController(self), ProcessController(self))
        self.controller: TrainingController | ProcessController = self.controllers[0]
        self.trainer_factory = trainer_factory
        self.data_loader = data_loader
        self.data: Any = None  # the last loaded DataBundle
        self._data_key: tuple | None = None
        self.images: TestImages | None = None
        self.class_names: tuple[str, ...] = ()
        self.evaluation: Evaluation | None = None
        self.live_run: RunSummary | None = None
        self.run_architecture: Architecture | None = None  # what the live/last run trains
        self.epochs_done = 0
        self._probe_wish: tuple[str, int] | None = None
        self._idle_model: Any = None
        self._idle_model_arch: Architecture | None = None
        self._trained_model_arch: Architecture | None = None
        self._opened: tuple[Any, Architecture, str, Any] | None = None  # model, arch, source, prep
        self.idle_jobs = BackgroundJobs(self)  # every use of the idle network, in order
        self._loader: threading.Thread | None = None
        self._last_recipe: Recipe | None = None
        # The checkpoint of the last trained (or opened) network, and its architecture.
        self._trained_checkpoint: tuple[Path, Architecture] | None = None
        self.pending_growth: PendingGrowth | None = None  # grown, waiting for Start
        self.continuation: Continuation | None = None  # the live run resumes a grown network

        for c in self.controllers:
            c.state_changed.connect(self.state_changed)
            c.data_ready.connect(self._on_data_ready)
            c.run_created.connect(self._on_run_created)
            c.started.connect(self._on_started)
            c.batch_end.connect(self.step)
            c.epoch_end.connect(self._on_epoch_end)
            c.telemetry.connect(self.telemetry)
            c.returned.connect(self.run_ended)
            c.errored.connect(self.error)
            c.notice.connect(self.notice)
            c.finished.connect(self._on_finished)
        self._images_loaded.connect(self._on_images_loaded)
        if architecture.subscribe is not None:
            architecture.subscribe(self.architecture_changed.emit)

    # -- training commands ---------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.controller.is_active

    def start(self, recipe: Recipe, processes: ProcessChoice | None = None,
              telemetry_every: int | None = None, tensorboard_dir: str | None = None) -> None:
        """Start a run of the window's architecture with ``recipe``, here or on several
        ``processes``, sampling the blocks every ``telemetry_every`` steps (None: the
        trainer's default) and writing TensorBoard files into ``tensorboard_dir`` if given;
        raises UserError."""
        if self.active:
            raise UserError("a run is already live; stop it before starting another")
        arch = self.architecture.get()
        several = processes is not None and processes.several
        if several:
            recipe = recipe.replace(device=processes.device or recipe.device)
        self._last_recipe = recipe
        self._opened = None  # the run's network takes over in Inspect
        self.idle_jobs.cancel_all()  # what they compute would show during the run
        data = self.data if self._data_key == self._key(recipe) else None
        self.run_architecture = self._fit(arch, data, recipe)
        continuation = continuation_for(self.pending_growth, self.run_architecture, recipe,
                                        self.store.root / GROWN_FOLDER)
        if continuation is not None and several:
            raise UserError("a grown network continues training in this process; set "
                            "Processes to this process")
        self.continuation, self.pending_growth = continuation, None
        self.evaluation = None
        self.epochs_done = 0
        self.controller = self.controllers[several]
        if several:
            options = (() if telemetry_every is None
                       else ("--telemetry-every", str(telemetry_every)))
            if tensorboard_dir:
                options += ("--tensorboard", tensorboard_dir)
            self.controller.start(ProcessJob(arch, recipe, self.store, processes.count,
                                             options=options))
        else:
            layer, image = self._probe_wish or (None, 0)
            self.controller.start(TrainingJob(
                arch, recipe, self.store, data, probe_layer=layer, probe_image=image,
                trainer_factory=self.trainer_factory, data_loader=self.data_loader,
                telemetry_every=telemetry_every, tensorboard_dir=tensorboard_dir,
                resume_from=continuation.path if continuation else None))
        if self.architecture.lock is not None:
            self.architecture.lock(True, LOCK_REASON)

    def stop(self) -> None:
        self.controller.stop()

    def pause(self) -> None:
        self.controller.pause()

    def resume(self) -> None:
        self.controller.resume()

    def shutdown(self) -> bool:
        """Stop a live run and wait for its thread; True when nothing is left running."""
        self.controller.shutdown()
        if self._loader is not None:
            self._loader.join(timeout=60)
        self.idle_jobs.wait()
        return not self.active

    # -- runs ----------------------------------------------------------------------------

    def list_runs(self) -> list[RunSummary]:
        return self.store.list()

    def load_run(self, run_id: str) -> Run:
        return self.store.load(run_id)

    def delete_run(self, run_id: str) -> None:
        if self.live_run is not None and run_id == self.live_run.run_id and self.active:
            raise UserError("this run is still training; stop it before deleting it")
        self.store.delete(run_id)
        self.runs_changed.emit()

    def reopen_run(self, run_id: str) -> Run:
        """Put a stored run's architecture in the editor and its recipe in the form. The
        architecture holds the input size the run trained at, so the recipe's resize (if
        any) goes: the network's input is the one size."""
        run = self.store.load(run_id)
        recipe = run.recipe_spec().replace(resize=None)
        arch = run.architecture_spec()
        if self.architecture.set is not None:
            if self.active:
                raise UserError("the architecture is locked while a run trains; stop it to "
                                "reopen another run")
            self.architecture.set(arch, f"Reopen run {run.summary.name} ({run.run_id})")
        self.recipe_reopened.emit(recipe)
        return run

    # -- data for the inspect views ------------------------------------------------------

    _images_loaded = Signal(object, object, object)  # key, DataBundle, error message

    def ensure_images(self, recipe: Recipe) -> None:
        """Load the test images of ``recipe``'s dataset in the background (once)."""
        key = self._key(recipe)
        if key == self._data_key or self.active or (self._loader and self._loader.is_alive()):
            return
        loader = self.data_loader or default_data_loader
        sized = with_input_size(recipe, self.architecture.get())  # as a run would load it

        def load() -> None:
            try:
                bundle = loader(sized)
            except UserError as problem:
                self._images_loaded.emit(key, None, str(problem))
            except Exception as bug:  # never let a helper thread take the window down
                traceback.print_exc()
                self._images_loaded.emit(key, None, f"loading the data failed ({bug})")
            else:
                self._images_loaded.emit(key, bundle, None)

        self._last_recipe = recipe
        self.probe_message.emit("Loading test images…")
        self._loader = threading.Thread(target=load, name="resnet-gui data", daemon=True)
        self._loader.start()

    @Slot(object, object, object)
    def _on_images_loaded(self, key, bundle, problem) -> None:
        if problem is not None:
            self.probe_message.emit(problem)
            return
        if not self.active:
            self._set_data(key, bundle)
            self._evaluate_trained()

    def _set_data(self, key, bundle) -> None:
        self.data, self._data_key = bundle, key
        try:
            self.images = TestImages.from_bundle(bundle)
            self.class_names = self.images.class_names
        except Exception:  # a bundle without test images: the inspect views stay empty
            traceback.print_exc()
            self.images = None
        self.images_changed.emit(self.images)

    def loaded_data(self, recipe: Recipe) -> Any:
        """The loaded DataBundle of ``recipe``'s dataset and subset, or None."""
        return self.data if self.data is not None and self._data_key == self._key(recipe) \
            else None

    def fitted_architecture(self, recipe: Recipe) -> Architecture:
        """The window's architecture as ``recipe``'s run will build it (channels and classes
        of the data, where it is loaded)."""
        return self._fit(self.architecture.get(), self.loaded_data(recipe), recipe)

    def set_input_size(self, size: int, label: str) -> None:
        """Give the network a square input of ``size`` pixels, as an undoable edit."""
        arch = self.architecture.get()
        if self.architecture.set is not None and tuple(arch.input_size) != (size, size):
            self.architecture.set(arch.replace(input_size=(size, size)), label)

    @staticmethod
    def _key(recipe: Recipe) -> tuple:
        return (recipe.dataset, recipe.data_dir, recipe.limit_train, recipe.limit_test,
                recipe.seed)

    # -- feature maps --------------------------------------------------------------------

    def layers(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(qualified name, type, output shape) of every layer, as the layer table lists
        them (the same analysis, so the same names), for the network as it will be fed."""
        arch = self.run_architecture if self.active and self.run_architecture else (
            self._fit(self.architecture.get(), self.data, self._last_recipe))
        try:
            analysis = self._analysis_of(arch)
        except UserError:
            return []
        return [(row.name, row.type, tuple(row.output_shape)) for row in analysis.layers]

    @property
    def probe_wish(self) -> tuple[str, int] | None:
        """The (layer, test image) the user last asked to see."""
        return self._probe_wish

    def request_probe(self, layer: str, image_index: int) -> None:
        """Show ``layer`` for test image ``image_index``: from the worker at the next epoch
        end while a run is live, at once from the idle model otherwise."""
        self._probe_wish = (layer, image_index)
        if self.active:
            self.controller.set_probe(layer, image_index)
            self.probe_message.emit(
                f"{layer} for test image #{image_index} will show at the end of this epoch "
                "(the run is live, so only the worker touches the model)."
                if getattr(self.controller, "probes_live", True) else
                f"{layer} for test image #{image_index} will show when the run ends (it "
                "trains in other processes).")
            return
        if self.images is None:
            return
        try:
            network, data = self.idle_network(), self.data
        except UserError as problem:
            self.probe_message.emit(str(problem))
            return
        self.idle_jobs.submit("probe", lambda: self._probe_now(network, data, layer, image_index),
                              lambda shown: self.probe_ready.emit(*shown),
                              self.probe_message.emit)

    def _probe_model(self) -> tuple[Any, str]:
        arch = self._fit(self.architecture.get(), self.data, self._last_recipe)
        if self._opened is not None and self._opened[1] == arch:
            return self._opened[0], self._opened[2]
        trained = self.controller.last_model
        if trained is not None and self._trained_model_arch == arch:
            return trained, f"after training ({self.epochs_done} epochs)"
        if self._idle_model is None or self._idle_model_arch != arch:
            from resnet_gui.engine.memory import bytes_to_run, require_memory
            from resnet_gui.engine.model import build_model

            # An input too small, or a network too large to build, is a sentence in the view.
            analysis = self._analysis_of(arch)
            require_memory(bytes_to_run(analysis), "show its feature maps", analysis)
            self._idle_model = build_model(arch).eval()
            self._idle_model_arch = arch
        return self._idle_model, "untrained network"

    def _analysis_of(self, arch: Architecture) -> Any:
        """The analysis of ``arch``, kept for the last one asked: the layer tree and the idle
        model ask about the same architecture in turn."""
        if self._last_analysis is None or self._last_analysis[0] != arch:
            from resnet_gui.engine.analysis import analyse

            self._last_analysis = (arch, analyse(arch))
        return self._last_analysis[1]

    _last_analysis: tuple[Architecture, Any] | None = None

    def _probe_now(self, network: IdleNetwork, data: Any, layer: str, image_index: int
                   ) -> tuple[ProbeView, str]:
        """In the idle jobs' thread: the maps, and the block views of the layer."""
        from resnet_gui.engine.explain import with_block_views
        from resnet_gui.engine.inspect import probe_test_image

        probe = probe_test_image(network.model, data.test_images, data.test_labels,
                                 image_index, layer, network.prepare)
        return prepare_probe(with_block_views(network.model, probe)), network.source

    def idle_network(self) -> IdleNetwork:
        """The network to compute on while no run is live (built here when it must be; only
        the idle jobs' thread runs it); raises UserError."""
        if self.active:
            raise UserError("a run is live, so only its worker touches the network; this "
                            "shows when the run ends")
        from resnet_gui.engine.trained import Preprocessing

        model, source = self._probe_model()
        if self._opened is not None and model is self._opened[0]:
            preprocessing = self._opened[3]
        elif self.data is not None:
            preprocessing = Preprocessing.from_bundle(self.data, self._probe_recipe())
        else:
            raise UserError("the test images are not loaded yet; wait for them to show")
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else "cpu"
        arch = self._fit(self.architecture.get(), self.data, self._last_recipe)
        return IdleNetwork(model, source, preprocessing, preprocessing.batch_maker(device), arch)

    def _probe_recipe(self) -> Recipe:
        """The recipe test images and image files are prepared with, as the run fed them:
        resized to the architecture's input size."""
        return with_input_size(self._last_recipe or Recipe(), self.architecture.get())

    def field_of(self, layer: str) -> Any:
        """The theoretical receptive field (engine.fields.Field) of ``layer``'s units in the
        network Inspect shows, or None where the analysis has none."""
        arch = self.run_architecture if self.active and self.run_architecture else (
            self._fit(self.architecture.get(), self.data, self._last_recipe))
        try:
            rows = self._analysis_of(arch).layers
        except UserError:
            return None
        return next((row.field for row in rows if row.name == layer), None)

    def open_trained(self, trained: Any, run: Run) -> None:
        """Show a checkpoint's network (engine.trained.TrainedNetwork) in Inspect while the
        window's architecture is its own; list its run and put its recipe in the form."""
        if self.active:
            raise UserError("a run is live; stop it before opening a checkpoint")
        self._opened = (trained.model, trained.arch, f"trained network from {trained.path.name}",
                        trained.preprocessing)
        self._trained_checkpoint = (trained.path, trained.arch)
        recipe = run.recipe_spec()
        self.runs_changed.emit()
        self.recipe_reopened.emit(recipe)
        self.architecture_changed.emit()
        self.ensure_images(recipe)  # its own test images, if others were loaded

    def trained_checkpoint_of(self, arch: Architecture) -> tuple[Path, Architecture] | None:
        """The checkpoint (and its architecture) of the last trained or opened network when it
        is ``arch`` as the last run fed it; else None."""
        if self._trained_checkpoint is None or self.active:
            return None
        path, trained = self._trained_checkpoint
        fitted = self._fit(arch, self.data, self._last_recipe)
        return self._trained_checkpoint if matches(trained, fitted) and path.is_file() else None

    @staticmethod
    def _fit(arch: Architecture, data: Any, recipe: Recipe | None) -> Architecture:
        """The architecture as the trainer will build it for this data (channels, classes,
        input size)."""
        if data is None:
            return arch
        from resnet_gui.engine.trainer import fit_architecture

        return fit_architecture(arch, data, with_input_size(recipe or Recipe(), arch))

    # -- worker events -------------------------------------------------------------------

    @Slot(object)
    def _on_data_ready(self, bundle: Any) -> None:
        if self.run_architecture is not None:
            self.run_architecture = self._fit(self.run_architecture, bundle, self._last_recipe)
        if self._last_recipe is not None and bundle is not self.data:
            self._set_data(self._key(self._last_recipe), bundle)

    @Slot(object)
    def _on_run_created(self, summary: RunSummary) -> None:
        self.live_run = summary
        self.runs_changed.emit()

    @Slot(object)
    def _on_started(self, event: TrainStart) -> None:
        self.class_names = tuple(event.class_names)
        self.run_started.emit(event)

    @Slot(object)
    def _on_epoch_end(self, update: EpochUpdate) -> None:
        event: EpochEnd = update.event
        self.epochs_done = event.epoch + 1
        self.epoch.emit(event)
        if event.evaluation is not None:
            self.evaluation = event.evaluation
            self.evaluation_changed.emit(event.evaluation, self.class_names)
        if update.probe is not None:
            self.probe_ready.emit(update.probe, f"epoch {event.epoch + 1}, during training")
        if self.live_run is not None:
            self._refresh_live_summary()

    @Slot()
    def _on_finished(self) -> None:
        fitted = getattr(self.controller, "trained_architecture", None)
        if fitted is not None:  # a run on other processes: the network it saved
            self.run_architecture = fitted
            self.ensure_images(self._last_recipe)
        self._trained_model_arch = self.run_architecture if self.controller.last_model else None
        if self.architecture.lock is not None:
            self.architecture.lock(False, "")
        if self.live_run is not None:
            self._refresh_live_summary()
            saved = self.store.checkpoint_path(self.live_run.run_id)
            if saved.is_file() and self.run_architecture is not None:
                self._trained_checkpoint = (saved, self.run_architecture)
        self.live_run = None
        self.runs_changed.emit()
        self.idle.emit()
        self._evaluate_trained()
        if self._probe_wish is not None:
            self.request_probe(*self._probe_wish)

    def _evaluate_trained(self) -> None:
        """After a run on other processes, once its test images are here: its evaluation for
        Inspect (the processes kept theirs)."""
        data = self.loaded_data(self._last_recipe or Recipe())
        if self.evaluation is not None or data is None or self.controller is self.controllers[0]:
            return
        try:
            network = self.idle_network()
        except UserError:
            return
        if network.source.startswith("after training"):
            self.idle_jobs.submit("evaluation", lambda: evaluate_network(network, data),
                                  self._show_evaluation, self.probe_message.emit)

    def _show_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.evaluation_changed.emit(evaluation, self.class_names)

    def _refresh_live_summary(self) -> None:
        try:
            summary = self.store.load_summary(self.live_run.run_id)
        except UserError:
            return
        self.run_updated.emit(summary)
