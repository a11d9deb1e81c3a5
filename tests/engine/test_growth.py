"""Growing a trained network: the inserted block starts as the identity, so outputs do not
change; old layers keep their weights; the grown checkpoint resumes with a fresh optimizer and
a warm-up, and exports to the same function."""

from __future__ import annotations

import io

import pytest
import torch

from resnet_gui.arch.model import Head, Stage, Stem
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.serialize import loads
from resnet_gui.engine.checkpoint import load_checkpoint, save_checkpoint
from resnet_gui.engine.events import StepEnd
from resnet_gui.engine.export import export_trained
from resnet_gui.engine.growth import (
    WARMUP_START,
    deeper_network,
    grow_checkpoint,
    max_logit_change,
    warmup_after_growth,
    write_grown,
)
from resnet_gui.engine.model import build_model
from resnet_gui.engine.trained import load_trained
from resnet_gui.engine.trainer import LearningRatePlan, Trainer
from resnet_gui.errors import ArchitectureError, CheckpointError, UserError
from tests.engine.test_trainer import TINY, Recorder, one_thread, tiny_data  # noqa: F401
from tests.engine.trained_support import train_checkpoint


def trained_like(arch, seed=0):
    """A network of ``arch`` with every weight and running statistic away from its initial
    value, so that nothing is the identity by accident."""
    torch.manual_seed(seed)
    model = build_model(arch)
    for parameter in model.parameters():
        parameter.data.uniform_(-0.5, 0.5)
    with torch.no_grad():
        model.train()(torch.randn(4, arch.in_channels, *arch.input_size))
    return model.eval()


BOTTLENECK = build_preset("resnet50", num_classes=5, input_size=32).replace(
    stages=(Stage(("bottleneck", "bottleneck"), width=4, stride=1),
            Stage(("bottleneck",), width=8, stride=2)),
    stem=Stem(width=8, kernel=3, stride=1, max_pool=False))
PREACT = build_preset("preact-resnet18", num_classes=4, input_size=16).replace(
    stages=(Stage(("preact-basic",), width=8, stride=1),
            Stage(("preact-basic", "preact-basic"), width=12, stride=2)),
    stem=Stem(width=8, kernel=3, stride=1, max_pool=False), head=Head(pool="max"))
CASES = {  # architecture, stage, index
    "basic at the end of the last stage": (TINY, 1, 1),
    "bottleneck between two blocks": (BOTTLENECK, 0, 1),
    "pre-activation in the middle": (PREACT, 1, 1),
    "pre-activation at the end": (PREACT, 1, 2),
}


@pytest.mark.parametrize("case", CASES)
def test_an_inserted_block_starts_as_the_identity(case):
    arch, stage, index = CASES[case]
    trained = trained_like(arch)
    grown = deeper_network(trained, arch, stage, index)
    # Max |delta logit| on random inputs: exactly 0, as the algebra says.
    assert max_logit_change(trained, grown, arch, count=16) == 0.0
    stage_name = f"layer{stage + 1}"
    blocks = grown.arch.stages[stage].blocks
    assert len(blocks) == len(arch.stages[stage].blocks) + 1
    assert grown.arch.name == f"{arch.name}+{stage_name}.{index}"
    # Every trained tensor is in the grown network, under its shifted name where it moved.
    old, new = trained.state_dict(), grown.state_dict()
    for key, value in old.items():
        moved = key
        if key.startswith(f"{stage_name}."):
            position = int(key.split(".")[1])
            if position >= index:
                moved = f"{stage_name}.{position + 1}." + key.split(".", 2)[2]
        assert torch.equal(new[moved], value), key
    block = getattr(grown, stage_name)[index]
    last = {"basic": "bn2", "bottleneck": "bn3", "preact-basic": "conv2"}[blocks[index]]
    assert not getattr(block, last).weight.any()
    assert block.conv1.weight.abs().sum() > 0  # the rest of the branch is initialised


def test_a_zero_initialised_block_learns_at_the_first_step():
    arch, stage, index = CASES["basic at the end of the last stage"]
    grown = deeper_network(trained_like(arch), arch, stage, index).train()
    grown(torch.randn(8, 1, 10, 10)).logsumexp(1).sum().backward()
    block = grown.layer2[1]
    assert block.bn2.weight.grad.abs().sum() > 0  # gamma = 0 does not stop its own gradient


@pytest.mark.parametrize("insert, kind, message", [
    ((1, 0), None, "a block goes at index 1 of layer2 \\(after a block; the first block "
                   "changes the resolution and channels\\)"),
    ((1, 3), None, "at index 1 of layer2"),
    ((1, 1), "plain", "a plain block has no shortcut, so it cannot start as the identity"),
    ((1, 1), "bottleneck", "its output would have other channels than the basic block before "
                           "it; choose a basic block"),
    ((1, 1), "preact-basic", "after a basic block only a post-activation block starts as the "
                             "identity; choose basic"),
])
def test_a_block_that_cannot_start_as_the_identity_is_refused(insert, kind, message):
    with pytest.raises(ArchitectureError, match=message):
        deeper_network(build_model(TINY), TINY, *insert, kind=kind)


def test_warm_up_after_growth_climbs_from_the_start_factor():
    history = [{"progress": 2.0, "warmup_epochs": 0.5}]
    assert warmup_after_growth([], 2.0) == 1.0
    assert warmup_after_growth(history, 2.0) == WARMUP_START
    assert warmup_after_growth(history, 2.25) == pytest.approx((1 + WARMUP_START) / 2)
    assert warmup_after_growth(history, 2.5) == 1.0
    assert warmup_after_growth(history, 1.9) == 1.0  # before the growth


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return train_checkpoint(tmp_path_factory.mktemp("grow") / "run.pt", schedule="constant",
                            max_steps=3)


def test_a_grown_checkpoint_resumes_with_a_fresh_optimizer_and_a_warm_up(trained_run, tmp_path):
    growth = grow_checkpoint(load_trained(trained_run), "layer2:1", warmup_epochs=0.5)
    assert growth.max_logit_change == 0.0 and growth.block == "layer2.1"
    grown_path = write_grown(growth, tmp_path / "grown.pt")
    saved = load_checkpoint(grown_path)
    assert saved["optimizer"] is None and saved["step"] == 3
    assert [event["block"] for event in saved["grown"]] == ["layer2.1"]
    assert loads(saved["architecture"]).stages[1].blocks == ("basic", "basic")

    recorder = Recorder()
    plan = load_trained(grown_path).recipe.replace(max_steps=None)  # as train --resume does
    trainer = Trainer(loads(saved["architecture"]), plan, callbacks=[recorder],
                      data=tiny_data(), checkpoint_path=tmp_path / "on.pt",
                      resume_from=grown_path)
    trainer.report_interval = 0  # every step reports its learning rate
    end = trainer.run()
    assert end.reason == "completed" and end.step == 6
    steps = recorder.of(StepEnd)
    plan = LearningRatePlan(trainer.recipe)
    progress = 3 * 16 / 90  # three steps of 16 of 90 images
    assert steps[0].lr == pytest.approx(plan.lr(progress) * WARMUP_START)
    assert steps[1].lr == pytest.approx(plan.lr(progress) * warmup_after_growth(
        saved["grown"], progress + 16 / 90))
    resumed = load_checkpoint(tmp_path / "on.pt")
    assert resumed["optimizer"] is not None and resumed["grown"] == saved["grown"]
    assert resumed["model"]["layer2.1.bn2.weight"].abs().sum() > 0  # the new block woke up


def test_a_checkpoint_without_optimizer_state_that_never_grew_is_damaged(trained_run, tmp_path):
    checkpoint = load_checkpoint(trained_run)
    save_checkpoint(tmp_path / "bad.pt", {**checkpoint, "optimizer": None})
    trainer = Trainer(TINY, load_trained(trained_run).recipe, data=tiny_data(),
                      resume_from=tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="is damaged: its training state cannot be "
                       "restored"):
        trainer.run()


def test_grown_and_original_exported_to_pt2_give_the_same_outputs(trained_run, tmp_path):
    original = load_trained(trained_run)
    write_grown(grow_checkpoint(original, "layer1:1"), tmp_path / "grown.pt")
    programs = []
    for name, trained in (("original", original), ("grown", load_trained(tmp_path / "grown.pt"))):
        (path,) = export_trained(trained, "pt2", tmp_path / f"{name}.pt2")
        programs.append(torch.export.load(io.BytesIO(path.read_bytes())).module())
    images = torch.randint(0, 256, (6, 1, 10, 10), dtype=torch.uint8)
    with torch.no_grad():
        before, after = programs[0](images), programs[1](images)
    assert (before - after).abs().max() <= 1e-6
    blocks = [name for name, _ in load_trained(tmp_path / "grown.pt").model.blocks()]
    assert blocks == ["layer1.0", "layer1.1", "layer2.0"]


def test_growing_a_finished_run_can_extend_its_plan(trained_run, tmp_path):
    assert not grow_checkpoint(load_trained(trained_run), "layer1:1").finished  # 3 of 6 steps
    finished = load_trained(train_checkpoint(tmp_path / "done.pt"))
    assert grow_checkpoint(finished, "layer1:1").finished
    extended = grow_checkpoint(finished, "layer1:1", epochs=3)
    assert not extended.finished and extended.payload["recipe"]["epochs"] == 3
    with pytest.raises(UserError, match="--epochs 1: the run is already 1 epochs in; give more "
                       "epochs than that"):
        grow_checkpoint(finished, "layer1:1", epochs=1)
    with pytest.raises(ArchitectureError, match="--insert layer9:1: give STAGE:INDEX with a "
                       "stage of this network \\(layer1, layer2\\)"):
        grow_checkpoint(finished, "layer9:1")
