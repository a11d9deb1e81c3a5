"""Why the network said what it said: Grad-CAM (Selvaraju et al. 2017) through captum's
``LayerGradCam``, for a chosen layer and class, and for the gallery's wrong predictions.

Every function here runs on the network it is given, switched to eval mode for the call and
back (as the feature-map probe does): pass the idle network, or call it from the thread that
trains it, between steps (the epoch-end probe does). Gradients are taken with
``torch.autograd.grad`` with respect to the layer's maps only, so the parameters' ``.grad``
are never touched. captum's layer hook hands the rest of the network a copy of the maps, so
an in-place ReLU after the layer cannot write over what it explains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from resnet_gui.engine.blocks import block_decomposition
from resnet_gui.engine.events import ClassActivationMap, FeatureProbe
from resnet_gui.engine.inspect import eval_mode, named_layer, probe_image, unwrap_compiled
from resnet_gui.engine.model import ResidualBlock
from resnet_gui.errors import UserError


def grad_cam(model: nn.Module, image: torch.Tensor, layer: str,
             target_class: int | None = None) -> ClassActivationMap:
    """Grad-CAM of ``target_class`` (default: the predicted class) at ``layer`` for one
    prepared image (1, C, H, W): ReLU of the maps weighted by their mean gradient, upsampled
    (bilinear) to the image's size and scaled to a maximum of 1."""
    from captum.attr import LayerAttribution, LayerGradCam  # 1-2 s to import: on first use

    model = unwrap_compiled(model)
    module = named_layer(model, layer)
    parameter = next(model.parameters(), None)
    image = image.detach().float()
    if parameter is not None:
        image = image.to(parameter.device)
    dimensions: list[int] = []
    handle = module.register_forward_hook(lambda _m, _i, output: dimensions.append(output.ndim))
    with eval_mode(model):
        try:
            with torch.no_grad():
                probabilities = model(image).float().softmax(dim=1)[0]
        finally:
            handle.remove()
        if dimensions != [4]:
            raise UserError(f"{layer} gives a vector, not maps, so Grad-CAM has nothing to "
                            "place; pick a convolution, block or stage")
        classes = int(probabilities.shape[0])
        predicted = int(probabilities.argmax())
        target = predicted if target_class is None else int(target_class)
        if not 0 <= target < classes:
            raise UserError(f"class {target} does not exist: the network has {classes} "
                            f"classes (0 to {classes - 1})")
        with torch.enable_grad():
            attribution = LayerGradCam(model, module).attribute(
                image, target=target, relu_attributions=True)
    upsampled = LayerAttribution.interpolate(attribution.detach(), tuple(image.shape[2:]),
                                             interpolate_mode="bilinear")
    heat = upsampled[0, 0].float().cpu().numpy()
    peak = float(heat.max()) if heat.size else 0.0
    heat = np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(heat)
    return ClassActivationMap(layer=layer, target_class=target,
                              heatmap=heat.astype(np.float32), predicted=predicted,
                              score=float(probabilities[target]))


def last_stage(model: nn.Module) -> str:
    """The layer Grad-CAM usually explains: the last stage, whose maps the classifier pools."""
    names = getattr(unwrap_compiled(model), "stage_names", None)
    if not names:
        raise UserError("this network has no stages; name the layer to explain")
    return names[-1]


def explain_test_image(model: nn.Module, test_images: torch.Tensor, index: int,
                       target_class: int, prepare: Callable[[torch.Tensor], torch.Tensor],
                       layer: str | None = None) -> ClassActivationMap:
    """Grad-CAM of ``target_class`` for test image ``index`` (for a wrong prediction in the
    gallery: the class it predicted, "why did it say Sandal?"), at ``layer`` (default: the
    last stage). ``prepare`` makes stored images the network's input, as in
    :func:`~resnet_gui.engine.inspect.probe_test_image`."""
    count = int(test_images.shape[0])
    if not 0 <= index < count:
        raise UserError(f"test image #{index} does not exist; there are {count} (0 to "
                        f"{count - 1})")
    image = prepare(test_images[index:index + 1])
    return grad_cam(model, image, layer or last_stage(model), target_class)


def with_block_views(model: nn.Module, probe: FeatureProbe) -> FeatureProbe:
    """``probe`` with the views of its layer added: the x / F(x) decomposition when the layer
    is a residual block, and Grad-CAM of the predicted class when its maps are larger than
    1x1. For the epoch-end probe (training thread) and an idle one alike."""
    module = named_layer(model, probe.layer)
    image = torch.from_numpy(probe.image)[None]
    decomposition = cam = None
    if isinstance(module, ResidualBlock) and module.has_shortcut:
        decomposition = block_decomposition(model, image, probe.layer)
    if probe.maps.ndim == 3 and probe.maps.shape[1] * probe.maps.shape[2] > 1:
        cam = grad_cam(model, image, probe.layer, probe.predicted)
    return replace(probe, decomposition=decomposition, cam=cam)


def probe_prepared_image(model: nn.Module, image: torch.Tensor, layer: str) -> FeatureProbe:
    """``layer``'s maps, the prediction and the block views for one prepared image
    (1, C, H, W) from outside the test set (an image file): no index, no known label (-1)."""
    maps, predicted = probe_image(model, image, layer)
    probe = FeatureProbe(layer=layer, image_index=-1,
                         image=image[0].detach().float().cpu().numpy().astype(np.float32),
                         maps=maps, label=-1, predicted=predicted)
    return with_block_views(model, probe)
