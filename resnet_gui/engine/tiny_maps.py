"""3x3 convolutions over tiny feature maps as one matrix product, on the CPU.

oneDNN runs a 3x3 convolution that outputs a 3x3 map (the last stage of ResNet-18 at 96 px) at
about a fifth of the speed it reaches on larger maps with the same arithmetic: 512 channels at
batch 128 in bf16 took 76 ms forward and backward here, against 40 ms written as nine shifted
copies of the map and one matrix product (im2col); the stage's first, strided convolution 77
against 52 ms. The function is the same; only the kernel differs.

On 4x4 outputs oneDNN's forward and input gradient are fast, but its bf16 weight gradient is
not: 4.8 ms for 128 -> 128 channels at batch 256 (two threads), three to four times its forward
with the same multiply-adds, against 2.6 ms as im2col and one matrix product. There the
convolution keeps oneDNN for all but the weight gradient (`fmnist-fast`'s second stage).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

# Outputs of at most this many positions take the matrix product: 3x3 maps gain (512 channels,
# one thread: 137 ms against 82 ms), 4x4 maps already lose (256 channels: 28 against 34 ms).
TINY_MAP_POSITIONS = 9
# Outputs of at most this many positions (and more than the above) take only the weight
# gradient as a matrix product: 4x4 gains (128 channels: 4.8 against 2.6 ms; 64 -> 128 from
# 7x7, stride 2: 3.2 against 1.9 ms), 7x7 loses (64 channels: 2.5 against 3.5 ms).
WEIGHT_GRADIENT_POSITIONS = 16


def fits(conv: nn.Conv2d) -> bool:
    """A plain 3x3 convolution: stride 1 or 2, padding 1, no groups or dilation."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3)
            and conv.stride in ((1, 1), (2, 2))
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


def output_side(side: int, stride: int) -> int:
    return (side - 1) // stride + 1  # kernel 3, padding 1


def conv3x3_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      stride: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding=1)`` for a 3x3 ``weight``, as im2col and
    a GEMM; the result has channels_last strides."""
    n, channels, height, width = x.shape
    out_h, out_w = output_side(height, stride), output_side(width, stride)
    matrix = weight.permute(2, 3, 1, 0).reshape(9 * channels, -1)  # (kh, kw, c_in) x c_out
    out = _columns(x, stride) @ matrix
    if bias is not None:
        out = out + bias
    return out.view(n, out_h, out_w, -1).permute(0, 3, 1, 2)


def _columns(x: torch.Tensor, stride: int) -> torch.Tensor:
    """im2col for a 3x3 kernel with padding 1: (N * out_h * out_w) x (9 * C), each row one
    output position's 3x3 window, ordered (kh, kw, c)."""
    channels, height, width = x.shape[1:]
    out_h, out_w = output_side(height, stride), output_side(width, stride)
    padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # N, H+2, W+2, C
    return torch.cat([padded[:, i:i + stride * (out_h - 1) + 1:stride,
                             j:j + stride * (out_w - 1) + 1:stride, :]
                      for i in range(3) for j in range(3)], dim=3).reshape(-1, 9 * channels)


class _MatmulWeightGradient(torch.autograd.Function):
    """A 3x3 convolution (padding 1, no bias) whose weight gradient is im2col and one matrix
    product; the forward and the input gradient stay oneDNN's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        return F.conv2d(x, weight, None, stride, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        stride = ctx.stride
        grad_input = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_input = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [stride, stride], [1, 1], [1, 1], False, [0, 0], 1,
                [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            rows = grad.permute(0, 2, 3, 1).reshape(-1, weight.shape[0])  # positions x c_out
            grad_weight = (rows.t() @ _columns(x, stride)).view(
                weight.shape[0], 3, 3, -1).permute(0, 3, 1, 2)
        return grad_input, grad_weight, None


def conv3x3_with_matmul_weight_gradient(x: torch.Tensor, weight: torch.Tensor,
                                        bias: torch.Tensor | None, stride: int = 1
                                        ) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding=1)`` for a 3x3 ``weight``, its weight
    gradient computed as a matrix product; under autocast in its dtype, as conv2d would."""
    if torch.is_autocast_enabled(x.device.type) and x.dtype != torch.float64:  # torch >= 2.4
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    with torch.autocast(x.device.type, enabled=False):
        out = _MatmulWeightGradient.apply(x, weight, stride)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    stride = conv.stride[0]
    if x.dim() != 4:
        return conv._conv_forward(x, conv.weight, conv.bias)
    positions = output_side(x.shape[-2], stride) * output_side(x.shape[-1], stride)
    if positions <= TINY_MAP_POSITIONS:
        return conv3x3_as_matmul(x, conv.weight, conv.bias, stride)
    if positions <= WEIGHT_GRADIENT_POSITIONS and conv.weight.requires_grad \
            and torch.is_grad_enabled():
        return conv3x3_with_matmul_weight_gradient(x, conv.weight, conv.bias, stride)
    return conv._conv_forward(x, conv.weight, conv.bias)


@contextlib.contextmanager
def matmul_for_tiny_maps(model: nn.Module) -> Iterator[int]:
    """Within the block, ``model``'s plain 3x3 convolutions run tiny maps as a matrix
    product; yields how many convolutions may. The module's hooks, weights and state dict are
    untouched, and their own ``forward`` is back afterwards (export traces that one)."""
    convs = [module for module in model.modules() if fits(module)]
    for conv in convs:
        conv.forward = types.MethodType(_forward, conv)
    try:
        yield len(convs)
    finally:
        for conv in convs:
            del conv.forward
