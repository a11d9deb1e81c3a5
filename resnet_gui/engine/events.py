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
class FeatureProbe:
    """One layer's output for one test image, computed by the worker under no_grad."""

    layer: str  # qualified module name, as in the layer table
    image_index: int  # index into the test set
    image: np.ndarray  # (C, H, W) float32, as fed to the network (normalised)
    maps: np.ndarray  # (channels, h, w) float32
    label: int
    predicted: int


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

    def on_notice(self, message: str) -> None:
        """One sentence the user should see, without ending the run (the bundled sample is in
        use, a smaller batch after running out of GPU memory, a probe that failed)."""
