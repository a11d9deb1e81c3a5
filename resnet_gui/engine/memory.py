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
# Of the float32 layer outputs the analysis counts, the share a training step surely holds
# until its backward pass. Measured on resnet50 at 112x112, batch 16, one AdamW step: the
# counted outputs were 496 MiB, the peak grew by 270 MiB in fp32 (in-place ReLUs share their
# input's memory, yet the count has both) and by 90 MiB under bf16 autocast. Below both, so
# that only what surely cannot fit is refused.
SAVED_ACTIVATION_SHARE = {"fp32": 0.5, "half": 0.125}


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


def bytes_to_train(analysis: Analysis, batch_size: int, precision: str = "fp32") -> int:
    """A floor on what one training step of ``analysis``'s network at ``batch_size`` holds;
    ``precision`` is the run's (fp32, bf16 or fp16)."""
    weights = analysis.total_params * FLOAT32 * TRAINING_COPIES_PER_PARAMETER
    share = SAVED_ACTIVATION_SHARE["fp32" if precision == "fp32" else "half"]
    return weights + int(analysis.activation_bytes * share * batch_size)


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


def require_memory_to_train(analysis: Analysis, batch_size: int, device: torch.device,
                            precision: str = "fp32") -> None:
    """On the CPU, weights and one batch's activations against the installed memory; on a
    GPU, the weights alone against its memory (a batch too large there is retried smaller)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        available = int(torch.cuda.get_device_properties(index).total_memory)
        needed = bytes_to_train(analysis, batch_size=0)  # the weights and their states
        require_memory(needed, "train it", analysis, available=available,
                       where=f"{device}'s memory")
        return
    require_memory(bytes_to_train(analysis, batch_size, precision),
                   f"train it at batch size {batch_size}", analysis,
                   fix="use a smaller batch, or fewer, narrower or shallower stages")


__all__ = ["bytes_to_export", "bytes_to_run", "bytes_to_train", "physical_memory_bytes",
           "readable_bytes", "require_memory", "require_memory_to_train"]
