"""What the trainer tells its listeners: frozen dataclasses of plain numbers and small arrays.

Events never hold tensors or live model references, so a GUI thread may keep them while the
worker goes on training. The callback vocabulary follows Lightning's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TrainStart:
    epochs: int  # planned epochs of the whole run (the learning-rate plan spans these)
    steps_per_epoch: int
    total_steps: int
    start_epoch: int  # 0-based; > 0 when resuming
    start_step: int  # optimizer steps already taken (resume)
    device: str  # "cpu", "cuda:0", ...
    precision: str  # "fp32", "bf16", "fp16"
    batch_size: int
    num_train: int
    num_test: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]  # C, H, W as the network sees it
    architecture: str = ""  # the architecture's name
    recipe: dict = field(default_factory=dict)  # the run's plan, as Recipe.to_dict()
    processes: int = 1  # processes sharing each batch (torchrun); batch_size is their total


@dataclass(frozen=True)
class StepEnd:
    """Sent at most ~30 times a second (the trainer throttles), always for the last step."""

    epoch: int  # 0-based
    step: int  # optimizer steps taken so far in the whole run
    batch: int  # batches done in this epoch
    epoch_progress: float  # epoch + fraction done, for plotting against epochs
    loss: float  # mean training loss of the steps since the previous StepEnd
    accuracy: float  # likewise
    lr: float
    examples_per_sec: float  # training throughput, warm-up steps excluded


@dataclass(frozen=True)
class BlockDecomposition:
    """A residual block's two paths for one image (each (channels, h, w) float32, on one
    scale): the shortcut s(x) after projection, the branch F(x), their sum, and the block's
    output (after the final activation; the sum itself in a pre-activation block)."""

    block: str  # "layer2.0"
    kind: str  # the block kind: "basic", "bottleneck", ...
    projected: bool  # the shortcut is a projection (else the identity x)
    shortcut: np.ndarray
    branch: np.ndarray
    sum: np.ndarray
    output: np.ndarray
    norms: tuple[float, float, float, float]  # L2 norms of the four, in that order
    predicted: int  # the class the network predicts for the image

    ROWS = ("shortcut", "branch", "sum", "output")

    def levels(self) -> tuple[float, float]:
        """The one colour scale of the four rows: their smallest and largest value."""
        arrays = [getattr(self, row) for row in self.ROWS]
        return (float(min(array.min() for array in arrays)),
                float(max(array.max() for array in arrays)))


@dataclass(frozen=True)
class ClassActivationMap:
    """Grad-CAM of one class at one layer for one image: where the layer's maps pushed the
    network towards the class, upsampled to the input and scaled to [0, 1]."""

    layer: str
    target_class: int  # the class explained
    heatmap: np.ndarray  # (H, W) float32 in [0, 1], the input's size; all 0 if nothing pushed
    predicted: int  # the class the network predicts for the image
    score: float  # the softmax probability of target_class


@dataclass(frozen=True)
class FeatureProbe:
    """One layer's output for one test image, computed by the worker under no_grad."""

    layer: str  # qualified module name, as in the layer table
    image_index: int  # index into the test set
    image: np.ndarray  # (C, H, W) float32, as fed to the network (normalised)
    maps: np.ndarray  # (channels, h, w) float32
    label: int
    predicted: int
    # When the layer is a residual block: its shortcut, branch, sum and output.
    decomposition: BlockDecomposition | None = None
    # When the layer has maps: Grad-CAM of the predicted class there.
    cam: ClassActivationMap | None = None


@dataclass(frozen=True)
class BlockStats:
    """One block at one sampled step. In a residual block ``residual_ratio`` is
    ||F(x)|| / ||s(x)|| and ``cosine`` is cos(F(x), s(x)), over the whole batch; in a plain
    block they compare the output y with the input x (NaN where their shapes differ)."""

    name: str  # "layer1.0"
    residual_ratio: float
    cosine: float
    grad_norm: float  # L2 norm of the gradients of the block's parameters at this step
    weight_norm: float  # L2 norm of the block's parameters the step started from


@dataclass(frozen=True)
class TelemetryEvent:
    """The blocks at one sampled step: ``step`` optimizer steps had been taken before it (so
    step 0 is the network as initialised)."""

    step: int
    epoch_progress: float  # epoch + fraction done when the step began
    blocks: tuple[BlockStats, ...]


@dataclass(frozen=True)
class Evaluation:
    """Test-set results; rows of ``confusion`` are true classes, columns predictions."""

    loss: float
    accuracy: float
    confusion: np.ndarray  # (classes, classes) int64, sums to the test-set size
    per_class_accuracy: np.ndarray  # (classes,) float64
    # The most confidently wrong test images, most confident first.
    wrong_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    wrong_predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    wrong_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    # The predicted class of every test image, so a view can list any confusion-matrix cell.
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 0-based index of the epoch just finished
    step: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    lr: float
    seconds: float  # wall clock of this epoch, evaluation included
    examples_per_sec: float
    evaluation: Evaluation | None = None
    probe: FeatureProbe | None = None
    checkpoint: str | None = None  # path written at this epoch end, if any


@dataclass(frozen=True)
class TrainEnd:
    reason: str  # "completed", "stopped", "max_steps", "diverged", "error"
    epoch: int  # epochs completed
    step: int
    train_loss: float
    train_accuracy: float
    test_accuracy: float  # of the last evaluation; nan if none ran
    examples_per_sec: float
    seconds: float
    checkpoint: str | None = None
    message: str = ""  # one sentence for the user when reason is not "completed"
    # Whether the evaluated network learned (None: nothing was evaluated); when it did not,
    # ``verdict`` says why in one sentence with a fix.
    learned: bool | None = None
    verdict: str = ""


class Callback:
    """Override what you need; every hook runs in the training thread."""

    def on_train_start(self, event: TrainStart) -> None: ...

    def on_batch_end(self, event: StepEnd) -> None: ...

    def on_epoch_end(self, event: EpochEnd) -> None: ...

    def on_train_end(self, event: TrainEnd) -> None: ...

    def on_exception(self, error: BaseException) -> None: ...

    def on_telemetry(self, event: TelemetryEvent) -> None:
        """Per-block statistics of a sampled step (every ``Trainer.telemetry_every`` steps)."""

    def on_notice(self, message: str) -> None:
        """One sentence the user should see, without ending the run (the bundled sample is in
        use, a smaller batch after running out of GPU memory, a probe that failed)."""
