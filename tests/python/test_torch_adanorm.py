"""adaLN-Zero norms that quantize their own output (int8dit.torch.adanorm, produced.py), on CPU tensors
through the C++ reference. The modules copy the structure of diffusers' AdaLayerNormZero(Single) and of
the attention and Flux single-block MLP that read their output, so no diffusers is needed; the GPU tests
run the real ones. Skips without PyTorch."""
import copy
import gc

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from torch import nn  # noqa: E402

from int8dit.torch import FusedAdaLayerNormZero, fuse_adaln_zero, quantize_  # noqa: E402
from int8dit.torch.produced import PRODUCED  # noqa: E402

BF16 = torch.bfloat16
DIM = 128


class AdaLayerNormZero(nn.Module):  # diffusers.models.normalization.AdaLayerNormZero (no label embedding)
    def __init__(self, dim):
        super().__init__()
        self.emb = None
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, 6 * dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x, timestep=None, class_labels=None, hidden_dtype=None, emb=None):
        emb = self.linear(self.silu(emb))
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = emb.chunk(6, dim=1)
        x = self.norm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        return x, gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNormZeroSingle(nn.Module):  # diffusers' AdaLayerNormZeroSingle (Flux single-stream blocks)
    def __init__(self, dim):
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x, emb=None):
        emb = self.linear(self.silu(emb))
        shift_msa, scale_msa, gate_msa = emb.chunk(3, dim=1)
        x = self.norm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        return x, gate_msa


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        return self.to_out(self.to_q(x) * self.to_k(x) + self.to_v(x))


class Block(nn.Module):  # a DiT block's first half, then a Flux single block
    def __init__(self, dim=DIM):
        super().__init__()
        self.norm1, self.attn = AdaLayerNormZero(dim), Attention(dim)
        self.norm, self.attn2, self.proj_mlp = AdaLayerNormZeroSingle(dim), Attention(dim), nn.Linear(dim, 2 * dim)

    def forward(self, x, temb):
        y, gate, *_ = self.norm1(x, emb=temb)
        x = x + gate[:, None] * self.attn(y)
        y, gate = self.norm(x, emb=temb)
        return x + gate[:, None] * (self.attn2(y) + self.proj_mlp(y)[..., :DIM])


def blocks():
    torch.manual_seed(0)
    base = Block().to(BF16).eval()
    fused, plain = copy.deepcopy(base), copy.deepcopy(base)
    report = quantize_(fused, exclude=(), min_features=64)
    quantize_(plain, exclude=(), min_features=64, fuse_norms=False)
    return base, fused, plain, report


def inputs():
    return (torch.randn(2, 24, DIM) * 2 + 0.5).to(BF16), torch.randn(2, DIM).to(BF16)


def test_quantize_fuses_both_adaln_zero_norms_and_keeps_the_state_dict():
    _, fused, plain, report = blocks()
    assert report.fused_norms == 2 and "2 adaLN-Zero norms" in str(report)
    assert isinstance(fused.norm1, FusedAdaLayerNormZero) and isinstance(fused.norm, FusedAdaLayerNormZero)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    assert fuse_adaln_zero(fused) == 0


def test_fused_norm_output_is_the_original_within_a_rounding_and_the_block_matches():
    base, fused, plain, _ = blocks()
    x, temb = inputs()
    with torch.no_grad():
        got = fused.norm1(x, emb=temb)
        want = plain.norm1(x, emb=temb)  # the same int8 modulation linear, PyTorch's norm
        assert len(got) == len(want) == 5
        for g, w in zip(got[1:], want[1:]):
            assert torch.equal(g, w)  # the gates and the MLP's modulation pass through untouched
        torch.testing.assert_close(got[0].float(), want[0].float(), rtol=2e-2, atol=2e-2)
        out, unfused, ref = fused(x, temb), plain(x, temb), base(x, temb)
    nn_cos = nn.functional.cosine_similarity
    assert nn_cos(out.float().flatten(), unfused.float().flatten(), dim=0) > 0.9999
    assert nn_cos(out.float().flatten(), ref.float().flatten(), dim=0) > 0.999


def test_readers_take_the_norms_int8_rows_and_only_while_the_output_is_unchanged():
    _, fused, _, _ = blocks()
    x, temb = inputs()
    PRODUCED.clear()
    with torch.no_grad():
        hits = PRODUCED.hits
        fused(x, temb)
        assert PRODUCED.hits - hits == 3 + 4  # q, k, v; then q, k, v and the single block's MLP
        y, *_ = fused.norm1(x, emb=temb)
        q, scale = PRODUCED.lookup(y)
        want = fused.attn.to_q(y)  # served from the table
        from int8dit.torch.ops import gemm_w8a8_impl

        layer = fused.attn.to_q
        assert torch.equal(want, gemm_w8a8_impl(q, layer.weight, scale, layer.weight_scale, layer.bias, BF16))
        y.add_(1)  # written in place: its recorded rows are stale
        assert PRODUCED.lookup(y) is None
    del y, q, scale, want
    gc.collect()
    assert len(PRODUCED) <= 1  # entries go with their tensors (the last block output's norm may remain)


def test_untraceable_calls_take_the_original_ops():
    _, fused, plain, _ = blocks()
    x, temb = inputs()
    PRODUCED.clear()
    with torch.inference_mode():
        a = fused.norm1(x, emb=temb)[0]
        assert len(PRODUCED) == 0  # no version counter: nothing recorded
        assert torch.equal(a, plain.norm1(x, emb=temb)[0])
    with torch.no_grad():
        compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")(x, temb)
        eager = plain(x, temb)
    assert torch.equal(compiled, eager)  # traced: PyTorch's ops and each layer's own quantization


def test_a_fused_model_saves_and_loads_into_a_plain_skeleton_fused_again(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    import int8dit

    _, fused, _, _ = blocks()
    path = str(tmp_path / "fused.safetensors")
    int8dit.save_quantized(fused, path)
    with torch.device("meta"):
        skeleton = Block().to(BF16)
    int8dit.load_quantized(skeleton, path)
    assert isinstance(skeleton.norm1, FusedAdaLayerNormZero) and isinstance(skeleton.norm, FusedAdaLayerNormZero)
    assert skeleton.attn.to_q.shares_input  # the sibling share too, as quantize_ gives it
    x, temb = inputs()
    with torch.no_grad():
        assert torch.equal(skeleton(x, temb), fused(x, temb))
    plain = int8dit.load_quantized(Block().to(BF16), path, fuse_norms=False)
    assert type(plain.norm1).__name__ == "AdaLayerNormZero"
