"""Where a network's weights start, and fine-tuning them.

Sources (``Recipe.weights``): ``"imagenet"``, torchvision's ImageNet weights for the presets
that mirror torchvision (resnet18/34/50/101/152), taken from torch hub's cache or downloaded
there; or a file: a state dict in torchvision's format (our presets share its names) or a
resnet-gui checkpoint.

Fine-tuning:

- The classifier is new where the classes differ (the builder's initialisation is kept).
- A greyscale network takes RGB weights with ``conv1``'s filters summed over colour: a grey
  image then gives exactly what the RGB network gives for that image copied to three
  channels. (The other way round, a colour network from greyscale weights, divides by three.)
- ``freeze`` fixes the stem and the stages up to the one named. Their batch norms stay in
  eval mode: a frozen part is then one fixed function, the same in training and testing, and
  the statistics it learned on a large dataset are not overwritten by small, noisy batches of
  a small one (as torchvision's detection models do with ``FrozenBatchNorm2d``).
- Pretrained layers learn at ``pretrained_lr_scale`` times the rate of the classifier: the
  optimizer's parameter groups carry an ``lr_scale`` that the trainer applies at every step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from resnet_gui.arch.model import Architecture
from resnet_gui.arch.presets import build_preset
from resnet_gui.arch.recipe import IMAGENET_WEIGHTS, Recipe, freeze_depth
from resnet_gui.engine.checkpoint import FORMAT as CHECKPOINT_FORMAT
from resnet_gui.engine.checkpoint import state_dict_differences
from resnet_gui.errors import WeightsError

TORCHVISION_PRESETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
HEAD = "fc"  # the classifier: new for a new dataset, never frozen, trained at the full rate
FIRST_CONVS = ("conv1.weight", "conv1.0.weight")  # a single stem conv, or the deep stem's first
DOWNLOAD_TIMEOUT_S = 30


# -- sources ----------------------------------------------------------------------------------


def torchvision_name(arch: Architecture) -> str | None:
    """The torchvision model ``arch`` is (whatever its channels, classes and input size)."""
    for name in TORCHVISION_PRESETS:
        preset = build_preset(name, arch.in_channels, arch.num_classes, arch.input_size)
        if preset.replace(name=arch.name) == arch:
            return name
    return None


def hub_checkpoint_dir() -> Path:
    """Where torch hub keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights(name: str):
    """torchvision's recommended ImageNet weights of the model ``name`` (a ``Weights`` enum)."""
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def _download(weights) -> str | None:
    """Download ``weights`` into the hub cache; None on success, else the reason."""
    from resnet_gui.engine.data import download_failure, socket_timeout

    try:
        with socket_timeout(DOWNLOAD_TIMEOUT_S):
            weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # every way a download fails means the same to the user
        return download_failure(error)
    return None


def imagenet_state_dict(arch: Architecture, download: bool = True
                        ) -> tuple[dict[str, torch.Tensor], str]:
    """torchvision's ImageNet weights for ``arch`` and a description of where they came from:
    the hub cache, else a download into it; offline, one sentence naming the file to fetch."""
    name = torchvision_name(arch)
    if name is None:
        raise WeightsError(
            f"--weights {IMAGENET_WEIGHTS} needs one of torchvision's networks "
            f"({', '.join(TORCHVISION_PRESETS)}), but '{arch.name}' differs from them; start "
            "from one of those presets, or give --weights FILE")
    weights = imagenet_weights(name)
    filename = os.path.basename(urlparse(weights.url).path)
    folder = hub_checkpoint_dir()
    cached = folder / filename
    reason = "downloads are switched off"
    if not cached.is_file() and download:
        reason = _download(weights) or "the download did not produce the file"
    if not cached.is_file():
        raise WeightsError(
            f"torchvision's ImageNet weights for {name} are not in {folder} and could not be "
            f"downloaded ({reason}); download {weights.url} and put {filename} in {folder} "
            "(or point TORCH_HOME at a folder whose hub/checkpoints holds it)")
    return read_weights_file(cached), f"torchvision's ImageNet weights for {name} ({cached})"


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: torchvision's format (a plain state dict) or a resnet-gui
    checkpoint (its model); ``module.`` and ``_orig_mod.`` prefixes are dropped."""
    path = Path(path)
    what = "a state dict (.pth, .pt) or a checkpoint written by resnet-gui train"
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; give the path of {what}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged or foreign file
        raise WeightsError(f"{path} cannot be read as weights ({type(error).__name__}); give "
                           f"{what}") from None
    if isinstance(loaded, dict) and loaded.get("format") == CHECKPOINT_FORMAT:
        loaded = loaded.get("model")
    if (not isinstance(loaded, dict) or not loaded
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                       for k, v in loaded.items())):
        raise WeightsError(f"{path} holds no state dict (names mapped to tensors); give {what}")
    for prefix in ("module.", "_orig_mod."):
        if all(key.startswith(prefix) for key in loaded):
            loaded = {key[len(prefix):]: value for key, value in loaded.items()}
    return loaded


def starting_state_dict(arch: Architecture, weights: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict ``Recipe.weights`` names, and where it came from, in words."""
    if weights == IMAGENET_WEIGHTS:
        return imagenet_state_dict(arch)
    path = Path(weights).expanduser()
    return read_weights_file(path), str(path)


# -- fitting a state dict to the network ------------------------------------------------------


def _adapt_first_conv(key: str, saved: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor | None:
    """The stem's first filters for another number of input channels, or None."""
    if key not in FIRST_CONVS or saved.ndim != 4 or saved.shape[0] != wanted.shape[0] or \
            saved.shape[2:] != wanted.shape[2:]:
        return None
    if saved.shape[1] == 3 and wanted.shape[1] == 1:  # grey in = the same grey in R, G and B
        return saved.sum(dim=1, keepdim=True)
    if saved.shape[1] == 1 and wanted.shape[1] == 3:  # colour in: its mean gives the grey
        return saved.expand(-1, 3, -1, -1) / 3
    return None


def fit_state_dict(model: nn.Module, saved: dict[str, torch.Tensor], source: str
                   ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """What of ``saved`` loads into ``model``, and what was changed or left out, as phrases.

    A new head where the classes differ and the first conv's colour channels adapt; any other
    tensor of another shape means the weights belong to another network.
    """
    current = model.state_dict()
    usable: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    mismatched: list[str] = []
    new_head = False
    for key, value in saved.items():
        if key not in current:
            continue
        if value.shape == current[key].shape:
            usable[key] = value
        elif (adapted := _adapt_first_conv(key, value, current[key])) is not None:
            usable[key] = adapted
            notes.append("conv1 summed over colour for greyscale input" if adapted.shape[1] == 1
                         else "conv1 spread over three colour channels")
        elif key.startswith(f"{HEAD}."):
            new_head = True
        else:
            mismatched.append(key)
    if mismatched:
        problems = state_dict_differences({k: saved[k] for k in mismatched},
                                          {k: current[k] for k in mismatched})
        raise WeightsError(f"the weights in {source} belong to another network: "
                           f"{'; '.join(problems)}; start from the architecture they were "
                           "saved with")
    learned = [key for key in current if not key.endswith("num_batches_tracked")]
    if not any(key in usable for key in learned):
        raise WeightsError(f"{source} holds none of this network's weights (its first tensor is "
                           f"{next(iter(saved))}, this network's is {learned[0]}); give weights "
                           "saved from this architecture")
    if new_head:
        usable = {k: v for k, v in usable.items() if not k.startswith(f"{HEAD}.")}
        notes.append(f"a new {current[f'{HEAD}.weight'].shape[0]}-class head")
    return usable, notes + _left_out(current, usable, saved, new_head)


def _left_out(current: dict, usable: dict, saved: dict, new_head: bool) -> list[str]:
    """Phrases for the tensors of the network not in the file, and of the file not used
    ("there" is the file); batch-norm step counters and a new head do not count."""
    def counts(key: str) -> bool:
        return not key.endswith("num_batches_tracked") and not (
            new_head and key.startswith(f"{HEAD}."))

    in_file = {key: usable.get(key, value) for key, value in saved.items() if counts(key)}
    return state_dict_differences(in_file, {k: v for k, v in current.items() if counts(k)})


def load_starting_weights(model: nn.Module, arch: Architecture, weights: str) -> str:
    """Load ``Recipe.weights`` into ``model``; returns one sentence saying what was loaded."""
    saved, source = starting_state_dict(arch, weights)
    usable, notes = fit_state_dict(model, saved, source)
    model.load_state_dict(usable, strict=False)
    return f"started from {source}" + (f": {'; '.join(notes)}" if notes else "")


# -- freezing and the optimizer's groups ------------------------------------------------------


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """A batch norm that stays in eval mode whatever ``model.train()`` says. Its parameters
    and buffers, and so the state dict, are those of ``nn.BatchNorm2d``."""

    def train(self, mode: bool = True) -> "FrozenBatchNorm2d":
        return super().train(False)


def frozen_modules(model: nn.Module, freeze: str | None) -> list[str]:
    """The names of the top-level modules ``freeze`` fixes: the stem, then layer1..layerN."""
    depth = freeze_depth(freeze)
    if depth < 0:
        return []
    stages = list(getattr(model, "stage_names", []))
    if depth > len(stages):
        raise WeightsError(f"--freeze {freeze}: the network has {len(stages)} stages "
                           f"({stages[0]} to {stages[-1]}); freeze one of those, or the stem")
    return ["conv1", "bn1", *stages[:depth]]


def freeze(model: nn.Module, freeze_setting: str | None) -> int:
    """Fix the parameters of the stem and stages up to ``freeze_setting``, their batch norms
    in eval mode; returns how many parameters were frozen."""
    count = 0
    for name in frozen_modules(model, freeze_setting):
        part = getattr(model, name)
        for parameter in part.parameters():
            parameter.requires_grad_(False)
            count += parameter.numel()
        for module in part.modules():
            if type(module) is nn.BatchNorm2d:
                module.__class__ = FrozenBatchNorm2d
                module.train(False)
    return count


def prepare_for_training(model: nn.Module, arch: Architecture, recipe: Recipe,
                         load: bool = True) -> str | None:
    """Start ``model`` from the recipe's weights (unless ``load`` is False: a resumed run
    has its own) and freeze what the recipe freezes; returns a notice for the user, or None."""
    notes = []
    if recipe.weights is not None and load:
        notes.append(load_starting_weights(model, arch, recipe.weights))
    frozen = freeze(model, recipe.freeze)
    if frozen:
        through = f" through {recipe.freeze}" if recipe.freeze != "stem" else ""
        notes.append(f"the stem{through} stays fixed ({frozen:,} parameters, batch norms in "
                     "eval mode)")
    return "; ".join(notes) or None


def parameter_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    """The optimizer's groups: weight decay on weights, not on biases and batch-norm scales;
    starting from learned weights, the classifier first at the full rate, then the pretrained
    layers at ``pretrained_lr_scale`` (each group's ``lr_scale``). Frozen parameters are left
    out. The groups depend only on the network and the recipe, so a resumed run rebuilds the
    same ones."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def split(members: list[tuple[str, nn.Parameter]], lr_scale: float) -> list[dict[str, Any]]:
        return [{"params": [p for _, p in members if p.ndim > 1],
                 "weight_decay": recipe.weight_decay, "lr_scale": lr_scale},
                {"params": [p for _, p in members if p.ndim <= 1], "weight_decay": 0.0,
                 "lr_scale": lr_scale}]

    if recipe.weights is None:
        return split(trainable, 1.0)
    head = [(n, p) for n, p in trainable if n.startswith(f"{HEAD}.")]
    body = [(n, p) for n, p in trainable if not n.startswith(f"{HEAD}.")]
    return split(head, 1.0) + split(body, recipe.pretrained_lr_scale)
