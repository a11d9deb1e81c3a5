"""Where and in what precision to train: ``auto`` picks what is fast on this machine.

``auto`` precision means bf16 autocast on CUDA cards that support it (fp16 with a gradient
scaler on older ones) and on CPUs with native bf16 instructions (AVX512-BF16 or AMX). CPUs
without them emulate bf16 far more slowly than fp32 (measured: 8x slower convolutions on an
AVX2-only EPYC), so there ``auto`` stays in fp32 and channels_last carries the speed-up.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from resnet_gui.errors import UserError

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """The torch device for a recipe's ``device`` setting; a missing accelerator is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device '{name}' was asked for but this machine has no usable "
                            "CUDA GPU; use --device cpu or auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device '{name}' does not exist: this machine has "
                            f"{torch.cuda.device_count()} CUDA GPU(s); use cuda:0")
        return device
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError("device 'mps' was asked for but no Apple GPU is available; "
                            "use --device cpu or auto")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 on native instructions (AVX512-BF16 / AMX), not emulation."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for a recipe's ``precision`` on ``device``."""
    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise UserError("precision fp16 is not supported on the CPU; use bf16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"  # MPS: autocast coverage is still patchy


@dataclass(frozen=True)
class Placement:
    """The device and precision a run uses, and the autocast that goes with them."""

    device: torch.device
    precision: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    @property
    def uses_scaler(self) -> bool:
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range.
        return self.precision == "fp16" and self.device.type == "cuda"

    def autocast(self, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype,
                              cache_enabled=cache_enabled)

    def describe(self) -> str:
        return str(self.device) if self.device.type != "cuda" else (
            f"{self.device} ({torch.cuda.get_device_name(self.device)})")


def placement_for(device: str, precision: str) -> Placement:
    resolved = resolve_device(device)
    return Placement(resolved, resolve_precision(precision, resolved))


def configure_backends(device: torch.device) -> None:
    """Process-wide speed switches that never change results beyond rounding."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def channels_last_is_safe(model: torch.nn.Module, device: torch.device) -> bool:
    """False where channels_last would hit a known CPU bug: oneDNN's backward of a strided 1x1
    convolution with 2 to 7 input channels corrupts the heap in channels_last (torch 2.14;
    seen with narrow custom stages). Such networks train in the default layout instead."""
    if device.type != "cpu":
        return True
    for module in model.modules():
        if (isinstance(module, torch.nn.Conv2d) and tuple(module.kernel_size) == (1, 1)
                and tuple(module.stride) != (1, 1) and 1 < module.in_channels < 8):
            return False
    return True


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def free_accelerator_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that a wall-clock reading covers the work it claims to."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
