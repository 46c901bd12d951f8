"""What the attention-prep tests share: a fused copy of a model run beside the stock one, the
tolerance of the norm's rounding, q/k norm weights that a kernel ignoring them would show, and a copy of a
model whose q/k norms across heads int8dit's kernel computes (what the fused processors' norm computes)."""
import copy

import torch

from int8dit.torch.attention_prep import fuse_attention_prep, fused_attention_calls


def perturb_qk_norm_weights(model):
    """The q/k norms' weights away from their initial ones, so that a kernel ignoring them would show."""
    for name, p in model.named_parameters():
        if any(n in name for n in ("norm_q", "norm_k", "norm_added_q", "norm_added_k")):
            p.copy_(1 + 0.2 * torch.randn_like(p))


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


def run_fused_and_stock(model, inputs, modules, fused_calls=None):
    """A fused copy of ``model`` (``modules`` attention modules changed, ``fused_calls`` calls fused: by
    default one a module) and both outputs on ``inputs``: (fused model, fused output, stock output)."""
    fused = copy.deepcopy(model)
    assert fuse_attention_prep(fused) == modules
    want = model(**inputs)[0]
    got = fused(**inputs)[0]
    assert fused_attention_calls(fused) == (modules if fused_calls is None else fused_calls)
    return fused, got, want


def assert_follows(got, want, max_relative, min_cosine=0.99999):
    """got within the norm's rounding of want: cosine, and the largest difference against want's largest value."""
    assert cosine(got, want) > min_cosine
    assert (got.float() - want.float()).abs().max().item() <= max_relative * want.float().abs().max().item()


class KernelAcrossHeadsNorm(torch.nn.Module):
    """A [B, S, H * D] RMSNorm across H heads computed by qk_norm_rope (norm_heads = H, no rotation; the C++
    reference on the CPU, the kernel on the GPU) in place of the torch.nn.RMSNorm it wraps: what the fused
    processors' norm across heads computes, before their rotation."""

    def __init__(self, norm: torch.nn.Module, heads: int):
        super().__init__()
        self.norm, self.heads = norm, heads

    def forward(self, x):
        from int8dit.torch.attention import qk_norm_rope

        rows = x.unflatten(-1, (self.heads, -1))
        return qk_norm_rope(rows, self.norm.weight, self.norm.eps, None, norm_heads=self.heads).flatten(-2)


def with_kernel_norms(model, blocks, heads):
    """A copy of ``model`` whose self-attentions' q/k norms (``blocks``' attn1 of the copy, by attribute name)
    are KernelAcrossHeadsNorm's: the stock forward with int8dit's norm across heads."""
    copied = copy.deepcopy(model)
    for block in getattr(copied, blocks):
        block.attn1.norm_q = KernelAcrossHeadsNorm(block.attn1.norm_q, heads)
        block.attn1.norm_k = KernelAcrossHeadsNorm(block.attn1.norm_k, heads)
    return copied
