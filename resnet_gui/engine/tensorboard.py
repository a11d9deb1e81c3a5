"""A run's scalars as TensorBoard event files: a trainer callback, for the command line's
``--tensorboard DIR`` and for the window alike.

The writer is tensorboardX's ``SummaryWriter``: it needs only numpy and protobuf, where
``torch.utils.tensorboard`` needs the whole tensorboard package (grpcio, werkzeug, markdown...)
just to write. It is optional: ``pip install 'resnet-gui[tensorboard]'``. TensorBoard itself
reads the files (``tensorboard --logdir DIR``) without anything of ours installed.

What is written, against the global optimizer step:

- ``train/loss``, ``train/accuracy``, ``train/learning_rate``, ``train/examples_per_sec``:
  each step report (the trainer sends at most ~30 a second);
- ``epoch/train_loss``, ``epoch/train_accuracy``, ``epoch/test_loss``, ``epoch/test_accuracy``,
  ``epoch/learning_rate``, ``epoch/examples_per_sec``, ``epoch/seconds``: each epoch;
- ``<statistic>/<block>`` (``residual_ratio/layer2.0``, ...): per-block telemetry, when the
  trainer sends ``on_telemetry`` events (``event.step`` and ``event.blocks``, a list of dicts
  with the block's ``name`` and its numbers).

A resumed run writes a new event file in the same folder and tells TensorBoard to drop what the
old files hold from the resumed step on (tensorboardX's ``purge_step``), so the curves show
the run that the checkpoint continues, not the steps it undid.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resnet_gui.engine.events import Callback, EpochEnd, StepEnd, TrainEnd, TrainStart
from resnet_gui.errors import UserError

INSTALL_HINT = "pip install 'resnet-gui[tensorboard]' (or pip install tensorboardX)"
STEP_SCALARS = {"loss": "train/loss", "accuracy": "train/accuracy",
                "lr": "train/learning_rate", "examples_per_sec": "train/examples_per_sec"}
EPOCH_SCALARS = {"train_loss": "epoch/train_loss", "train_accuracy": "epoch/train_accuracy",
                 "test_loss": "epoch/test_loss", "test_accuracy": "epoch/test_accuracy",
                 "lr": "epoch/learning_rate", "examples_per_sec": "epoch/examples_per_sec",
                 "seconds": "epoch/seconds"}


def tensorboard_available() -> bool:
    """Whether tensorboardX is installed (without importing it: the window asks at start)."""
    return importlib.util.find_spec("tensorboardX") is not None


def summary_writer_class() -> type:
    """tensorboardX's SummaryWriter, or a :class:`UserError` naming the pip command."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError(f"writing TensorBoard files needs tensorboardX, which is not "
                        f"installed; {INSTALL_HINT}") from None
    return SummaryWriter


class TensorBoardWriter(Callback):
    """Writes the run's scalars into ``folder`` as TensorBoard event files (see the module
    docstring). The folder is checked, and tensorboardX imported, when this is built: before
    any training."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._writer_class = summary_writer_class()
        _check_folder(self.folder)
        self.writer: Any = None

    # -- trainer callbacks -------------------------------------------------------------------

    def on_train_start(self, event: TrainStart) -> None:
        self.close()
        # Steps after the checkpoint's were undone; the suffix keeps a file started in the
        # same second as the stopped run's apart from it, and sorted after it.
        self.writer = self._writer_class(
            logdir=str(self.folder), purge_step=event.start_step + 1 if event.start_step else None,
            filename_suffix=f".step{event.start_step:012d}")
        if event.start_step == 0:
            self.writer.add_text("run", _describe(event), 0)

    def on_batch_end(self, event: StepEnd) -> None:
        self._scalars(STEP_SCALARS, event, event.step)

    def on_epoch_end(self, event: EpochEnd) -> None:
        self._scalars(EPOCH_SCALARS, event, event.step)
        if self.writer is not None:
            self.writer.flush()

    def on_telemetry(self, event: Any) -> None:
        """Per-block statistics: every number of every block in ``event.blocks`` as
        ``<statistic>/<block name>``."""
        if self.writer is None:
            return
        for block in event.blocks:
            values = block if isinstance(block, Mapping) else dataclasses.asdict(block)
            for key, value in values.items():
                if key != "name":
                    self._scalar(f"{key}/{values['name']}", value, event.step)

    def on_train_end(self, event: TrainEnd) -> None:
        self.close()

    def on_exception(self, error: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    # -- writing ------------------------------------------------------------------------------

    def _scalars(self, tags: Mapping[str, str], event: Any, step: int) -> None:
        if self.writer is None:
            return
        for field, tag in tags.items():
            self._scalar(tag, getattr(event, field), step)

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        """One value; a missing or non-finite one (examples/s before timing starts) is left
        out rather than drawn as a gap TensorBoard cannot scale."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            return
        self.writer.add_scalar(tag, float(value), int(step))


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--tensorboard {folder} is a file, not a folder; give a folder for "
                        "the event files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the TensorBoard folder {folder}: "
                        f"{error.strerror or error}; choose another --tensorboard folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"the TensorBoard folder {folder} is not writable; choose another "
                        "--tensorboard folder")


def _describe(event: TrainStart) -> str:
    shape = "x".join(map(str, event.input_shape))
    return (f"{event.architecture} on {event.num_train:,} images of {shape}, "
            f"{event.epochs} epochs of {event.steps_per_epoch} steps, batch {event.batch_size}, "
            f"{event.device} ({event.precision})")
