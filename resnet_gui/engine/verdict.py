"""Did the run learn? A run that ends near chance, or whose test loss is orders of magnitude
above its training loss, says so, with the likely cause and a fix, instead of "Finished".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A test accuracy this close to chance (in points of the chance level) is no learning: two
# epochs of any working plan on any real dataset do far better.
CHANCE_MARGIN = 0.5
TEST_LOSS_RATIO = 100.0  # test loss this many times the training loss: evaluation is broken
UNTRAINED_LOSS_RATIO = 2.0  # ... and this many times the loss the run started from
FLAT_LOSS_FRACTION = 0.05  # the training loss fell by less than this fraction of its start
FEW_STEPS = 50


@dataclass(frozen=True)
class Verdict:
    learned: bool
    message: str  # one sentence with the cause and a fix; "" when the run learned


@dataclass(frozen=True)
class RunOutcome:
    """What the verdict looks at, all of it known when a run ends."""

    test_accuracy: float
    test_loss: float
    train_loss: float
    first_loss: float  # the mean training loss of the first reported steps
    chance: float  # the accuracy of always answering the test set's most common class
    steps: int
    lr: float
    batch_size: int


def chance_accuracy(labels: np.ndarray, num_classes: int) -> float:
    if len(labels) == 0:
        return 1.0 / max(num_classes, 1)
    return float(np.bincount(labels, minlength=num_classes).max() / len(labels))


def judge(outcome: RunOutcome) -> Verdict:
    """Learned, or not with a sentence naming the likely cause and a fix."""
    o = outcome
    if not math.isfinite(o.test_accuracy):
        return Verdict(True, "")  # nothing was evaluated: nothing to judge
    near_chance = o.test_accuracy <= o.chance * (1 + CHANCE_MARGIN)
    # Orders of magnitude above the training loss, and worse than the untrained network: an
    # overfit network also has a test loss far above a tiny training loss, yet it learned.
    exploded = (math.isfinite(o.train_loss) and o.train_loss > 0
                and not o.test_loss <= TEST_LOSS_RATIO * o.train_loss
                and not o.test_loss <= UNTRAINED_LOSS_RATIO * _start(o))
    if not (near_chance or exploded):
        return Verdict(True, "")
    result = (f"the run did not learn: test accuracy {100 * o.test_accuracy:.1f} % is near "
              f"chance ({100 * o.chance:.1f} %)" if near_chance else
              f"the run did not learn what it shows: the test loss ({o.test_loss:.3g}) is "
              f"orders of magnitude above the training loss ({o.train_loss:.3g})")
    return Verdict(False, f"{result}; {likely_cause(o, exploded)}")


def _start(o: RunOutcome) -> float:
    """The loss the run started from, or that of uniform guessing where none was seen."""
    if math.isfinite(o.first_loss):
        return o.first_loss
    return -math.log(max(min(o.chance, 1.0), 1e-6))


def likely_cause(o: RunOutcome, exploded: bool) -> str:
    flat = (math.isfinite(o.first_loss) and math.isfinite(o.train_loss)
            and o.first_loss - o.train_loss < FLAT_LOSS_FRACTION * o.first_loss)
    if flat and o.lr < 1e-4:
        return (f"the training loss barely fell ({o.first_loss:.3f} -> {o.train_loss:.3f}), "
                f"so the learning rate {o.lr:.3g} is likely far too low: leave --lr to the "
                "default plan or try 0.1 (SGD) or 0.003 (AdamW)")
    if o.steps < FEW_STEPS:
        return (f"only {o.steps} optimizer steps ran, too few to learn: use a smaller batch "
                f"size than {o.batch_size} or more epochs")
    if exploded:
        return ("the batch-norm statistics used at test time lag behind weights that moved "
                "fast: turn on precise batch norm (--precise-bn), or lower the learning rate "
                f"{o.lr:.3g} or train for more epochs")
    if flat:
        return (f"the training loss barely fell ({o.first_loss:.3f} -> {o.train_loss:.3f}): "
                f"try a lower learning rate than {o.lr:.3g} with warm-up, or more epochs")
    return (f"the network fits the training images but not the test images: try a lower "
            f"learning rate than {o.lr:.3g}, precise batch norm, or more training images")
