"""Checks that need a CUDA device: skipped where there is none (CI never has one).

Run on a lent GPU machine with ``python -m pytest tests/engine/test_cuda.py``.
"""

import math

import numpy as np
import pytest
import torch

from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.engine.data import make_bundle
from resnet_gui.engine.events import Callback
from resnet_gui.engine.trainer import Trainer
from resnet_gui.arch import build_preset
from resnet_gui.arch.recipe import Recipe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_bundle(n_train=512, n_test=128, size=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n_train + n_test)
    # Class-dependent brightness so that a few steps can learn something.
    images = (rng.random((n_train + n_test, size, size)) * 60 + labels[:, None, None] * 45)
    images = images.astype(np.uint8)
    return make_bundle(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:],
                       [f"c{i}" for i in range(classes)])


class Recorder(Callback):
    def __init__(self):
        self.devices, self.losses = [], []

    def on_train_start(self, event):
        self.devices.append(event.device)
        self.precision = event.precision

    def on_batch_end(self, event):
        self.losses.append(event.loss)


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16", "fp16"])
def test_training_runs_on_cuda_with_each_precision(precision, tmp_path):
    recorder = Recorder()
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05, device="cuda", precision=precision,
                    limit_test=None, seed=1)
    trainer = Trainer(build_preset("resnet20"), recipe, callbacks=[recorder],
                      checkpoint_path=tmp_path / "run.pt", data=tiny_bundle())
    end = trainer.run()
    assert end.reason == "completed"
    assert recorder.devices[0].startswith("cuda")
    assert recorder.losses and all(math.isfinite(loss) for loss in recorder.losses)
    # A checkpoint written on the GPU loads on a machine without one.
    checkpoint = load_checkpoint(tmp_path / "run.pt")
    assert checkpoint is not None


def test_cuda_run_is_faster_than_nothing_and_reports_throughput(tmp_path):
    recipe = Recipe(epochs=2, batch_size=128, device="cuda", seed=0)
    end = Trainer(build_preset("resnet20"), recipe, data=tiny_bundle(n_train=2048)).run()
    assert end.examples_per_sec > 0
    assert 0.0 <= end.test_accuracy <= 1.0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_telemetry_samples_eagerly_between_cuda_graph_replays(precision):
    """Module hooks do not run inside a replayed CUDA graph: sampled steps run the plain
    module, every other full batch still replays the graph, and fp16's loss scale is taken
    out of the gradient norms."""

    class Samples(Callback):
        def __init__(self):
            self.events = []

        def on_telemetry(self, event):
            self.events.append(event)

    samples = Samples()
    recipe = Recipe(epochs=1, batch_size=64, lr=0.05, device="cuda", precision=precision,
                    seed=1)
    trainer = Trainer(build_preset("resnet20"), recipe, callbacks=[samples],
                      data=tiny_bundle())
    trainer.telemetry_every = 3
    replays = []
    original = trainer._capture_cuda_graph

    def capture(model, *args):
        shape = original(model, *args)
        graphed = model.__dict__["forward"]
        def counting(*inputs):
            if model.training:  # in eval mode (evaluation) the graph is not replayed
                replays.append(1)
            return graphed(*inputs)

        model.__dict__["forward"] = counting
        return shape

    trainer._capture_cuda_graph = capture
    end = trainer.run()
    assert end.step == 8 and [e.step for e in samples.events] == [0, 3, 6]
    assert len(replays) == 8 - 3  # the three sampled steps ran eagerly
    for event in samples.events:
        assert len(event.blocks) == 9
        for block in event.blocks:
            assert all(math.isfinite(v) for v in (block.residual_ratio, block.cosine,
                                                    block.grad_norm, block.weight_norm))
            assert block.grad_norm < 1e3  # not multiplied by fp16's loss scale (65536)
