"""The plan for a budget: what "auto" settings become for a run of a given length."""

from __future__ import annotations

import pytest

from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import Recipe, plan_for_budget


@pytest.mark.parametrize("images, epochs, batch", [(2000, 2, 32), (10000, 3, 64),
                                                   (60000, 4, 256)])
def test_a_max_pooled_head_gets_a_third_of_the_rate(images, epochs, batch):
    """d2l-resnet18's max-pooled features are ~3x larger than average-pooled ones; at the
    rate that suits resnet20 it learned 5 points less (docs/benchmarks.md, section 11)."""
    recipe = Recipe(epochs=epochs)
    averaged = plan_for_budget(recipe, images, build_preset("resnet20"))
    maxed = plan_for_budget(recipe, images, build_preset("d2l-resnet18"))
    assert averaged.batch_size == maxed.batch_size == batch
    assert maxed.lr == pytest.approx(averaged.lr / 3)
    assert plan_for_budget(recipe, images).lr == averaged.lr  # no network: no head to fit


def test_a_rate_or_optimizer_the_user_chose_is_kept():
    d2l = build_preset("d2l-resnet18")
    assert plan_for_budget(Recipe(lr=0.2), 2000, d2l).lr == 0.2
    assert plan_for_budget(Recipe(optimizer="adamw"), 2000, d2l).lr == 0.003
