"""TensorBoard event files from the trainer callback, read back by TensorBoard's own reader
(EventAccumulator) and by a plain TFRecord + protobuf reading with tensorboardX's messages."""

from __future__ import annotations

import builtins
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from resnet_gui.cli import main
from resnet_gui.engine.events import EpochEnd, StepEnd, TrainStart
from resnet_gui.engine.tensorboard import TensorBoardWriter
from resnet_gui.errors import UserError
from tests.engine.test_data import write_fashion_mnist

pytest.importorskip("tensorboardX", reason="the optional writer: pip install tensorboardX")


def start(start_step: int = 0) -> TrainStart:
    return TrainStart(epochs=2, steps_per_epoch=3, total_steps=6, start_epoch=start_step // 3,
                      start_step=start_step, device="cpu", precision="fp32", batch_size=8,
                      num_train=24, num_test=8, class_names=("a", "b"), input_shape=(1, 8, 8),
                      architecture="tiny")


def step(number: int, loss: float, speed: float = 100.0) -> StepEnd:
    return StepEnd(epoch=(number - 1) // 3, step=number, batch=(number - 1) % 3 + 1,
                   epoch_progress=number / 3, loss=loss, accuracy=0.5, lr=0.1,
                   examples_per_sec=speed)


def epoch(index: int) -> EpochEnd:
    return EpochEnd(epoch=index, step=3 * (index + 1), train_loss=1.0 / (index + 1),
                    train_accuracy=0.6, test_loss=1.2, test_accuracy=0.55, lr=0.05,
                    seconds=2.0, examples_per_sec=120.0)


@dataclass
class Telemetry:  # the shape of the telemetry helper's on_telemetry event
    step: int
    blocks: list


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in ``folder``'s event files, as TensorBoard shows them."""
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="TensorBoard's reader: pip install tensorboard")
    events = accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def raw_events(path: Path) -> list:
    """The Event messages of one file, read as TFRecords (length, CRC, data, CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    data, events, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = Event()
        event.ParseFromString(data[at + 12:at + 12 + length])
        events.append(event)
        at += 12 + length + 4
    return events


def test_steps_epochs_and_telemetry_become_scalars_tensorboard_reads(tmp_path):
    writer = TensorBoardWriter(tmp_path / "board")
    writer.on_train_start(start())
    for number, loss in ((1, 2.0), (2, 1.5), (3, 1.2)):
        writer.on_batch_end(step(number, loss, speed=float("nan") if number == 1 else 90.0))
    writer.on_epoch_end(epoch(0))
    writer.on_telemetry(Telemetry(step=3, blocks=[
        {"name": "layer1.0", "residual_ratio": 0.25, "cosine": 0.9, "grad_norm": 0.01,
         "weight_norm": 3.0},
        {"name": "layer2.0", "residual_ratio": 0.5, "cosine": float("nan"), "grad_norm": 0.02,
         "weight_norm": 4.0}]))
    writer.on_train_end(None)

    found = scalars(tmp_path / "board")
    assert found["train/loss"] == [(1, 2.0), (2, 1.5), (3, pytest.approx(1.2))]
    assert found["train/examples_per_sec"] == [(2, 90.0), (3, 90.0)]  # no NaN point
    assert found["train/learning_rate"][0] == (1, pytest.approx(0.1))
    assert found["epoch/test_accuracy"] == [(3, pytest.approx(0.55))]
    assert {"epoch/train_loss", "epoch/train_accuracy", "epoch/test_loss",
            "epoch/learning_rate", "epoch/examples_per_sec", "epoch/seconds"} <= found.keys()
    assert found["residual_ratio/layer2.0"] == [(3, 0.5)]
    assert found["weight_norm/layer1.0"] == [(3, 3.0)]
    assert "cosine/layer2.0" not in found and "cosine/layer1.0" in found

    files = list((tmp_path / "board").glob("events.out.tfevents.*"))
    assert len(files) == 1
    tags = {value.tag for event in raw_events(files[0]) for value in event.summary.value}
    assert {"train/loss", "epoch/test_loss", "grad_norm/layer1.0"} <= tags


def test_a_resumed_run_replaces_the_steps_it_undid(tmp_path):
    first = TensorBoardWriter(tmp_path)
    first.on_train_start(start())
    for number in range(1, 6):  # a run stopped after step 5, saved at step 3 (an epoch end)
        first.on_batch_end(step(number, 10.0 - number))
    first.close()
    resumed = TensorBoardWriter(tmp_path)
    resumed.on_train_start(start(start_step=3))
    for number in range(4, 7):
        resumed.on_batch_end(step(number, 1.0))
    resumed.close()
    loss = scalars(tmp_path)["train/loss"]
    assert loss == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 1.0), (5, 1.0), (6, 1.0)]


def test_missing_tensorboardx_or_a_file_in_the_way_is_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(UserError, match="is a file, not a folder"):
        TensorBoardWriter(tmp_path / "taken")
    real_import = builtins.__import__

    def without_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboardx)
    with pytest.raises(UserError) as missing:
        TensorBoardWriter(tmp_path / "board")
    assert "pip install 'resnet-gui[tensorboard]'" in str(missing.value)
    assert not (tmp_path / "board").exists()  # refused before touching the disk


def test_train_writes_the_event_files_named_by_the_tensorboard_option(tmp_path):
    previous = torch.get_num_threads()
    write_fashion_mnist(tmp_path / "data" / "FashionMNIST" / "raw", train=48, test=16)
    assert main(["train", "resnet20", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--batch-size", "16", "--tensorboard", str(tmp_path / "board"),
                 "--no-progress", "--threads", "1"]) == 0
    torch.set_num_threads(previous)
    found = scalars(tmp_path / "board")
    assert [s for s, _ in found["train/loss"]][-1] == 3
    assert found["epoch/test_accuracy"][0][0] == 3
