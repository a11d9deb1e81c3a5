"""The stem's max-pool before its ReLU while training: the same function on a quarter of the
values.

ReLU is monotonic, so the maximum of rectified values is the rectified maximum, with the same
gradient (a window whose maximum is negative passes none either way). The stem's ReLU is the
one layer that runs on the full-resolution map: at 96 px d2l-resnet18 rectifies 64x48x48 values
per image there, and in-place ReLU and its backward were about a tenth of the training step.
After the pool they run on 24x24. Only while nothing watches the ReLU or the pool: a hook on
either would see a map of another size.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.modules import module as module_hooks


def _watched(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks
                or module_hooks._global_forward_hooks
                or module_hooks._global_forward_pre_hooks)


def reorders(model: nn.Module) -> bool:
    """The model has a stem of ReLU then max-pool (resnet_gui's ResNet)."""
    return (callable(getattr(model, "stem", None))
            and isinstance(getattr(model, "relu", None), nn.ReLU)
            and isinstance(getattr(model, "maxpool", None), nn.MaxPool2d))


def _pool_first(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if _watched(model.relu) or _watched(model.maxpool):
        return type(model).stem(model, x)
    return model.relu(model.maxpool(model.bn1(model.conv1(x))))


@contextlib.contextmanager
def pool_before_relu(model: nn.Module) -> Iterator[bool]:
    """Within the block, ``model``'s stem pools before it rectifies; yields whether it does."""
    if not reorders(model):
        yield False
        return
    model.stem = types.MethodType(_pool_first, model)
    try:
        yield True
    finally:
        del model.stem
