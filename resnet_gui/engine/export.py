"""Export an architecture or a trained network: JSON, a standalone PyTorch file, ONNX, or a
``torch.export`` program.

An architecture exports with freshly initialised weights (or those of a model the caller
passes). A trained network (a checkpoint) exports with its weights, and its preprocessing
travels with it so that the exported model gives the same answer on the same image:

- onnx and pt2 wrap the network and its preprocessing into one graph that takes the
  dataset's own images, uint8 (N, C, H, W) at the dataset's image size, and returns logits;
  the class names and the preprocessing are in the file's metadata as JSON (ONNX
  ``metadata_props``, pt2 ``extra_files``), under the key ``resnet_gui``;
- py writes the code plus the state dict beside it (``NAME.pth``), with ``CLASS_NAMES``,
  ``preprocess()`` and ``load_model()`` (see :mod:`resnet_gui.engine.python_source`).

Every file is written atomically (temp file, fsync, rename): a failed export never leaves
half a file or damages an earlier one.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui.arch.model import Architecture, validate
from resnet_gui.arch.serialize import atomic_write_bytes, dumps
from resnet_gui.engine.python_source import to_python_source
from resnet_gui.engine.trained import TrainedNetwork
from resnet_gui.errors import ExportError

FORMATS: dict[str, str] = {
    "json": "architecture file for resnet-gui (.json)",
    "py": "standalone PyTorch code (.py)",
    "onnx": "ONNX model with the current weights (.onnx)",
    "pt2": "torch.export program with the current weights (.pt2)",
}
METADATA_KEY = "resnet_gui"  # ONNX metadata_props key; pt2 extra file "resnet_gui.json"
PT2_METADATA_FILE = f"{METADATA_KEY}.json"

__all__ = ["FORMATS", "METADATA_KEY", "PT2_METADATA_FILE", "export", "export_trained",
           "to_python_source", "weights_path_beside"]


# -- tracing ------------------------------------------------------------------------------


def _example_input(arch: Architecture, model: nn.Module) -> torch.Tensor:
    # A batch of 2: torch.export specialises a batch of 1 to a constant.
    from resnet_gui.engine.memory import EXPORT_EXAMPLE_BATCH

    device = next(model.parameters()).device
    return torch.randn(EXPORT_EXAMPLE_BATCH, arch.in_channels, *arch.input_size, device=device)


def _example_images(trained: TrainedNetwork) -> torch.Tensor:
    from resnet_gui.engine.memory import EXPORT_EXAMPLE_BATCH

    p = trained.preprocessing
    return torch.randint(0, 256, (EXPORT_EXAMPLE_BATCH, p.channels, *p.image_size),
                         dtype=torch.uint8)


def _require(*packages: str, purpose: str) -> None:
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"{purpose} needs the {' and '.join(missing)} package"
            f"{'s' if len(missing) > 1 else ''}; install with: pip install {' '.join(missing)}"
        )


def _fresh_model(arch: Architecture) -> nn.Module:
    from resnet_gui.engine.analysis import analyse
    from resnet_gui.engine.memory import bytes_to_export, require_memory
    from resnet_gui.engine.model import build_model

    analysis = analyse(arch)
    require_memory(bytes_to_export(analysis), "export it with weights", analysis)
    return build_model(arch)


def _traced_bytes(model: nn.Module, example: torch.Tensor, to_bytes,
                  metadata: dict[str, Any] | None = None) -> bytes:
    """Run ``to_bytes`` on the model in eval mode, leaving a caller's model as it was."""
    was_training = model.training
    model.eval()
    try:
        return to_bytes(model, example, metadata)
    finally:
        model.train(was_training)


def _onnx_bytes(model: nn.Module, example: torch.Tensor,
                metadata: dict[str, Any] | None) -> bytes:
    _require("onnx", "onnxscript", purpose="ONNX export")
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.onnx.export(
            model, (example,), dynamo=True, dynamic_shapes=({0: batch},),
            input_names=["images"], output_names=["logits"], verbose=False,
        )
    except ImportError as error:
        raise ExportError(f"ONNX export needs a package that is missing ({error}); "
                          "install with: pip install onnx onnxscript") from None
    proto = program.model_proto
    if metadata is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    return proto.SerializeToString()


def _pt2_bytes(model: nn.Module, example: torch.Tensor, metadata: dict[str, Any] | None) -> bytes:
    if not hasattr(torch, "export") or not hasattr(torch.export, "save"):
        raise ExportError(
            f"pt2 export needs torch.export (PyTorch 2.1 or newer, this is {torch.__version__}); "
            "upgrade torch"
        )
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    extra = {PT2_METADATA_FILE: json.dumps(metadata)} if metadata is not None else None
    torch.export.save(program, buffer, extra_files=extra)
    return buffer.getvalue()


_TRACERS = {"onnx": _onnx_bytes, "pt2": _pt2_bytes}


def _unknown_format(fmt: str) -> ExportError:
    return ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


# -- architectures ------------------------------------------------------------------------


def export(
    arch: Architecture,
    fmt: str,
    path: str | os.PathLike,
    model: nn.Module | None = None,
) -> Path:
    """Write ``arch`` as ``fmt`` (json, py, onnx, pt2) to ``path``; return the path.

    ONNX and pt2 carry weights: those of ``model`` when given (a trained network; it must be
    built from ``arch``), else of a freshly initialised one. They take the network's input,
    float32 (N, C, H, W), already resized and normalised.
    """
    validate(arch)
    path = Path(path)
    if fmt == "json":
        data = dumps(arch).encode("utf-8")
    elif fmt == "py":
        data = to_python_source(arch).encode("utf-8")
    elif fmt in _TRACERS:
        model = model if model is not None else _fresh_model(arch)
        data = _traced_bytes(model, _example_input(arch, model), _TRACERS[fmt])
    else:
        raise _unknown_format(fmt)
    atomic_write_bytes(path, data)
    return path


# -- trained networks ---------------------------------------------------------------------


def weights_path_beside(path: str | os.PathLike) -> Path:
    """Where the Python export of a trained network keeps its state dict: ``net.py`` ->
    ``net.pth``."""
    return Path(path).with_suffix(".pth")


def trained_metadata(trained: TrainedNetwork, preprocess: bool) -> dict[str, Any]:
    """What a user of the exported file needs besides the graph, as plain JSON."""
    p = trained.preprocessing
    c, (h, w) = p.channels, p.image_size
    if preprocess:
        takes = (f"uint8 images (N, {c}, {h}, {w}), pixel values 0-255, as the dataset holds "
                 "them; resizing and normalisation happen inside")
    else:
        ih, iw = p.input_size
        takes = (f"float32 (N, {c}, {ih}, {iw}): images resized to {ih}x{iw}, scaled to [0, 1] "
                 "and normalised with mean and std")
    return {"architecture": trained.arch.name, "input": takes, "output": "logits per class",
            "preprocessing_included": preprocess, **p.to_dict()}


def _state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save({key: value.detach().cpu().contiguous() for key, value in state.items()}, buffer)
    return buffer.getvalue()


def _refuse_foreign_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Replace ``path`` only where it holds a state dict of this very network (an earlier
    export): never a file that is not ours."""
    if not os.path.lexists(path):
        return
    try:
        held = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file at all
        held = None
    if not isinstance(held, dict) or set(held) != set(state):
        raise ExportError(f"{path} exists and is not the weights of this network; move it away "
                          "or give --out another name")


def export_trained(trained: TrainedNetwork, fmt: str, path: str | os.PathLike,
                   preprocess: bool = True) -> list[Path]:
    """Write the trained network as ``fmt`` to ``path``; return the files written.

    json writes its architecture; py the code and, beside it, its state dict; onnx and pt2 the
    network with its weights, taking the dataset's own uint8 images when ``preprocess``
    (the default) and the normalised input otherwise.
    """
    path = Path(path)
    if fmt == "json":
        return [export(trained.arch, "json", path)]
    if fmt == "py":
        weights = weights_path_beside(path)
        state = trained.model.state_dict()
        _refuse_foreign_weights(weights, state)
        atomic_write_bytes(weights, _state_dict_bytes(state))
        source = to_python_source(trained.arch, trained.preprocessing, weights.name)
        atomic_write_bytes(path, source.encode("utf-8"))
        return [path, weights]
    if fmt not in _TRACERS:
        raise _unknown_format(fmt)
    if preprocess:
        model, example = trained.with_preprocessing(), _example_images(trained)
    else:
        model, example = trained.model, _example_input(trained.arch, trained.model)
    data = _traced_bytes(model, example, _TRACERS[fmt], trained_metadata(trained, preprocess))
    atomic_write_bytes(path, data)
    return [path]
