"""The paths int8dit is compared with, each applied to the same linear layers that int8dit quantizes.

- fake quant: what production "INT8" DiT inference does (the seed paper's subject): int8 weights and
  per-token int8 activations, both dequantized to bf16, then a bf16 matmul. INT8 tensor cores never run.
- FP8 rowwise: e4m3 weights per output channel, activations quantized per token in eager PyTorch,
  torch._scaled_mm with bf16 output and bias.
- torchao int8 dynamic (Int8DynamicActivationInt8WeightConfig), NF4 through bitsandbytes (Linear4bit).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..torch.quantize import _set_submodule
from ..torch.weights import quantize_weight


class FakeQuantLinear(nn.Module):
    """Quantize, dequantize to bf16, bf16 matmul (int8 storage, float compute)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        q, s = quantize_weight(linear.weight)
        self.register_buffer("weight", q)
        self.register_buffer("weight_scale", s)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x):
        amax = x.abs().amax(dim=-1, keepdim=True).float()
        scale = amax / 127.0
        xq = torch.round(x.float() / scale.clamp_min(1e-12)).clamp_(-127, 127)
        x_deq = (xq * scale).to(x.dtype)
        w_deq = (self.weight.to(torch.float32) * self.weight_scale[:, None]).to(x.dtype)
        return nn.functional.linear(x_deq, w_deq, self.bias)


class Fp8RowwiseLinear(nn.Module):
    """FP8 e4m3 rowwise: per-channel weight scales, per-token activation scales, torch._scaled_mm."""

    E4M3_MAX = 448.0

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        s = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / self.E4M3_MAX
        # _scaled_mm wants the second operand column-major: keep W [N, K] row-major and pass W.t().
        self.register_buffer("weight", (w / s).to(torch.float8_e4m3fn))
        self.register_buffer("weight_scale", s.reshape(1, -1).contiguous())
        self.bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)

    def forward(self, x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        m = x2.shape[0]
        if m % 16:  # NOTE: _scaled_mm wants every dimension a multiple of 16 (adaLN linears have M = batch)
            x2 = torch.nn.functional.pad(x2, (0, 0, 0, 16 - m % 16))
        s = x2.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12) / self.E4M3_MAX
        xq = (x2.float() / s).to(torch.float8_e4m3fn)
        y = torch._scaled_mm(xq, self.weight.t(), scale_a=s, scale_b=self.weight_scale, bias=self.bias,
                             out_dtype=torch.bfloat16)
        return y[:m].reshape(*shape[:-1], y.shape[-1])


def replace_linears(model: nn.Module, names: Iterable[str], make) -> None:
    for name in names:
        _set_submodule(model, name, make(model.get_submodule(name)))


def apply_fake_quant(model, names):
    replace_linears(model, names, FakeQuantLinear)


def apply_fp8(model, names):
    replace_linears(model, names, Fp8RowwiseLinear)


def apply_torchao_int8(model, names):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    chosen = set(names)
    quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda m, fqn: fqn in chosen)


def apply_nf4(model, names):
    import bitsandbytes as bnb

    def make(linear: nn.Linear):
        q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=linear.bias is not None,
                              compute_dtype=torch.bfloat16, quant_type="nf4", device="meta")
        # Params4bit quantizes when moved to the GPU (the .to below).
        q.weight = bnb.nn.Params4bit(linear.weight.detach(), requires_grad=False, quant_type="nf4")
        if linear.bias is not None:
            q.bias = nn.Parameter(linear.bias.detach(), requires_grad=False)
        return q.to(linear.weight.device)

    replace_linears(model, names, make)
