"""Krea 2's blocks (diffusers' Krea2TransformerBlock, a small model on the CPU through the C++ reference):
the modulated RMSNorms, whose zero-centered fp32 weight folds into the modulation's scale, in the
LayerNorm kernel with RMSNorm's statistics, against the unfused int8 path. Skips without PyTorch or
diffusers."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch.produced import PRODUCED  # noqa: E402
from test_torch_diffusers_fusions import (assert_compiled_blocks_match, case_variants, cos,  # noqa: E402
                                          recorded_calls)


def perturb_norms_and_tables(model):
    """Norm weights and modulation tables away from their zeros, so that a fused forward ignoring them shows."""
    for name, p in model.named_parameters():
        if "norm" in name or "scale_shift_table" in name:
            p.copy_(0.2 * torch.randn_like(p))


@torch.no_grad()
def test_krea2_blocks_fold_the_norm_weight_into_the_modulation_and_match_the_unfused_path(monkeypatch):
    norms = recorded_calls(monkeypatch, "layernorm_modulate_quantize_with_output")
    residual_norms = recorded_calls(monkeypatch, "gated_residual_layernorm_modulate")
    ref, fused, plain, report, inputs = case_variants("krea2")
    for model in (ref, fused, plain):
        torch.manual_seed(1)
        perturb_norms_and_tables(model)
    # both blocks; the two text-fusion blocks' SwiGLUs and the blocks' own
    assert (report.fused_blocks, report.swiglu_mlps) == (2, 4)
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    fused_hits = PRODUCED.hits - hits
    hits = PRODUCED.hits
    unfused = plain(**inputs)[0]
    # each block's norm1 rows read by q, k and v, norm2's by the SwiGLU's gate and up: where the unfused
    # path quantizes the norms' outputs once for those siblings (to_q's and gate's own quantization), the
    # fused one quantizes them in the norms
    assert fused_hits - (PRODUCED.hits - hits) == 2 * 2
    # the [text, image] sequence: 8 + 64 tokens, norm1 in its kernel, norm2 with the attention's update
    assert norms == [(1, 72, 128)] * 2 and residual_norms == [(1, 72, 128)] * 2
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    assert_compiled_blocks_match(fused, fused.transformer_blocks, inputs, out)


def test_krea2_blocks_take_their_own_forward_where_autograd_sees_the_table():
    ref, fused, plain, report, inputs = case_variants("krea2")
    block = fused.transformer_blocks[0]
    block.scale_shift_table.requires_grad_(True)
    x = torch.randn(1, 72, 128, dtype=torch.bfloat16)
    temb = torch.randn(1, 1, 6 * 128, dtype=torch.bfloat16)
    rotary = fused.rotary_emb(inputs["position_ids"])
    got = block(x, temb, rotary)
    assert got.requires_grad  # the class's forward, which autograd records
    got.float().sum().backward()
    assert block.scale_shift_table.grad is not None and torch.isfinite(block.scale_shift_table.grad).all()
