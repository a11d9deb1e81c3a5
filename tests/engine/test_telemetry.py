"""Per-block telemetry on tiny networks: what it measures, when it samples, what it keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resnet_gui.arch.model import Architecture, Head, Shortcut, Stage, Stem
from resnet_gui.engine.blocks import BlockWatch, residual_blocks
from resnet_gui.engine.checkpoint import load_checkpoint
from resnet_gui.engine.events import BlockStats, Callback, TelemetryEvent
from resnet_gui.engine.model import build_model
from resnet_gui.engine.runs import RunRecorder, RunStore
from resnet_gui.engine.telemetry import BlockTelemetry, TelemetryHistory, compare
from resnet_gui.engine.trainer import Trainer
from tests.engine.test_trainer import TINY, one_thread, recipe, tiny_data  # noqa: F401

# A residual block, a projected residual block and a plain block, on 10x10 images.
MIXED = Architecture(
    stages=(Stage(blocks=("basic", "plain"), width=8, stride=1),
            Stage(blocks=("basic",), width=12, stride=2, shortcut=Shortcut("projection"))),
    stem=Stem(kind="single", width=8, kernel=3, stride=1, max_pool=False),
    head=Head(pool="avg"), in_channels=1, input_size=(10, 10), num_classes=3, name="mixed",
)


class Samples(Callback):
    def __init__(self):
        self.events: list[TelemetryEvent] = []
        self.initial_weight_norms: dict[str, float] = {}
        self.trainer = None

    def on_train_start(self, event):
        for name, block in residual_blocks(self.trainer.model):
            norm = torch.linalg.vector_norm(torch.cat([p.detach().flatten()
                                                       for p in block.parameters()]))
            self.initial_weight_norms[name] = float(norm)

    def on_telemetry(self, event):
        self.events.append(event)


def train(arch=TINY, every=2, callbacks=(), probe=None, **changes):
    samples = Samples()
    trainer = Trainer(arch, recipe(**changes), callbacks=[samples, *callbacks],
                      data=tiny_data())
    samples.trainer = trainer
    trainer.telemetry_every = every
    trainer.set_probe(probe)
    return trainer, trainer.run(), samples


def no_hooks_left(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_zero_initialised_branch_reads_zero_at_step_0_and_grows():
    trainer, _, samples = train(every=2, epochs=2, zero_init_last=True)
    first = samples.events[0]
    assert first.step == 0 and first.epoch_progress == 0.0
    assert [block.name for block in first.blocks] == ["layer1.0", "layer2.0"]
    for block in first.blocks:
        assert block.residual_ratio == 0.0 and block.cosine == 0.0  # F(x) = 0: the identity
        assert block.grad_norm > 0 and math.isfinite(block.grad_norm)
        # The weights the step started from: the freshly initialised ones.
        assert block.weight_norm == pytest.approx(samples.initial_weight_norms[block.name],
                                                  rel=1e-5)
    last = samples.events[-1]
    assert all(block.residual_ratio > 0 and -1 <= block.cosine <= 1 for block in last.blocks)
    assert no_hooks_left(trainer.model)


def test_exactly_one_sample_every_n_steps_and_none_in_between(monkeypatch):
    seen = []
    original = BlockTelemetry._seen

    def counting(self, name, call):
        seen.append((self.loop.state.step, name))
        original(self, name, call)

    monkeypatch.setattr(BlockTelemetry, "_seen", counting)
    # 3 epochs of 6 steps; each epoch end evaluates and probes (Grad-CAM runs with gradients,
    # in eval mode), and step 12 is armed while the epoch end of step 12 runs.
    _, end, samples = train(every=4, probe="layer2.0")
    assert end.step == 18
    assert [event.step for event in samples.events] == [0, 4, 8, 12, 16]
    # Hooks ran on the sampled steps' forwards only: not on the other steps, and not on the
    # evaluations and probes of the epoch ends.
    assert sorted(set(seen)) == [(s, b) for s in (0, 4, 8, 12, 16)
                                 for b in ("layer1.0", "layer2.0")]
    assert len(seen) == 10
    progress = [event.epoch_progress for event in samples.events]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(2 + 64 / 90)


def test_zero_turns_telemetry_off_and_callbacks_without_the_hook_are_fine():
    class OldListener:  # written before on_telemetry existed: no such method
        def __init__(self):
            self.ends = 0

        def on_train_end(self, event):
            self.ends += 1

    listener = OldListener()
    trainer, _, samples = train(every=0, epochs=1)
    assert samples.events == [] and no_hooks_left(trainer.model)
    trainer, end, samples = train(every=1, epochs=1, callbacks=[listener])
    assert len(samples.events) == end.step == 6 and listener.ends == 1


def test_plain_blocks_compare_output_with_input_where_the_shapes_allow():
    _, _, samples = train(arch=MIXED, every=3, epochs=1)
    by_name = {block.name: block for block in samples.events[-1].blocks}
    assert list(by_name) == ["layer1.0", "layer1.1", "layer2.0"]
    plain = by_name["layer1.1"]  # 8 -> 8 channels at 10x10: y and x compare
    assert plain.residual_ratio > 0 and -1 <= plain.cosine <= 1
    projected = by_name["layer2.0"]  # F(x) against the projected shortcut
    assert math.isfinite(projected.residual_ratio) and math.isfinite(projected.cosine)


def test_the_block_watch_sees_each_kind_of_block_sum_as_it_runs():
    """x, s(x), F(x), y as the hooks see them, against the block's own arithmetic."""
    for kind, activation in (("basic", True), ("bottleneck", True), ("preact-basic", False),
                             ("preact-bottleneck", False)):
        arch = MIXED.replace(stem=Stem(kind="single", width=4, kernel=3, stride=1,
                                       max_pool=False), stages=(
            Stage(blocks=(kind,), width=4, stride=1),
            Stage(blocks=(kind,), width=6, stride=2, shortcut=Shortcut("zero-pad"))))
        model = build_model(arch).eval()
        calls = {}
        with torch.no_grad(), BlockWatch(residual_blocks(model), calls.setdefault):
            model(torch.randn(2, 1, 10, 10))
        for call in calls.values():
            total = call.branch + call.shortcut
            assert torch.equal(call.output, torch.relu(total) if activation else total), kind
        first = calls["layer1.0"]
        if kind in ("basic", "preact-basic"):  # same width: the identity shortcut is x itself
            assert first.shortcut is first.input
        assert calls["layer2.0"].shortcut.shape == calls["layer2.0"].branch.shape
        assert no_hooks_left(model)


def test_ratio_and_cosine_are_the_textbook_formulas():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[4.0, 4.0]])
    ratio, cosine = compare(a, b)
    assert float(ratio) == pytest.approx(3 / math.sqrt(32))
    assert float(cosine) == pytest.approx(1 / math.sqrt(2))
    ratio, cosine = compare(torch.zeros(2, 3), torch.ones(2, 3))
    assert float(ratio) == 0.0 and float(cosine) == 0.0
    ratio, cosine = compare(torch.ones(2, 3), torch.ones(2, 4))
    assert math.isnan(ratio) and math.isnan(cosine)


def test_a_sampled_step_runs_eagerly_under_compile(monkeypatch):
    """torch.compile'd forwards skip module hooks: sampled steps call the plain module."""
    calls = {"compiled": 0}

    def fake_compile(model):
        def forward(inputs):
            calls["compiled"] += 1
            return model(inputs)
        return forward

    monkeypatch.setattr(torch, "compile", fake_compile)
    trainer, end, samples = train(every=3, epochs=1, compile=True)
    assert [event.step for event in samples.events] == [0, 3]
    assert calls["compiled"] == end.step - 2  # steps 0 and 3 ran eagerly
    assert no_hooks_left(trainer.model)


def test_a_resumed_run_keeps_the_whole_history_in_its_checkpoint(tmp_path):
    data = tiny_data()

    def run(path, resume=False, **changes):
        samples = Samples()
        trainer = Trainer(TINY, recipe(**changes), callbacks=[samples], data=data,
                          checkpoint_path=path, resume_from=path if resume else None)
        samples.trainer = trainer
        trainer.telemetry_every = 3
        trainer.run()
        return samples.events

    whole = run(tmp_path / "whole.pt")
    first = run(tmp_path / "part.pt", max_steps=8)
    second = run(tmp_path / "part.pt", resume=True)
    assert [e.step for e in first] == [0, 3, 6] and [e.step for e in second] == [9, 12, 15]
    assert first + second == whole  # bit for bit on the CPU
    saved = TelemetryHistory.from_checkpoint(
        load_checkpoint(tmp_path / "part.pt")["telemetry"], max_step=18)
    assert saved.steps == [0, 3, 6, 9, 12, 15] and list(saved.events()) == whole


def test_history_thins_evenly_and_keeps_its_bound():
    history = TelemetryHistory(limit=8)
    for step in range(0, 100, 2):
        history.add(TelemetryEvent(step, step / 10, (BlockStats("layer1.0", step, 0.5, 1, 2),)))
    assert 4 <= len(history) <= 8
    gaps = set(np.diff(history.steps))
    assert len(gaps) == 1 and history.spacing == gaps.pop()  # evenly spaced
    assert history.steps[0] == 0 and history.steps[-1] >= 100 - 2 * history.spacing
    assert history.metric("residual_ratio")[:, 0].tolist() == history.steps
    assert not history.add(TelemetryEvent(history.steps[-1] + 1, 0.0,
                                          (BlockStats("layer1.0", 0, 0, 0, 0),)))


def test_damaged_histories_are_refused_and_unreadable_stored_ones_are_empty():
    history = TelemetryHistory()
    for step in (0, 5):
        history.add(TelemetryEvent(step, step / 10,
                                   (BlockStats("layer1.0", math.nan, 0.1, 2.0, 3.0),)))
    saved = history.to_checkpoint()
    restored = TelemetryHistory.from_checkpoint(saved, max_step=5)
    assert restored.steps == [0, 5] and math.isnan(restored.metric("residual_ratio")[0, 0])
    with pytest.raises(ValueError):
        TelemetryHistory.from_checkpoint(saved, max_step=4)  # a sample after the run's end
    with pytest.raises(ValueError):
        TelemetryHistory.from_checkpoint({**saved, "steps": torch.tensor([5, 0])}, max_step=9)
    with pytest.raises(ValueError):
        TelemetryHistory.from_checkpoint({**saved, "values": torch.zeros(2, 2, 4)}, max_step=9)
    assert TelemetryHistory.from_checkpoint(None, max_step=0).steps == []
    json_round_trip = TelemetryHistory.from_json(history.to_json())
    assert json_round_trip.steps == [0, 5] and json_round_trip.blocks == ("layer1.0",)
    assert len(TelemetryHistory.from_json({"blocks": "?"})) == 0


def test_the_run_store_keeps_the_history_for_a_reopened_run(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(TINY, recipe())
    recorder = RunRecorder(store, run)
    _, _, samples = train(every=4, epochs=2, callbacks=[recorder])
    reopened = store.load(run.run_id).log.telemetry
    assert reopened.steps == [e.step for e in samples.events] == [0, 4, 8]
    assert reopened.blocks == ("layer1.0", "layer2.0")
    expected = np.array([[b.grad_norm for b in e.blocks] for e in samples.events], np.float32)
    assert np.array_equal(reopened.metric("grad_norm"), expected)
