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


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_krea2_attention_prep_norms_with_the_fp32_weight_and_rotates_as_the_stock_processor(quantized):
    """Krea2AttentionPrepProcessor: q and k of every Krea2Attention (the image blocks' and the text-fusion
    blocks', these without a rotation) through one qk_norm_rope call each, the zero-centered norm weight's
    fp32 1 + w as the kernel's fp32 weight. Against the stock processor: the same bits here (the CPU
    reference and PyTorch's CPU rms_norm round alike; on the GPU an ulp of the norm's rsqrt may differ),
    with weights that bf16 cannot hold."""
    import copy

    from attention_prep_helpers import run_fused_and_stock
    from int8dit.torch import quantize_
    from int8dit.torch.attention_prep import unfuse_attention_prep
    from int8dit.torch.krea2_attention import Krea2AttentionPrepProcessor

    import test_torch_more_diffusers_models as more

    model, make_inputs = more.built("krea2")
    torch.manual_seed(2)
    for name, p in model.named_parameters():
        if "norm_q" in name or "norm_k" in name:  # zero-centered: 1 + w, w values bf16 cannot hold exactly
            p.copy_(0.2 * torch.randn_like(p) + 2.0**-12)
    assert model.transformer_blocks[0].attn.norm_q.weight.dtype == torch.float32
    if quantized:
        quantize_(model, min_features=32)
    inputs = make_inputs()
    attentions = sum(type(m).__name__ == "Krea2Attention" for m in model.modules())
    fused, got, want = run_fused_and_stock(model, inputs, attentions)
    assert isinstance(fused.transformer_blocks[0].attn.processor, Krea2AttentionPrepProcessor)
    assert torch.equal(got, want)
    # a weight stored in bf16 would round 1 + w: the fp32 multiplier is what makes the outputs this close
    rounded = copy.deepcopy(fused)
    for name, p in rounded.named_parameters():
        if "norm_q" in name or "norm_k" in name:
            p.copy_((p + 1).to(torch.bfloat16).float() - 1)
    assert not torch.equal(rounded(**inputs)[0], got)
    assert unfuse_attention_prep(fused) == attentions
    assert torch.equal(fused(**inputs)[0], want)
