"""Recipe validation: every float must be finite, the seed must fit torch's generators."""

from __future__ import annotations

import dataclasses
import math

import pytest

from resnet_gui.errors import UserError
from resnet_gui.arch.recipe import MAX_SEED, Recipe, validate_recipe

FLOAT_FIELDS = [f.name for f in dataclasses.fields(Recipe) if "float" in str(f.type)]


def test_the_float_fields_are_the_ones_expected():
    assert set(FLOAT_FIELDS) == {"lr", "momentum", "weight_decay", "warmup_epochs",
                                 "step_gamma", "label_smoothing", "grad_clip",
                                 "pretrained_lr_scale"}


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_field_must_be_finite(name, value):
    with pytest.raises(UserError, match=f"training setting '{name}': must be a finite number"):
        validate_recipe(Recipe().replace(**{name: value}))


def test_seed_bounds():
    assert validate_recipe(Recipe(seed=MAX_SEED)).seed == 2**63 - 1
    for seed in (MAX_SEED + 1, -1):
        with pytest.raises(UserError, match="training setting 'seed'"):
            validate_recipe(Recipe(seed=seed))


def test_crop_padding_must_be_smaller_than_the_stored_images():
    assert validate_recipe(Recipe(dataset="cifar10", crop_padding=31)).crop_padding == 31
    # The crop comes before the resize: the stored side bounds it, not the resized one.
    with pytest.raises(UserError, match="smaller than the 28-pixel side .* 4 \\(an eighth"):
        validate_recipe(Recipe(crop_padding=28, resize=96))
    assert validate_recipe(Recipe(dataset="folder:/x", crop_padding=500)).crop_padding == 500


@pytest.mark.parametrize("field, value, limit", [("epochs", 10**30, "100,000"),
                                                 ("batch_size", 10**30, "1,048,576")])
def test_absurdly_large_plans_are_refused_naming_the_limit(field, value, limit):
    with pytest.raises(UserError, match=f"'{field}': must be at most {limit}, got"):
        validate_recipe(Recipe().replace(**{field: value}))
