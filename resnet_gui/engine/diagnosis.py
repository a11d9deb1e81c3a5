"""What to change after a run diverged: the likely cause, named, rather than always the
learning rate.

The trainer calls :func:`divergence_advice` when the loss turns NaN or infinite and appends
its clause to the error ("training diverged: the loss became NaN at ...; <advice>").
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from resnet_gui.arch.recipe import Recipe, clips_gradients

# Weight decay shrinks every weight by lr * weight_decay per step (SGD adds weight_decay * w to
# the gradient; AdamW multiplies w by 1 - lr * weight_decay). Usual settings shrink by 1e-5 to
# 1e-4 per step; a tenth per step or more makes the decay itself the instability.
HARMFUL_DECAY_PER_STEP = 0.1
# Beyond these the decay is unusual whatever the rate: a likelier culprit than the rate.
USUAL_WEIGHT_DECAY = {"sgd": 0.01, "adamw": 1.0}
TYPICAL_WEIGHT_DECAY = {"sgd": "5e-4", "adamw": "0.05"}


def _g(value: float) -> str:
    return f"{value:.3g}"


def divergence_advice(recipe: Recipe, resumed: bool, weights_finite: bool,
                      lr: float | None = None, previous: str | None = None) -> str:
    """One clause naming the likely cause of a divergence and the fix.

    ``resumed``: the run continued a checkpoint; ``weights_finite``: every weight was finite
    when the run started (False: the checkpoint itself held NaN or infinite weights);
    ``lr``: the learning rate at the step that diverged (default: the recipe's peak);
    ``previous``: the checkpoint's previous version (``NAME.prev.pt``), to suggest it.
    """
    rate = recipe.lr if lr is None else lr
    if resumed and not weights_finite:
        fallback = (f"resume from the previous checkpoint {previous} or start a new run"
                    if previous else "resume from an earlier checkpoint or start a new run")
        return (f"the resumed checkpoint already held non-finite weights, so no setting can "
                f"help; {fallback}")
    decay = recipe.weight_decay
    usual = USUAL_WEIGHT_DECAY.get(recipe.optimizer, USUAL_WEIGHT_DECAY["sgd"])
    if decay > usual or rate * decay >= HARMFUL_DECAY_PER_STEP:
        typical = TYPICAL_WEIGHT_DECAY.get(recipe.optimizer, TYPICAL_WEIGHT_DECAY["sgd"])
        return (f"lower the weight decay (it was {_g(decay)}, removing {_g(rate * decay)} of "
                f"every weight per step; {typical} is usual for {recipe.optimizer})")
    clip = "" if clips_gradients(recipe) else ", or clip gradients with --grad-clip 1"
    return f"lower the learning rate (it was {_g(rate)}; try {_g(rate / 10)}){clip}"


def weights_are_finite(state: Mapping[str, torch.Tensor]) -> bool:
    """True when every floating-point tensor of a state dict (weights, batch-norm statistics)
    is finite: call it on a resumed checkpoint's ``model`` state for ``weights_finite``."""
    return all(bool(torch.isfinite(value).all()) for value in state.values()
               if isinstance(value, torch.Tensor) and value.is_floating_point())
