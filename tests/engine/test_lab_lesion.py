"""The lesion study: deleting and reordering blocks of a trained network without rebuilding
it, and the gradient along paths of each length."""

from __future__ import annotations

import copy
import json
import math
import threading

import pytest
import torch

from resnet_gui.arch.twin import plain_twin
from resnet_gui.engine.lab.lesion import (
    BlockLesion,
    deleted,
    effective_lengths,
    kendall_tau,
    reordered,
    run_lesion,
)
from resnet_gui.errors import UserError
from tests.engine.lab_support import LAB_TINY, evalset_of, train_tiny


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_result_has_the_documented_json(trained):
    model, data, _ = trained
    result = run_lesion(model, evalset_of(data), draws=3, path_samples=2, network="lab-tiny")
    loaded = json.loads(result.to_json())
    assert 0.5 < loaded["baseline_accuracy"] <= 1.0  # it learned: lesions have something to hurt
    assert [b["name"] for b in loaded["blocks"]] == [
        "layer1.0", "layer1.1", "layer1.2", "layer2.0", "layer2.1", "layer2.2"]
    assert [b["downsampling"] for b in loaded["blocks"]] == [False] * 3 + [True, False, False]
    # k runs over the five blocks whose shapes match; all of them deleted is one draw.
    assert [row["k"] for row in loaded["delete_k"]] == [1, 2, 3, 4, 5]
    assert loaded["delete_k"][-1]["std"] == 0 and len(loaded["delete_k"][-1]["accuracies"]) == 1
    assert all(0 <= row["mean_accuracy"] <= 1 and row["std"] >= 0 for row in loaded["delete_k"])
    singles = sorted(b["accuracy"] for b in loaded["blocks"] if not b["downsampling"])
    assert loaded["delete_k"][0]["mean_accuracy"] == pytest.approx(sum(singles) / len(singles))
    taus = [row["kendall_tau"] for row in loaded["reorder"]]
    assert taus and all(-1 <= tau < 1 for tau in taus)  # swaps that cancel out are left out
    paths = loaded["path_lengths"]
    assert paths["n"] == 6 and sum(paths["paths"]) == 2 ** 6
    assert all(value > 0 for value in paths["gradient_per_path"])
    assert loaded["stopped"] is False and loaded["plain"] is False


def test_a_branch_whose_last_batch_norm_is_zero_deletes_without_any_change(trained):
    model, data, _ = trained
    model = copy.deepcopy(model)
    silent = model.layer1[1]
    with torch.no_grad():
        silent.bn2.weight.zero_()
        silent.bn2.bias.zero_()
    for precision in ("fp32", "bf16"):
        result = run_lesion(model, evalset_of(data, precision), draws=1, path_samples=1)
        by_name = {block.name: block for block in result.blocks}
        assert by_name["layer1.1"].accuracy == result.baseline_accuracy
        assert by_name["layer1.1"].loss == result.baseline_loss
        # A branch that does something changes the loss when deleted.
        assert by_name["layer2.1"].loss != result.baseline_loss


def test_deleting_restores_the_network_and_gives_the_shortcut(trained):
    model, _, _ = trained
    x = torch.rand(4, 8, 10, 10)
    identity, downsampling = model.layer1[0], model.layer2[0]
    before = model(torch.rand(2, 1, 10, 10))
    with torch.no_grad(), deleted([identity, downsampling]):
        assert torch.equal(identity(x), x)  # y = x
        assert torch.equal(downsampling(x), torch.relu(downsampling.downsample(x)))
    after_input = torch.rand(2, 1, 10, 10)
    assert "forward" not in identity.__dict__ and "forward" not in downsampling.__dict__
    assert before.shape == model(after_input).shape


def test_reordering_swaps_blocks_and_puts_them_back(trained):
    model, _, _ = trained
    stage = list(model.layer1)
    with reordered(model, {"layer1": [2, 1, 0]}):
        assert list(model.layer1) == [stage[2], stage[1], stage[0]]
    assert list(model.layer1) == stage


def test_kendall_tau():
    assert kendall_tau([0, 1, 2, 3]) == 1.0
    assert kendall_tau([3, 2, 1, 0]) == -1.0
    assert kendall_tau([1, 0, 2, 3]) == pytest.approx(1 - 2 / 6)


def test_the_effective_lengths_carry_most_of_the_gradient():
    assert effective_lengths([0, 2, 6, 2, 0]) == [1, 3]
    assert effective_lengths([0, 0, 10, 0]) == [2, 2]
    assert effective_lengths([0, 0]) == []


def test_a_plain_network_has_stand_ins_for_downsampling_and_one_path():
    model, data, _ = train_tiny(plain_twin(LAB_TINY))
    result = run_lesion(model, evalset_of(data), draws=2, path_samples=1)
    assert result.plain and result.path_lengths is None
    assert [block.stand_in for block in result.blocks] == [False] * 3 + [True, False, False]
    worst = min(block.accuracy for block in result.blocks)
    assert worst < result.baseline_accuracy


def test_stopping_returns_what_was_measured(trained):
    model, data, _ = trained
    stop = threading.Event()
    reports = []

    def progress(report):
        reports.append(report)
        if report.done >= 4:
            stop.set()

    result = run_lesion(model, evalset_of(data), draws=3, progress=progress, stop=stop)
    assert result.stopped and 1 <= len(result.blocks) < 6 and result.delete_k == []
    assert math.isfinite(result.baseline_accuracy)
    assert all(r.total == reports[0].total and r.done <= r.total for r in reports)
    # Each block's result came with a report, for a live strip of accuracy changes.
    assert [r.event for r in reports if isinstance(r.event, BlockLesion)] == result.blocks


def test_bad_settings_are_one_sentence(trained):
    model, data, _ = trained
    with pytest.raises(UserError, match="draws must be a whole number >= 1"):
        run_lesion(model, evalset_of(data), draws=0)
