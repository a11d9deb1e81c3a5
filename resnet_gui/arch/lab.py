"""The residual lab's settings and reference figures (standard library only, so that the
command line and the window can show them without importing torch)."""

from __future__ import annotations

from resnet_gui.arch.presets import PRESETS
from resnet_gui.arch.recipe import Recipe
from resnet_gui.errors import UserError

DEFAULT_DEPTHS = (20, 56)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # 6n + 2 with a preset of each kind

# He et al. 2015, Table 6: CIFAR-10 test error (%) of the residual networks, for reference.
HE_TABLE6_TEST_ERROR = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43}

# The lab's budget, chosen so that the effect shows on Fashion-MNIST within ten minutes of
# two CPU cores for depths 20 and 56 (docs/lab.md has the measurements behind it). Set here
# explicitly, not inherited from the library's default recipe. Batch 64 with a short warm-up:
# at batch 128 with none, ResNet-56 stalled for most of the 141 steps (76 % training error
# against ResNet-20's 16 %); zero-initialised branches slowed both depths.
LAB_RECIPE = Recipe(
    dataset="fashion-mnist",
    epochs=3,
    batch_size=64,
    lr=0.1,
    optimizer="sgd",
    momentum=0.9,
    nesterov=True,
    weight_decay=1e-4,
    schedule="cosine",
    warmup_epochs=0.3,
    label_smoothing=0.0,
    init="kaiming",
    zero_init_last=False,
    augment=False,
    precision="auto",
    channels_last=True,
    limit_train=6000,
    limit_test=2000,
    seed=0,
)


def check_depths(depths) -> list[int]:
    depths = list(depths)
    if not depths:
        raise UserError("give at least one depth, such as 20,56")
    for depth in depths:
        if f"resnet{depth}" not in PRESETS or depth not in CIFAR_DEPTHS:
            raise UserError(f"unknown depth {depth}; use CIFAR depths "
                            f"{', '.join(map(str, CIFAR_DEPTHS))} (6n+2), e.g. 20,56")
    if len(set(depths)) != len(depths):
        raise UserError(f"depth {next(d for d in depths if depths.count(d) > 1)} is given "
                        "twice; give each depth once")
    return sorted(depths)
