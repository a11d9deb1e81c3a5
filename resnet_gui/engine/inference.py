"""The fast way to evaluate a network many times on the same images.

The lab's experiments evaluate one network hundreds of times (a loss landscape of 21x21
points, a lesion study of every block). What makes that fast on a CPU or GPU:

- the images are prepared once (resized, normalised, channels_last) and kept as one tensor;
- batch norm is folded into the convolution before it (eval mode), which removes a pass
  over every feature map;
- ``torch.inference_mode``, bf16 autocast where the device runs it natively
  (:func:`resnet_gui.engine.device.resolve_precision`), channels_last, and batches sized
  for the device (cache-sized on a CPU, large on an accelerator).

Loss and accuracy come from :func:`resnet_gui.engine.inspect.evaluate_model`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from resnet_gui.arch.recipe import Recipe
from resnet_gui.engine.data import BatchMaker, DataBundle, balanced_subset
from resnet_gui.engine.device import Placement, channels_last_is_safe
from resnet_gui.engine.inspect import evaluate_model
from resnet_gui.engine.model import PostActivationBlock, ResNet
from resnet_gui.errors import UserError

# Images per forward pass. On a CPU a batch whose feature maps stay in the core's cache wins:
# resnet20 at 28x28 in bf16 took 0.31 CPU-s per 1,000 images in batches of 64-128 against
# 0.46 s in one batch of 1,000 (one thread, median of 6). Accelerators want large batches.
CPU_EVAL_BATCH = 128
ACCELERATOR_EVAL_BATCH = 1000


@dataclass
class FoldedConv:
    """A convolution that absorbed the batch norm after it: its weight is the original one
    times ``scale`` (one factor per output channel, shaped to broadcast over the weight)."""

    name: str  # the convolution's qualified name, as in the original model
    conv: nn.Conv2d
    scale: torch.Tensor  # (out_channels, 1, 1, 1)


def conv_bn_pairs(model: ResNet) -> list[tuple[str, str]]:
    """(convolution, batch norm) names where the batch norm directly follows the convolution
    in ``model``'s forward pass, so that it can be folded into it."""
    modules = dict(model.named_modules())
    pairs: list[tuple[str, str]] = []
    for name, module in modules.items():
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            pairs += [(prefix + a, prefix + b) for (a, first), (b, second)
                      in zip(children, children[1:])
                      if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d)]
        elif isinstance(module, PostActivationBlock):
            pairs += [(f"{prefix}conv{k}", f"{prefix}bn{k}") for k in (1, 2, 3)
                      if isinstance(getattr(module, f"conv{k}", None), nn.Conv2d)
                      and isinstance(getattr(module, f"bn{k}", None), nn.BatchNorm2d)]
    stem = modules.get("conv1")
    last_stem_conv = (f"conv1.{len(stem) - 1}" if isinstance(stem, nn.Sequential) else "conv1")
    if (isinstance(modules.get(last_stem_conv), nn.Conv2d)
            and isinstance(modules.get("bn1"), nn.BatchNorm2d)):
        pairs.append((last_stem_conv, "bn1"))
    return pairs


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fold_batch_norm(model: ResNet) -> list[FoldedConv]:
    """Fold every batch norm that follows a convolution into it, in place (eval mode only:
    the running statistics become constants); the batch norms become ``nn.Identity``."""
    modules = dict(model.named_modules())
    folded = []
    with torch.no_grad():
        for conv_name, bn_name in conv_bn_pairs(model):
            conv, bn = modules[conv_name], modules[bn_name]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean,
                                                bn.running_var, bn.eps, bn.weight, bn.bias)
            conv.weight, conv.bias = weight, bias
            _set_module(model, bn_name, nn.Identity())
            folded.append(FoldedConv(conv_name, conv,
                                     scale.detach().reshape(-1, 1, 1, 1).clone()))
    return folded


def inference_copy(model: nn.Module, placement: Placement, fold: bool = True
                   ) -> tuple[nn.Module, list[FoldedConv]]:
    """A copy of ``model`` for evaluation only: eval mode, batch norm folded (when ``fold``),
    on the placement's device, channels_last where that is safe. The original is untouched."""
    copied = copy.deepcopy(model).eval()
    folded = fold_batch_norm(copied) if fold and isinstance(copied, ResNet) else []
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    channels_last = channels_last_is_safe(copied, placement.device)
    copied = copied.to(placement.device, memory_format=torch.channels_last if channels_last
                       else torch.preserve_format)
    return copied, folded


@dataclass
class EvalSet:
    """Test images prepared once for many evaluations, and how to evaluate them."""

    images: torch.Tensor  # (N, C, H, W) float, normalised, on the placement's device
    labels: torch.Tensor  # (N,) int64
    indices: torch.Tensor  # which test images (into the bundle's test set)
    num_classes: int
    placement: Placement
    batch_size: int = 0  # 0: chosen for the device

    @classmethod
    def from_bundle(cls, bundle: DataBundle, recipe: Recipe, placement: Placement,
                    count: int | None = None, seed: int = 0,
                    input_size: tuple[int, int] | None = None) -> "EvalSet":
        """``count`` class-balanced test images of ``bundle`` (all when None), prepared the
        way ``recipe`` feeds its network at test time; ``input_size`` (the architecture's)
        is the size the network takes, when known: the images are resized to it."""
        indices = (balanced_subset(bundle.test_labels, count, seed) if count
                   else torch.arange(bundle.num_test))
        resize = recipe.resize
        if input_size is not None and tuple(input_size) != bundle.image_size:
            if input_size[0] != input_size[1]:
                raise UserError(f"the network takes {input_size[0]}x{input_size[1]} images "
                                f"but the data is {bundle.image_size[0]}x"
                                f"{bundle.image_size[1]}; only square resizing is supported")
            resize = int(input_size[0])
        maker = BatchMaker(bundle.mean, bundle.std, placement.device, resize,
                           augment=False, flip=False, channels_last=True)
        images = maker(bundle.test_images[indices])
        return cls(images, bundle.test_labels[indices].to(placement.device), indices,
                   bundle.num_classes, placement)

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            self.batch_size = (CPU_EVAL_BATCH if self.placement.device.type == "cpu"
                               else ACCELERATOR_EVAL_BATCH)

    @property
    def count(self) -> int:
        return int(self.labels.shape[0])

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """Mean cross-entropy loss and accuracy of ``model`` on these images."""
        with torch.inference_mode():
            evaluation = evaluate_model(model, self.images, self.labels, lambda batch: batch,
                                        self.num_classes, batch_size=self.batch_size,
                                        autocast=self.placement.autocast, wrong_kept=0)
        return evaluation.loss, evaluation.accuracy
