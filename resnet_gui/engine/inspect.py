"""Looking inside a network: feature maps through forward hooks, mosaics of channels, and the
test-set evaluation (confusion matrix, per-class accuracy, most confidently wrong images).

Everything returns numpy arrays or plain events, never tensors, so the GUI can keep results
while a worker goes on training.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet_gui.engine.events import Evaluation, FeatureProbe
from resnet_gui.errors import UserError


def named_layer(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(unwrap_compiled(model).named_modules())
    if layer in modules and layer:
        return modules[layer]
    close = difflib.get_close_matches(layer, [name for name in modules if name], n=1)
    hint = f"did you mean {close[0]!r}?" if close else "pick one from the layer table"
    raise UserError(f"the network has no layer named {layer!r}; {hint}")


def unwrap_compiled(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model`` in eval mode for the block, then back in the mode it was in. Use it only on a
    network no other thread is training: the idle one, or from the training thread itself."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def feature_maps(model: nn.Module, images: torch.Tensor, layer: str) -> np.ndarray:
    """The output of ``layer`` for ``images`` (N, C, H, W), as float32 (N, C, h, w).

    Runs in eval mode under ``no_grad`` with a forward hook; a vector output (after pooling or
    the classifier) comes back as (N, C, 1, 1).
    """
    return _maps_and_logits(model, images, layer)[0]


def probe_image(model: nn.Module, image: torch.Tensor, layer: str) -> tuple[np.ndarray, int]:
    """``layer``'s maps (C, h, w) for one prepared image (1, C, H, W), and the class the
    network predicts for it, from a single forward pass in eval mode."""
    maps, logits = _maps_and_logits(model, image, layer)
    return maps[0], int(logits.argmax(dim=1)[0])


def probe_test_image(model: nn.Module, test_images: torch.Tensor, test_labels: torch.Tensor,
                     index: int, layer: str,
                     prepare: Callable[[torch.Tensor], torch.Tensor]) -> FeatureProbe:
    """``layer``'s maps for test image ``index``, and what the network predicts for it;
    ``prepare`` turns stored images (1, C, H, W) into the network's input (resize,
    normalise, device), the same way the run feeds its model."""
    image = prepare(test_images[index:index + 1])
    maps, predicted = probe_image(model, image, layer)
    return FeatureProbe(layer=layer, image_index=index,
                        image=image[0].float().cpu().numpy().astype(np.float32), maps=maps,
                        label=int(test_labels[index]), predicted=predicted)


def _maps_and_logits(model: nn.Module, images: torch.Tensor, layer: str
                     ) -> tuple[np.ndarray, torch.Tensor]:
    model = unwrap_compiled(model)
    module = named_layer(model, layer)
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs, output) -> None:
        if isinstance(output, (tuple, list)):
            output = output[0]
        # Copy now: an in-place ReLU after this layer would overwrite the tensor we saw.
        captured.append(output.detach().float().clone())

    parameter = next(model.parameters(), None)
    if parameter is not None and images.device != parameter.device:
        images = images.to(parameter.device)
    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad(), eval_mode(model):
            logits = model(images)
    finally:
        handle.remove()
    if not captured:
        raise UserError(f"layer {layer!r} is not used in the forward pass; pick another layer")
    output = captured[0]
    if output.ndim == 2:
        output = output[:, :, None, None]
    elif output.ndim != 4:
        output = output.reshape(output.shape[0], -1, 1, 1)
    return np.ascontiguousarray(output.cpu().numpy(), dtype=np.float32), logits.detach()


def mosaic(maps: np.ndarray, columns: int | None = None, pad: int = 1,
           normalise: bool = False, pad_value: float = float("nan")) -> np.ndarray:
    """Tile channels (C, h, w) row-major into one 2-D float32 image, ``pad`` pixels apart.

    Values keep their units (so one colour scale serves every tile) unless ``normalise``
    scales each channel to [0, 1] on its own; padding is ``pad_value``, NaN by default, which
    a viewer paints as it likes. Non-finite map values become 0.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (channels, h, w), got shape {maps.shape}")
    channels, height, width = maps.shape
    if channels == 0:
        return np.zeros((0, 0), np.float32)
    columns = max(1, min(columns or math.ceil(math.sqrt(channels)), channels))
    rows = math.ceil(channels / columns)
    maps = np.where(np.isfinite(maps), maps, 0.0).astype(np.float32)
    if normalise:
        low = maps.min(axis=(1, 2), keepdims=True)
        span = maps.max(axis=(1, 2), keepdims=True) - low
        maps = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)
    out = np.full((rows * height + (rows - 1) * pad, columns * width + (columns - 1) * pad),
                  pad_value, dtype=np.float32)
    for index in range(channels):
        row, column = divmod(index, columns)
        top, left = row * (height + pad), column * (width + pad)
        out[top:top + height, left:left + width] = maps[index]
    return out


def evaluate_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int,
    batch_size: int = 256,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    wrong_kept: int = 64,
    flip: bool = False,
) -> Evaluation:
    """Loss, accuracy, confusion matrix, per-class accuracy and the most confidently wrong
    images of ``model`` on uint8 ``images`` (prepared batch by batch with ``prepare``); with
    ``flip``, of the mean logits of each image and its mirror image."""
    count = int(images.shape[0])
    if count == 0:
        empty = np.zeros((num_classes, num_classes), np.int64)
        return Evaluation(float("nan"), float("nan"), empty, np.full(num_classes, np.nan))
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    predictions, confidences = [], []
    with torch.no_grad(), eval_mode(model):
        for start in range(0, count, batch_size):
            batch = prepare(images[start:start + batch_size])
            target = labels[start:start + batch_size].to(device, non_blocking=True)
            with autocast():
                logits = model(batch).float()
                if flip:
                    logits = (logits + model(batch.flip(3)).float()) / 2
            loss_sum += F.cross_entropy(logits, target, reduction="sum").double()
            probabilities = logits.softmax(dim=1)
            confidence, predicted = probabilities.max(dim=1)
            predictions.append(predicted)
            confidences.append(confidence)
    predicted = torch.cat(predictions).cpu().numpy().astype(np.int64)
    confidence = torch.cat(confidences).cpu().numpy().astype(np.float32)
    truth = labels.cpu().numpy().astype(np.int64)
    confusion = np.bincount(truth * num_classes + predicted,
                            minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)
    wrong = np.flatnonzero(predicted != truth)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:wrong_kept]
    return Evaluation(
        loss=float(loss_sum.item() / count),
        accuracy=float(np.trace(confusion) / count),
        confusion=confusion.astype(np.int64),
        per_class_accuracy=per_class.astype(np.float64),
        wrong_indices=worst.astype(np.int64),
        wrong_predicted=predicted[worst],
        wrong_confidence=confidence[worst],
        predictions=predicted,
    )
