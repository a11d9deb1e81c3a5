"""Refuse, in one sentence, a network too large for the machine before allocating its weights.

Building a module allocates every weight at once; a user who types a width of 100000 would
otherwise meet the kernel's out-of-memory killer (or a swap storm) rather than a message. The
parameter and activation counts come from the meta-device analysis, which allocates nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from resnet_gui.engine.analysis import Analysis
from resnet_gui.errors import ArchitectureError

FLOAT32 = 4
# Training holds weights, gradients and up to two optimizer states (AdamW) per parameter.
TRAINING_COPIES_PER_PARAMETER = 4
# Exporting holds the weights plus the traced program's copy of them.
EXPORT_COPIES_PER_PARAMETER = 2
# The exporters trace the network on a batch of two (torch.export pins a batch of one).
EXPORT_EXAMPLE_BATCH = 2
# The backward pass keeps (about) every layer's output; the gradients flowing back come and
# go, so one copy keeps the estimate a floor: we refuse only what surely cannot fit.
ACTIVATION_COPIES = 1


def physical_memory_bytes() -> int | None:
    """The computer's installed memory, or None where it cannot be read."""
    if sys.platform == "win32":
        class MemoryStatus(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong),
                        ("total_physical", ctypes.c_ulonglong),
                        ("available_physical", ctypes.c_ulonglong),
                        ("total_page_file", ctypes.c_ulonglong),
                        ("available_page_file", ctypes.c_ulonglong),
                        ("total_virtual", ctypes.c_ulonglong),
                        ("available_virtual", ctypes.c_ulonglong),
                        ("available_extended_virtual", ctypes.c_ulonglong)]

        status = MemoryStatus()
        status.length = ctypes.sizeof(MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore
            return int(status.total_physical)
        return None
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def readable_bytes(count: float) -> str:
    for factor, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB")):
        if count >= factor:
            return f"{count / factor:,.1f} {unit}"
    return f"{count / 1024:,.1f} KiB"


def bytes_to_train(analysis: Analysis, batch_size: int) -> int:
    """A floor on what one training step of ``analysis``'s network at ``batch_size`` holds."""
    weights = analysis.total_params * FLOAT32 * TRAINING_COPIES_PER_PARAMETER
    return weights + analysis.activation_bytes * ACTIVATION_COPIES * batch_size


def bytes_to_export(analysis: Analysis) -> int:
    """Weights twice over, and the layer outputs of the example batch traced through them."""
    return (analysis.total_params * FLOAT32 * EXPORT_COPIES_PER_PARAMETER
            + analysis.activation_bytes * EXPORT_EXAMPLE_BATCH)


def bytes_to_run(analysis: Analysis) -> int:
    """Weights plus one example's layer outputs: what the Inspect tab's forward pass holds."""
    return analysis.total_params * FLOAT32 + analysis.activation_bytes


def require_memory(needed: int, purpose: str, analysis: Analysis, *,
                   available: int | None = None, where: str = "this computer's memory",
                   fix: str = "use fewer, narrower or shallower stages") -> None:
    """Raise :class:`ArchitectureError` when ``needed`` bytes exceed ``available`` (the
    physical memory by default). ``purpose`` completes "... needs about N to <purpose>"."""
    if available is None:
        available = physical_memory_bytes()
    if available is None or needed <= available:
        return
    raise ArchitectureError(
        f"the network has {analysis.total_params:,} parameters and needs about "
        f"{readable_bytes(needed)} to {purpose}, more than the {readable_bytes(available)} of "
        f"{where}; {fix}")


def require_memory_to_train(analysis: Analysis, batch_size: int, device: torch.device) -> None:
    """On the CPU, weights and one batch's activations against the installed memory; on a
    GPU, the weights alone against its memory (a batch too large there is retried smaller)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        available = int(torch.cuda.get_device_properties(index).total_memory)
        needed = analysis.total_params * FLOAT32 * TRAINING_COPIES_PER_PARAMETER
        require_memory(needed, "train it", analysis, available=available,
                       where=f"{device}'s memory")
        return
    require_memory(bytes_to_train(analysis, batch_size),
                   f"train it at batch size {batch_size}", analysis,
                   fix="use a smaller batch, or fewer, narrower or shallower stages")


__all__ = ["bytes_to_export", "bytes_to_run", "bytes_to_train", "physical_memory_bytes",
           "readable_bytes", "require_memory", "require_memory_to_train"]
