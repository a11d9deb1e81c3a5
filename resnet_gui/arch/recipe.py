"""How to train: a frozen, JSON-able recipe (standard library only).

The trainer in :mod:`resnet_gui.engine` consumes it; the window's training panel edits it; a
checkpoint and a saved run store it so that a run can be resumed or reopened.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from resnet_gui.errors import UserError
from resnet_gui.arch.datasets import DATASET_KEYS, FOLDER_PREFIX, dataset_for
from resnet_gui.arch.model import MAX_INPUT_SIZE, Architecture

DATASETS = DATASET_KEYS  # plus "folder:PATH"
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
INITS = ("kaiming", "xavier")
DEVICES = ("auto", "cpu", "cuda", "mps")  # "cuda:1" is accepted too
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_SEED = 2**63 - 1  # torch's generators take a signed 64-bit seed
IMAGENET_WEIGHTS = "imagenet"
FREEZE_STEM = "stem"


@dataclass(frozen=True)
class Recipe:
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 10
    # None ("auto") leaves a setting to plan_for_budget, which fits it to the run's length.
    batch_size: int | None = None
    lr: float | None = None  # the peak rate of the schedule
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup_epochs: float = 0.0
    step_every: int = 30  # epochs between decays, for the step schedule
    step_gamma: float = 0.1
    label_smoothing: float = 0.1
    # Max global gradient norm; 0: no clipping; None ("auto"): the plan clips where it also
    # picks the rate (see plan_for_budget).
    grad_clip: float | None = None
    init: str = "kaiming"
    zero_init_last: bool = False
    # Batch-norm statistics recomputed over training images before each evaluation; None:
    # where the plan is short enough for the running averages to lag (see plan_for_budget).
    precise_bn: bool | None = None
    resize: int | None = None  # square side the images are resized to; None keeps the dataset's
    augment: bool | None = None  # random crop with padding + horizontal flip
    crop_padding: int | None = None  # pixels of the random crop; None: 1/8 of the side, 0: flips only
    # Test-time flips: the reported test loss and accuracy average the logits of each test
    # image and its mirror image (worth it where training flipped images too).
    test_flip: bool = False
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    max_steps: int | None = None  # stop after this many optimizer steps, as Stop would
    limit_train: int | None = None  # use only this many training images (class-balanced)
    limit_test: int | None = None
    seed: int = 0
    # Where the network's weights start (None: random): "imagenet" (torchvision's weights
    # for the resnet18..152 presets) or the path of a state dict or resnet-gui checkpoint.
    weights: str | None = None
    freeze: str | None = None  # "stem" or "layerN": the stem and stages up to it stay fixed
    pretrained_lr_scale: float = 0.1  # the pretrained layers' rate, as a fraction of lr

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        if not isinstance(data, dict):
            raise UserError("the stored training recipe is not an object; start a new run")
        known = {f.name for f in dataclasses.fields(cls)}
        return validate_recipe(cls(**{k: v for k, v in data.items() if k in known}))


# The D2L chapter's settings: train_ch6 with lr 0.05, batch 128, Fashion-MNIST resized to 96,
# plain SGD, Xavier initialisation, no augmentation, no weight decay.
CHAPTER_RECIPE = Recipe(
    epochs=10,
    batch_size=128,
    lr=0.05,
    optimizer="sgd",
    momentum=0.0,
    nesterov=False,
    weight_decay=0.0,
    schedule="constant",
    label_smoothing=0.0,
    init="xavier",
    precise_bn=False,
    resize=96,
    augment=False,
    precision="fp32",
    channels_last=False,
)


# fmnist-fast: the recipe of the `fmnist-fast` architecture, tuned to pass 93 % test accuracy
# on Fashion-MNIST within five minutes on a 2-core laptop CPU (benchmarks/bench_time_to_accuracy.py).
FMNIST_FAST_RECIPE = Recipe(
    epochs=4,
    # Left to the plan: 256 and 0.4 on the full training set, smaller on a quick try.
    batch_size=None,
    lr=None,
    optimizer="sgd",
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    schedule="onecycle",
    label_smoothing=0.1,
    init="kaiming",
    zero_init_last=False,
    # A few epochs are too few for augmentation to pay off: in a sweep crops cost 2.7 points
    # and flips alone 0.5 (docs/benchmarks.md).
    augment=False,
)

# fmnist-94: the same plan over 10 epochs, seed 0: 94.29 % with one thread, 94.10 and 93.88 %
# with two (the second with the 4x4 weight-gradient kernel: other rounding); 8, 9 and 12 epochs
# ended at 94.03, 94.09 and 94.06 % (docs/benchmarks.md, section 2). 94 is the mean, not a floor.
FMNIST_94_RECIPE = FMNIST_FAST_RECIPE.replace(epochs=10)

# Named recipes: the architecture preset of the same name trains with the recipe below by
# default; any recipe can go with any architecture.
RECIPE_PRESETS: dict[str, Recipe] = {
    "chapter": CHAPTER_RECIPE,
    "fmnist-fast": FMNIST_FAST_RECIPE,
    "fmnist-94": FMNIST_94_RECIPE,
}
RECIPE_DESCRIPTIONS: dict[str, str] = {
    "chapter": "the D2L chapter's train_ch6: SGD lr 0.05, batch 128, resize 96, Xavier, fp32",
    "fmnist-fast": "one-cycle Nesterov SGD, label smoothing, no augmentation, batch 256, "
    "4 epochs: 93 % on Fashion-MNIST in 1-3 min on 2 CPU cores with the fmnist-fast network",
    "fmnist-94": "the fmnist-fast recipe over 10 epochs: 93.9-94.3 % on Fashion-MNIST with the "
    "fmnist-fast network",
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPE_PRESETS[name]
    except KeyError:
        raise UserError(f"unknown recipe {name!r}; use one of {', '.join(RECIPE_PRESETS)}"
                        ) from None


# Far beyond any useful run, yet small enough that a typo (an extra zero or three) is caught
# before it becomes a plan of centuries or a batch no memory holds.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
# Upper bounds of the optimizer's numbers, with room to spare above any published setting yet
# far below float32's 3.4e38, where torch's optimizer fails mid-step ("value cannot be converted
# to type float without overflow"). Learning rates: the largest in use, linear scaling to
# batches of 64k, are about 30. Weight decay multiplies the learning rate each step: SGD
# uses 1e-4..5e-3, AdamW up to about 1; at 10 it already removes a tenth of every weight per
# step at lr 0.01, so more is a typo (5e4 for 5e-4, say).
MAX_LR = 1000.0
MAX_WEIGHT_DECAY = 10.0


def _fail(name: str, message: str) -> NoReturn:
    raise UserError(f"training setting '{name}': {message}")


def _positive_int(name: str, value: Any, allow_none: bool = False,
                  most: int | None = None) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(name, f"must be a whole number >= 1, got {value!r}")
    if most is not None and value > most:
        _fail(name, f"must be at most {most:,}, got {value:,}")


def _number(name: str, value: Any, low: float, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(name, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        _fail(name, f"must be a finite number, got {value!r}")
    if value < low or (high is not None and value > high):
        _fail(name, f"must be between {low} and {high}, got {value}" if high is not None
              else f"must be >= {low}, got {value}")


def validate_recipe(recipe: Recipe) -> Recipe:
    """Raise :class:`UserError` naming the first bad setting."""
    _check_data(recipe)
    _check_optimizer(recipe)
    _check_choices(recipe)
    _check_bounds(recipe)
    check_starting_weights(recipe, _fail)
    _number("pretrained_lr_scale", recipe.pretrained_lr_scale, 0.0, 1.0)
    if recipe.pretrained_lr_scale <= 0:
        _fail("pretrained_lr_scale", "must be > 0 (freeze layers with --freeze instead), got "
              f"{recipe.pretrained_lr_scale}")
    return recipe


def _check_data(recipe: Recipe) -> None:
    """The dataset, the input size and the padding of random crops."""
    if not isinstance(recipe.dataset, str) or not (
        recipe.dataset in DATASETS or recipe.dataset.startswith(FOLDER_PREFIX)
    ):
        _fail("dataset", f"unknown dataset {recipe.dataset!r}; use one of "
              f"{', '.join(DATASETS)} or {FOLDER_PREFIX}PATH")
    if recipe.dataset.strip() == FOLDER_PREFIX:
        _fail("dataset", f"{FOLDER_PREFIX} needs the path of an image folder after it, such "
              f"as {FOLDER_PREFIX}~/flowers")
    _positive_int("resize", recipe.resize, allow_none=True)
    if recipe.resize is not None and recipe.resize > MAX_INPUT_SIZE:
        _fail("resize", f"must be at most {MAX_INPUT_SIZE} pixels, got {recipe.resize}")
    if not isinstance(recipe.test_flip, bool):
        _fail("test_flip", f"must be true or false, got {recipe.test_flip!r}")
    if recipe.crop_padding is not None and (
        isinstance(recipe.crop_padding, bool) or not isinstance(recipe.crop_padding, int)
        or recipe.crop_padding < 0
    ):
        _fail("crop_padding", f"must be a whole number >= 0, got {recipe.crop_padding!r}")
    builtin = dataset_for(recipe.dataset)
    if builtin is not None:
        check_crop_padding(recipe, builtin.image_size)


def _check_optimizer(recipe: Recipe) -> None:
    """Rates, momentum, decay and the schedule's numbers (upper bounds: far larger values
    overflow the optimizer's arithmetic)."""
    _positive_int("batch_size", recipe.batch_size, allow_none=True, most=MAX_BATCH_SIZE)
    if recipe.lr is not None:
        _number("lr", recipe.lr, 0.0)
        if recipe.lr <= 0:
            _fail("lr", f"must be > 0, got {recipe.lr}")
        if recipe.lr > MAX_LR:
            _fail("lr", f"must be at most {MAX_LR:g} (30 is about the largest rate in use; "
                  f"far larger ones overflow the optimizer's arithmetic), got {recipe.lr:g}")
    _number("momentum", recipe.momentum, 0.0, 1.0)
    if recipe.nesterov and recipe.optimizer == "sgd" and recipe.momentum <= 0:
        _fail("nesterov", "needs a momentum above 0; set --momentum (0.9 is usual)")
    _number("weight_decay", recipe.weight_decay, 0.0)
    if recipe.weight_decay > MAX_WEIGHT_DECAY:
        _fail("weight_decay", f"must be at most {MAX_WEIGHT_DECAY:g} (SGD uses about 5e-4, "
              f"AdamW up to about 1; larger values erase the weights or overflow the "
              f"optimizer's arithmetic), got {recipe.weight_decay:g}")
    _number("warmup_epochs", recipe.warmup_epochs, 0.0, float(MAX_EPOCHS))
    _positive_int("step_every", recipe.step_every)
    _number("step_gamma", recipe.step_gamma, 0.0, 1.0)
    _number("label_smoothing", recipe.label_smoothing, 0.0, 0.99)
    if recipe.grad_clip is not None:
        _number("grad_clip", recipe.grad_clip, 0.0)


def _check_choices(recipe: Recipe) -> None:
    for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("init", INITS),
                          ("precision", PRECISIONS)):
        value = getattr(recipe, name)
        if value not in allowed:
            _fail(name, f"unknown value {value!r}; use one of {', '.join(allowed)}")
    if not isinstance(recipe.device, str) or not (
        recipe.device in DEVICES or re.fullmatch(r"cuda:[0-9]+", recipe.device)
    ):
        _fail("device", f"unknown device {recipe.device!r}; use one of {', '.join(DEVICES)} "
              "or cuda:N (N = 0, 1, ...)")


def _check_bounds(recipe: Recipe) -> None:
    """Epochs, step and image limits, and the seed."""
    _positive_int("epochs", recipe.epochs, most=MAX_EPOCHS)
    _positive_int("max_steps", recipe.max_steps, allow_none=True)
    _positive_int("limit_train", recipe.limit_train, allow_none=True)
    _positive_int("limit_test", recipe.limit_test, allow_none=True)
    if (isinstance(recipe.seed, bool) or not isinstance(recipe.seed, int)
            or not 0 <= recipe.seed <= MAX_SEED):
        _fail("seed", f"must be a whole number from 0 to {MAX_SEED} (2**63-1), got "
              f"{recipe.seed!r}")


# The plan for a budget (see docs/benchmarks.md, "Defaults on any budget"): enough optimizer
# steps to learn on small budgets, big batches (fast on every device) on large ones.
AUTO_BATCH_SIZES = (32, 64, 128, 256)
AUTO_MIN_STEPS = 400  # the largest batch that still leaves this many steps in the plan
AUTO_SGD_LR = 0.05  # at batch 32, in proportion to the batch (0.4 at 256, as fmnist-fast)
AUTO_ADAMW_LR = 0.003
# With the rate chosen for it, a network whose early gradients run away is held back instead
# of diverging: d2l-resnet18 at 96 px (2,000 x 2) went from chance to 82 % at clip 5, while
# networks that were stable (resnet20, fmnist-fast, preact-resnet18) were unchanged.
AUTO_GRAD_CLIP = 5.0
# A max-pooled head hands the classifier features about 3x larger than an average-pooled one
# (d2l-resnet18 at initialisation: RMS 3.3 against 1.2), and the classifier's stable step
# shrinks with their square: SGD's planned rate is a third (d2l-resnet18, 10,000 x 3: 88.8 %
# at the third against 85.3 % at the full rate; docs/benchmarks.md, section 11).
AUTO_MAX_POOL_HEAD_LR_SCALE = 1 / 3
AUTO_PRECISE_BN_STEPS = 2000  # shorter plans recompute batch-norm statistics to evaluate
AUTO_AUGMENT_EPOCHS = 15  # crops and flips pay off only over longer plans


def plan_for_budget(recipe: Recipe, num_train: int, arch: Architecture | None = None
                    ) -> Recipe:
    """``recipe`` with every "auto" (None) setting chosen for a run of ``recipe.epochs`` over
    ``num_train`` images: the batch size, the peak learning rate, precise batch norm and
    augmentation, and gradient clipping where the plan picked the rate; the rate is fitted to
    ``arch``'s head where one is given. Settings given explicitly are kept."""
    examples = recipe.epochs * max(num_train, 1)
    batch = recipe.batch_size
    if batch is None:
        fitting = [size for size in AUTO_BATCH_SIZES if examples / size >= AUTO_MIN_STEPS]
        batch = fitting[-1] if fitting else AUTO_BATCH_SIZES[0]
    changes: dict[str, Any] = {"batch_size": batch}
    if recipe.lr is None:
        changes["lr"] = (AUTO_ADAMW_LR if recipe.optimizer == "adamw"
                         else AUTO_SGD_LR * batch / 32 * _head_lr_scale(arch))
    if recipe.grad_clip is None:
        changes["grad_clip"] = AUTO_GRAD_CLIP if recipe.lr is None else 0.0
    if recipe.precise_bn is None:
        changes["precise_bn"] = examples / batch < AUTO_PRECISE_BN_STEPS
    if recipe.augment is None:
        changes["augment"] = recipe.epochs >= AUTO_AUGMENT_EPOCHS
    return recipe.replace(**changes)


def _head_lr_scale(arch: Architecture | None) -> float:
    return AUTO_MAX_POOL_HEAD_LR_SCALE if arch is not None and arch.head.pool == "max" else 1.0


def is_planned(recipe: Recipe) -> bool:
    """Whether every "auto" setting has been chosen (see :func:`plan_for_budget`)."""
    return None not in (recipe.batch_size, recipe.lr, recipe.precise_bn, recipe.augment,
                        recipe.grad_clip)


def clips_gradients(recipe: Recipe) -> bool:
    """Whether the gradients' global norm is clipped (``grad_clip`` 0 or unplanned: no)."""
    return bool(recipe.grad_clip)


def with_input_size(recipe: Recipe, arch: Architecture) -> Recipe:
    """The recipe that trains at the architecture's input size: images are resized to it, as
    the chapter's ``resize=96`` does. A recipe's own ``resize`` (``--resize S``) wins and
    sets the input size of the run; a non-square input keeps the dataset's size."""
    height, width = arch.input_size
    if recipe.resize is not None or height != width:
        return recipe
    return recipe.replace(resize=height)


def check_starting_weights(recipe: Recipe, fail) -> None:
    """``weights`` is "imagenet" or a path; ``freeze`` names the stem or a stage (layerN),
    and only means something for weights that were learned elsewhere."""
    weights, freeze = recipe.weights, recipe.freeze
    if weights is not None and (not isinstance(weights, str) or not weights.strip()):
        fail("weights", f"must be {IMAGENET_WEIGHTS!r} or the path of a weights file, got "
             f"{weights!r}")
    if freeze is None:
        return
    if not isinstance(freeze, str) or not re.fullmatch(r"stem|layer[1-9][0-9]*", freeze):
        fail("freeze", f"must be {FREEZE_STEM!r} or a stage such as layer2, got {freeze!r}")
    if weights is None:
        fail("freeze", "freezes pretrained layers, but the network starts from random weights; "
             "give --weights imagenet or --weights FILE, or leave --freeze out")


def freeze_depth(freeze: str | None) -> int:
    """How many stages ``freeze`` fixes besides the stem: None -> -1 (nothing), "stem" -> 0,
    "layer2" -> 2."""
    if freeze is None:
        return -1
    return 0 if freeze == FREEZE_STEM else int(freeze[len("layer"):])


def check_crop_padding(recipe: Recipe, side: int) -> None:
    """The random crop's padding must be smaller than the images' side (``side`` pixels, as
    stored: the crop comes before any resize); a larger one crops mostly padding."""
    if recipe.crop_padding is not None and recipe.crop_padding >= side:
        raise UserError(f"training setting 'crop_padding': must be smaller than the {side}-pixel "
                        f"side of the images, got {recipe.crop_padding}; "
                        f"{crop_padding_for(side)} (an eighth of the side) is usual")


def crop_padding_for(size: int) -> int:
    """Padding of the random crop: an eighth of the side (4 px at 28-32 px), at least 1."""
    return max(1, round(size / 8))
