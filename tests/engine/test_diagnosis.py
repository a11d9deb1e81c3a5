"""The advice after a divergence names the likely cause: a resumed checkpoint's non-finite
weights, a weight decay strong enough to be the instability, or else the learning rate."""

from __future__ import annotations

import math

import pytest
import torch

from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.diagnosis import divergence_advice, weights_are_finite


def test_a_usual_recipe_is_told_to_lower_the_learning_rate_tenfold():
    advice = divergence_advice(Recipe(lr=0.4, weight_decay=5e-4), resumed=False,
                               weights_finite=True)
    assert advice == ("lower the learning rate (it was 0.4; try 0.04), or clip gradients with "
                      "--grad-clip 1")


def test_the_rate_at_the_diverging_step_is_the_one_named():
    advice = divergence_advice(Recipe(lr=0.4, grad_clip=1.0), resumed=False,
                               weights_finite=True, lr=0.25)
    assert advice == "lower the learning rate (it was 0.25; try 0.025)"


@pytest.mark.parametrize("optimizer, decay, lr", [("sgd", 0.5, 0.05), ("sgd", 5.0, 0.05),
                                                  ("adamw", 8.0, 1e-3), ("adamw", 0.5, 0.5)])
def test_a_strong_weight_decay_is_named_not_the_rate(optimizer, decay, lr):
    advice = divergence_advice(Recipe(optimizer=optimizer, lr=lr, weight_decay=decay,
                                      momentum=0.9), resumed=False, weights_finite=True)
    assert advice.startswith(f"lower the weight decay (it was {decay:.3g}, removing "
                             f"{lr * decay:.3g} of every weight per step")
    assert "learning rate" not in advice


def test_a_resumed_checkpoint_with_non_finite_weights_is_named_whatever_the_settings():
    recipe = Recipe(lr=0.05, weight_decay=5.0)
    advice = divergence_advice(recipe, resumed=True, weights_finite=False,
                               previous="runs/a.prev.pt")
    assert advice == ("the resumed checkpoint already held non-finite weights, so no setting "
                      "can help; resume from the previous checkpoint runs/a.prev.pt or start a "
                      "new run")
    assert "earlier checkpoint" in divergence_advice(recipe, True, False)
    # Finite weights in a resumed run: the settings are to blame, as in a new run.
    assert divergence_advice(recipe, True, True).startswith("lower the weight decay")


def test_weights_are_finite_looks_at_floating_tensors_only():
    state = {"w": torch.ones(3), "num_batches_tracked": torch.tensor(7)}
    assert weights_are_finite(state)
    state["bn.running_var"] = torch.tensor([1.0, math.inf])
    assert not weights_are_finite(state)
    assert not weights_are_finite({"w": torch.tensor([math.nan], dtype=torch.bfloat16)})
