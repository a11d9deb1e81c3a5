"""The loss landscape: filter-normalised seeded directions, a centre that is the trained
network itself, and the fast path agreeing with the plain way of computing each point."""

from __future__ import annotations

import copy
import json
import math
import threading

import numpy as np
import pytest
import torch

from resnet_gui.arch.twin import plain_twin
from resnet_gui.engine.inference import fold_batch_norm
from resnet_gui.engine.inspect import evaluate_model
from resnet_gui.engine.lab.landscape import (
    PerturbedNetwork,
    filter_normalised_direction,
    run_landscape,
)
from resnet_gui.engine.model import build_model
from resnet_gui.errors import UserError
from tests.engine.lab_support import LAB_TINY, evalset_of


pytestmark = pytest.mark.usefixtures("one_thread")


def naive_point(model, evalset, a: float, b: float, seed: int = 0) -> tuple[float, float]:
    """theta + a*delta + b*eta the plain way: a deep copy, every weight moved, fp32."""
    moved = copy.deepcopy(model).eval()
    delta = filter_normalised_direction(model, seed, 0)
    eta = filter_normalised_direction(model, seed, 1)
    with torch.no_grad():
        for name, weight in moved.named_parameters():
            if name in delta:
                weight += a * delta[name] + b * eta[name]
    result = evaluate_model(moved, evalset.images.contiguous(), evalset.labels, lambda x: x,
                            evalset.num_classes)
    return result.loss, result.accuracy


def test_the_json_and_the_centre_is_the_checkpoint(trained):
    model, data, _ = trained
    result = run_landscape(model, evalset_of(data), grid=5, span=0.5, network="lab-tiny")
    loaded = json.loads(result.to_json())
    assert loaded["alpha"] == loaded["beta"] == pytest.approx([-0.5, -0.25, 0, 0.25, 0.5])
    assert np.array(loaded["loss"]).shape == np.array(loaded["accuracy"]).shape == (5, 5)
    direct = evaluate_model(model, evalset_of(data).images.contiguous(),
                            evalset_of(data).labels, lambda x: x, 3)
    assert loaded["loss"][2][2] == loaded["centre_loss"]
    assert loaded["centre_loss"] == pytest.approx(direct.loss, rel=1e-5)
    assert loaded["centre_accuracy"] == direct.accuracy
    assert loaded["checkpoint_loss"] == pytest.approx(direct.loss, rel=1e-6)
    # The trained network sits in a valley: every other point of the grid is worse.
    loss = np.array(loaded["loss"])
    assert loss[2, 2] == loss.min() and (np.delete(loss.ravel(), 12) > loss[2, 2]).all()
    assert loaded["slice_alpha"] == pytest.approx(np.linspace(-0.5, 0.5, 9))
    assert loaded["slice_loss"][::2] == [row[2] for row in loaded["loss"]]
    assert loaded["evaluations"] == 1 + 25 + 4 and loaded["stopped"] is False


def test_each_point_agrees_with_the_plain_way(trained):
    model, data, _ = trained
    evalset = evalset_of(data)
    surface = PerturbedNetwork(model, evalset, seed=0)
    for a, b in ((0.3, -0.2), (-0.1, 0.45), (0.0, 0.0)):
        fast_loss, fast_accuracy = surface.evaluate(a, b)
        loss, accuracy = naive_point(model, evalset, a, b)
        assert fast_loss == pytest.approx(loss, rel=1e-4)
        assert fast_accuracy == accuracy


def test_directions_are_filter_normalised_seeded_and_shared_with_the_plain_twin(trained):
    model, _, _ = trained
    delta = filter_normalised_direction(model, seed=3, direction=0)
    weights = dict(model.named_parameters())
    assert set(delta) == {name for name, w in weights.items() if w.ndim > 1}  # no BN, no bias
    for name, d in delta.items():
        filters = d.reshape(d.shape[0], -1).norm(dim=1)
        target = weights[name].detach().reshape(d.shape[0], -1).norm(dim=1)
        assert torch.allclose(filters, target, rtol=1e-5)
    again = filter_normalised_direction(model, seed=3, direction=0)
    assert all(torch.equal(delta[n], again[n]) for n in delta)
    other = filter_normalised_direction(model, seed=3, direction=1)
    assert not torch.equal(delta["layer1.0.conv1.weight"], other["layer1.0.conv1.weight"])
    twin = build_model(plain_twin(LAB_TINY))
    twin_delta = filter_normalised_direction(twin, seed=3, direction=0)
    shared = set(delta) & set(twin_delta)
    assert shared == set(twin_delta)  # the twin lacks only the projection
    for name in shared:  # the same random draw, each scaled to its own filters
        a = delta[name].reshape(delta[name].shape[0], -1)
        b = twin_delta[name].reshape(a.shape[0], -1)
        assert torch.allclose(a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True),
                              atol=1e-6)


def test_folding_batch_norm_keeps_the_outputs(trained):
    model, data, _ = trained
    folded = copy.deepcopy(model).eval()
    pairs = fold_batch_norm(folded)
    assert len(pairs) == 1 + 2 * 6 + 1  # stem, two per block, the projection
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    images = evalset_of(data).images
    with torch.no_grad():
        assert torch.allclose(folded(images), model(images), atol=1e-5)


def test_stopping_leaves_the_rest_unmeasured(trained):
    model, data, _ = trained
    stop = threading.Event()

    def progress(report):
        if report.done >= 4:
            stop.set()

    result = run_landscape(model, evalset_of(data), grid=3, progress=progress, stop=stop)
    loss = np.array(result.loss, dtype=float)
    assert result.stopped and math.isfinite(result.centre_loss)
    assert 1 <= np.isfinite(loss).sum() < 9
    assert result.to_dict()["loss"][2][2] is None  # JSON has no NaN: null where not measured


@pytest.mark.parametrize("grid, span, message", [
    (0, 1.0, "odd whole number"), (4, 1.0, "odd whole number"), (1, 1.0, "at least 3"),
    (501, 1.0, "at most 201"), (5, 0.0, "span must be a number above 0"),
    (5, float("nan"), "span"),
])
def test_bad_grids_are_one_sentence(trained, grid, span, message):
    model, data, _ = trained
    with pytest.raises(UserError, match=message):
        run_landscape(model, evalset_of(data), grid=grid, span=span)


def test_images_are_prepared_at_the_size_the_network_takes(trained):
    _, data, recipe = trained
    from resnet_gui.engine.device import Placement
    from resnet_gui.engine.inference import EvalSet

    placement = Placement(torch.device("cpu"), "fp32")
    assert EvalSet.from_bundle(data, recipe, placement, 6).images.shape == (6, 1, 10, 10)
    bigger = EvalSet.from_bundle(data, recipe, placement, 6, input_size=(16, 16))
    assert bigger.images.shape == (6, 1, 16, 16)
    with pytest.raises(UserError, match="only square resizing"):
        EvalSet.from_bundle(data, recipe, placement, 6, input_size=(16, 12))


def test_progress_carries_each_point_for_a_live_view(trained):
    from resnet_gui.engine.lab.landscape import GridPoint, SlicePoint

    model, data, _ = trained
    reports = []
    result = run_landscape(model, evalset_of(data), grid=3, progress=reports.append)
    points = [r.event for r in reports if isinstance(r.event, GridPoint)]
    assert len(points) == 9 and (points[0].row, points[0].column) == (1, 1)  # centre first
    assert all(result.loss[p.row][p.column] == p.loss for p in points)
    assert [r.event.index for r in reports if isinstance(r.event, SlicePoint)] == [1, 3]
    assert reports[-1].done == reports[-1].total
