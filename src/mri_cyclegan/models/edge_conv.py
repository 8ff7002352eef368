"""The generator's first and last convolutions (1 -> ngf and ngf -> 1 channels, 7x7) as matrix products on CPU.

oneDNN runs a convolution with a single input or output channel at ~5-10 % of the machine's matmul peak
(memory-bound im2col), against ~85 % for the residual blocks' convolutions; at 96² with ngf 16 those two layers
were a tenth of a training step. Written as "one matmul over channels, then a sum of k² shifted planes", they
cost the same FLOPs at matmul speed. Same parameters and state-dict keys as ``nn.Conv2d``; CUDA, bf16 autocast,
tracing and ONNX export take the ordinary convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _shift_sum(z: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """(N, k*k, H+k-1, W+k-1) -> (N, 1, H, W): y[h, w] = sum_ij z[ij, h+i, w+j]."""
    y = z[:, 0:1, 0:h, 0:w].clone()
    for i in range(k):
        for j in range(k):
            if i or j:
                y += z[:, i * k + j : i * k + j + 1, i : i + h, j : j + w]
    return y


def _shift_spread(g: torch.Tensor, k: int, hp: int, wp: int) -> torch.Tensor:
    """Adjoint of _shift_sum: (N, 1, H, W) -> (N, k*k, H+k-1, W+k-1)."""
    n, _, h, w = g.shape
    z = g.new_zeros(n, k * k, hp, wp)
    for i in range(k):
        for j in range(k):
            z[:, i * k + j, i : i + h, j : j + w] = g[:, 0]
    return z


class _ToOneChannel(torch.autograd.Function):
    """x (N, C, Hp, Wp), weight (1, C, k, k), bias (1,) -> (N, 1, Hp-k+1, Wp-k+1), valid convolution."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        n, c, hp, wp = x.shape
        k = weight.shape[-1]
        wk = weight.reshape(c, k * k).t()  # (k², C)
        xf = x.reshape(n, c, hp * wp)
        z = torch.matmul(wk, xf).view(n, k * k, hp, wp)  # every tap's channel sum at every position
        y = _shift_sum(z, k, hp - k + 1, wp - k + 1)
        if bias is not None:
            y += bias.view(1, 1, 1, 1)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        x, weight = ctx.saved_tensors
        n, c, hp, wp = x.shape
        k = weight.shape[-1]
        gz = _shift_spread(gy.contiguous(), k, hp, wp).view(n, k * k, hp * wp)  # (N, k², Hp*Wp)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.matmul(weight.reshape(c, k * k), gz).view(n, c, hp, wp)  # (C, k²) @ (N, k², P)
        if ctx.needs_input_grad[1]:
            gw = torch.matmul(gz, x.reshape(n, c, hp * wp).transpose(1, 2)).sum(0)  # (k², C)
            gw = gw.t().reshape(1, c, k, k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum().reshape(1)
        return gx, gw, gb


class _FromOneChannel(torch.autograd.Function):
    """x (N, 1, Hp, Wp), weight (C, 1, k, k), bias (C,) -> (N, C, Hp-k+1, Wp-k+1); the forward is oneDNN's (fast
    already), the backward is two matmuls over the k² shifted copies of the input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        x, weight = ctx.saved_tensors
        n, c, h, w = gy.shape
        k = weight.shape[-1]
        gyf = gy.reshape(n, c, h * w)
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:
            cols = F.unfold(x, k)  # (N, k², H*W)
            gw = torch.matmul(gyf, cols.transpose(1, 2)).sum(0).reshape(c, 1, k, k)
        if ctx.needs_input_grad[0]:
            gcols = torch.matmul(weight.reshape(c, k * k).t(), gyf)  # (N, k², H*W)
            gx = F.fold(gcols, x.shape[-2:], k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb


# 1 -> C with C < 32 is faster in oneDNN (forward + backward at 96², batch 4, Zen 3: C 16: 7.7 ms oneDNN vs 11.8 ms
# here; C 32: 14.4 vs 11.6; C 64 at 256²: 49 vs 29). C -> 1 is faster here at every width measured (16: 15.3 vs 8.1 ms).
MIN_FAN_OUT = 32


class EdgeConv2d(nn.Conv2d):
    """``nn.Conv2d`` (stride 1, no padding, one input or one output channel) with the matmul path on CPU fp32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and not torch.onnx.is_in_onnx_export()
            and x.is_contiguous()
        )
        if fast and self.out_channels == 1:
            return _ToOneChannel.apply(x, self.weight, self.bias)
        if fast and self.out_channels >= MIN_FAN_OUT:
            return _FromOneChannel.apply(x, self.weight, self.bias)
        return super().forward(x)
