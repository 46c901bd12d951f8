"""quantize_'s fused producers on real diffusers models (small configurations, CPU tensors through the
C++ reference): which modules are rewritten, that the layers reading a fused producer's output take its
int8 rows, and that the outputs match the unfused int8 path and bf16. Skips without PyTorch or diffusers
(scripts/setup.sh installs the pinned diffusers)."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch import FusedAdaLayerNormZero, GeluMLP, quantize_  # noqa: E402
from int8dit.torch.produced import PRODUCED  # noqa: E402

BF16 = torch.bfloat16
# DiT-XL/2's and PixArt-Sigma's block configurations (bench/models.py), 2 blocks, 8 heads, small latents
DIT = dict(activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=16, dropout=0.0, in_channels=4,
           norm_elementwise_affine=False, norm_num_groups=32, norm_type="ada_norm_zero", num_attention_heads=8,
           num_embeds_ada_norm=1000, num_layers=2, out_channels=8, patch_size=2, sample_size=8,
           upcast_attention=False)
PIXART = dict(activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=16, attention_type="default",
              caption_channels=64, cross_attention_dim=128, dropout=0.0, in_channels=4, interpolation_scale=1,
              norm_elementwise_affine=False, norm_eps=1e-6, norm_num_groups=32, norm_type="ada_norm_single",
              num_attention_heads=8, num_embeds_ada_norm=1000, num_layers=2, out_channels=8, patch_size=2,
              sample_size=8, upcast_attention=False, use_additional_conditions=False)


def cos(a, b):
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


def variants(model):
    model = model.to(BF16).eval()
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    report = quantize_(fused, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False, fuse_gelu=False)
    return model, fused, plain, report


@pytest.fixture
def direct_mlps(monkeypatch):
    """A list that records each MLP fed straight by its norm's kernel (GeluMLP.forward_on_rows): those
    readers take their rows without the producers' table."""
    from int8dit.torch.mlp import GeluMLP

    calls = []
    real = GeluMLP.forward_on_rows

    def recording(self, q, scale, out_dtype):
        calls.append(tuple(q.shape))
        return real(self, q, scale, out_dtype)

    monkeypatch.setattr(GeluMLP, "forward_on_rows", recording)
    return calls


def recorded_calls(monkeypatch, name: str) -> list:
    """A list of the row shapes each call of block_steps.py's ``name`` takes (the call itself unchanged)."""
    import int8dit.torch.block_steps as block_steps

    calls = []
    real = getattr(block_steps, name)
    monkeypatch.setattr(block_steps, name, lambda x, *a, **k: calls.append(tuple(x.shape)) or real(x, *a, **k))
    return calls


@pytest.fixture
def fused_norms(monkeypatch):
    """The row shapes each fused block norm (block_steps.py's layernorm_modulate_quantize calls) took."""
    return recorded_calls(monkeypatch, "layernorm_modulate_quantize_with_output")


@pytest.fixture
def rms_norms(monkeypatch):
    """The row shapes each fused RMSNorm (block_steps.py's rmsnorm_quantize calls) took."""
    return recorded_calls(monkeypatch, "rmsnorm_quantize_with_output")


def case_variants(name: str, **overrides):
    """(ref, fused, plain, report, inputs): variants() of the small model test_torch_more_diffusers_models
    holds for ``name`` (its config updated with ``overrides``), and that case's inputs."""
    import test_torch_more_diffusers_models as more

    cls_name, config, make_inputs = more.CASES[name]
    torch.manual_seed(0)
    return (*variants(getattr(diffusers, cls_name)(**dict(config, **overrides))), make_inputs())


def assert_compiled_blocks_match(model, blocks, inputs: dict, eager_out) -> None:
    """Compiled (fullgraph, aot_eager), the fused blocks give what they gave eagerly."""
    for block in blocks:
        block.compile(fullgraph=True, backend="aot_eager")
    assert cos(model(**inputs)[0], eager_out) > 0.9999


def assert_per_token_rows_follow_the_per_sample_path(run, per_token, fused_norms) -> None:
    """``run(table)`` a block given a modulation table: with every token's row the same, what one row for the
    sample gives, bit for bit; a table of another length takes the class's ops (whose broadcast fails),
    not the fused norms."""
    batch, tokens, width = per_token.shape
    row = per_token[:, :1]
    assert torch.equal(run(row.expand(batch, tokens, width).contiguous()), run(row))
    fused_norms.clear()
    with pytest.raises(RuntimeError):  # (5 rows do not broadcast over the tokens)
        run(torch.randn(batch, 5, width, dtype=per_token.dtype))
    assert fused_norms == []


def two_samples(inputs: dict, timesteps: list) -> dict:
    """``inputs`` twice over (each tensor argument stacked on itself) at two timesteps: the call of a
    pipeline that batches its guidance."""
    two = {k: torch.cat([v, v]) if isinstance(v, torch.Tensor) and v.dim() else v for k, v in inputs.items()}
    two["timestep"] = torch.tensor(timesteps)
    return two


def dit_inputs():
    return dict(hidden_states=torch.randn(2, 4, 8, 8, dtype=BF16), timestep=torch.tensor([10, 500]),
                class_labels=torch.tensor([1, 7]), return_dict=False)


def pixart_inputs():
    return dict(hidden_states=torch.randn(2, 4, 8, 8, dtype=BF16),
                encoder_hidden_states=torch.randn(2, 12, 64, dtype=BF16), timestep=torch.tensor([10, 500]),
                added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)


@torch.no_grad()
def test_dit_blocks_fuse_both_norms_and_the_gelu_mlp_and_match_the_unfused_path(direct_mlps):
    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.DiTTransformer2DModel(**DIT))
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (2, 2, 2)
    block = fused.transformer_blocks[0]
    assert isinstance(block.norm1, FusedAdaLayerNormZero) and isinstance(block.ff, GeluMLP)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    inputs = dit_inputs()
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # per block: q, k, v from norm1 (the table); the MLP's fc1 from norm3, straight from its kernel
    assert PRODUCED.hits - hits == 2 * 3 and len(direct_mlps) == 2
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999


@torch.no_grad()
def test_pixart_blocks_fuse_their_inline_norms_and_match_the_unfused_path(direct_mlps):
    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.PixArtTransformer2DModel(**PIXART))
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (0, 2, 2)
    inputs = pixart_inputs()
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # per block: q, k, v of the self-attention from its norm (the table) and fc1 straight from the MLP
    # norm's kernel; the cross-attention's k and v read the caption, which the first block's to_k
    # quantizes for every later block's k and v too
    assert PRODUCED.hits - hits == 2 * 3 + 1 + 2 and len(direct_mlps) == 2
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999


@torch.no_grad()
def test_fused_blocks_fall_back_where_the_fused_forward_does_not_apply():
    torch.manual_seed(0)
    _, fused, plain, _ = variants(diffusers.DiTTransformer2DModel(**DIT))
    inputs = dit_inputs()
    for block in fused.transformer_blocks:
        block.set_chunk_feed_forward(2, 1)  # chunked feed-forward: the class's own forward
    hits = PRODUCED.hits
    chunked = fused(**inputs)[0]
    assert PRODUCED.hits - hits == 2 * 3  # only norm1 (a module of its own) still feeds q, k, v
    hits = PRODUCED.hits
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")(**inputs)[0]
    assert PRODUCED.hits == hits  # traced: PyTorch's norms, each layer quantizing its own input
    assert cos(compiled, plain(**inputs)[0]) > 0.9999 and cos(chunked, compiled) > 0.9999


SD3 = dict(sample_size=16, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=8,
           joint_attention_dim=64, caption_projection_dim=128, pooled_projection_dim=32, out_channels=4,
           pos_embed_max_size=32)
FLUX = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32,
            num_attention_heads=4, joint_attention_dim=64, pooled_projection_dim=32, guidance_embeds=True,
            axes_dims_rope=(8, 12, 12))


FLUX_IMAGE_TOKENS, FLUX_TEXT_TOKENS = 64, 16
FLUX_TOKENS = FLUX_IMAGE_TOKENS + FLUX_TEXT_TOKENS  # the single-stream blocks' joint sequence


def flux_inputs():
    img, txt = FLUX_IMAGE_TOKENS, FLUX_TEXT_TOKENS
    return dict(hidden_states=torch.randn(1, img, 16, dtype=BF16), encoder_hidden_states=torch.randn(1, txt, 64, dtype=BF16),
                pooled_projections=torch.randn(1, 32, dtype=BF16), timestep=torch.tensor([0.5]),
                guidance=torch.tensor([3.5]), img_ids=torch.zeros(img, 3), txt_ids=torch.zeros(txt, 3),
                return_dict=False)


@torch.no_grad()
def test_sd3_joint_blocks_fuse_the_norms_before_both_mlps(direct_mlps):
    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.SD3Transformer2DModel(**SD3))
    # norm1 and norm1_context of both blocks but the last block's context norm (AdaLayerNormContinuous)
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (3, 2, 3)
    inputs = dict(hidden_states=torch.randn(2, 4, 16, 16, dtype=BF16),
                  encoder_hidden_states=torch.randn(2, 12, 64, dtype=BF16),
                  pooled_projections=torch.randn(2, 32, dtype=BF16), timestep=torch.tensor([10, 500]),
                  return_dict=False)
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # block 0: q, k, v; the text's q, k, v; both fc1s (straight from the MLP norms' kernels). Block 1
    # (context_pre_only): q, k, v; fc1; its text norm is not fused (AdaLayerNormContinuous), so
    # add_q_proj quantizes it for add_k and add_v
    assert PRODUCED.hits - hits == (3 + 3) + 3 + 2 and len(direct_mlps) == 3
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999


@torch.no_grad()
def test_flux_double_blocks_fuse_the_norms_before_both_mlps(direct_mlps):
    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.FluxTransformer2DModel(**FLUX))
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (2 + 2, 1, 2)
    inputs = flux_inputs()
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # the double block: both streams' q, k, v, and their fc1s straight from the MLP norms' kernels; each
    # single block: q, k, v and the MLP's linear
    assert PRODUCED.hits - hits == (3 + 3) + 2 * (3 + 1) and len(direct_mlps) == 2
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    for blocks in (fused.transformer_blocks, fused.single_transformer_blocks):
        for block in blocks:  # as int8dit.bench.e2e compiles them: the fused forward traces the class's
            block.compile(fullgraph=True, backend="aot_eager")
    assert cos(fused(**inputs)[0], out) > 0.9999


@torch.no_grad()
def test_flux_single_blocks_quantize_proj_outs_input_in_one_kernel(monkeypatch):
    import int8dit.torch.flux_single as flux_single

    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.FluxTransformer2DModel(**FLUX))
    assert report.concat_gelu_blocks == 2 and "2 single-stream blocks" in str(report)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    calls = []
    real = flux_single.concat_gelu_quantize_impl

    def counting(a, h, smooth):
        calls.append((tuple(a.shape), tuple(h.shape)))
        return real(a, h, smooth)

    monkeypatch.setattr(flux_single, "concat_gelu_quantize_impl", counting)
    joins = []
    real_join = flux_single._halves_of_one_tensor
    monkeypatch.setattr(flux_single, "_halves_of_one_tensor", lambda t, i: joins.append(real_join(t, i)) or joins[-1])
    inputs = flux_inputs()
    out = fused(**inputs)[0]
    # each single block: [attention (128) | proj_mlp's output (512)] over the 80 joint tokens
    assert calls == [((1, FLUX_TOKENS, 128), (1, FLUX_TOKENS, 512))] * 2
    # the first block concatenates the double-stream blocks' two outputs; the second block's tokens are
    # the halves of the first one's output, joined without a copy
    assert joins == [False, True]
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    unfused_gelu = copy.deepcopy(ref)
    assert quantize_(unfused_gelu, min_features=64, fuse_gelu=False).concat_gelu_blocks == 0
    assert cos(out, unfused_gelu(**inputs)[0]) > 0.9999
    # Compiled block by block, as int8dit.bench.e2e compiles them: the traced forward fuses through the
    # registered op (the graphs hold it, and no unfused GELU).
    graphs = []

    def recording_backend(gm, example_inputs):
        graphs.append({str(node.target) for node in gm.graph.nodes if node.op == "call_function"})
        return gm.forward

    for block in fused.single_transformer_blocks:
        block.compile(fullgraph=True, backend=recording_backend)
    assert cos(fused(**inputs)[0], out) > 0.9999
    assert len(graphs) >= 1 and all("int8dit.concat_gelu_quantize" in g for g in graphs), graphs
    assert not any("gelu" in t and "concat" not in t for g in graphs for t in g), graphs


@torch.no_grad()
def test_flux_single_blocks_keep_their_forward_where_proj_out_stays_bf16():
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(BF16).eval()
    report = quantize_(model, min_features=64, exclude=["*single_transformer_blocks.*.proj_out"])
    assert report.concat_gelu_blocks == 0 and report.gelu_mlps == 2
    assert all("forward" not in vars(block) for block in model.single_transformer_blocks)


@torch.no_grad()
def test_a_loaded_flux_checkpoint_gets_the_fused_single_blocks(tmp_path):
    import int8dit

    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(BF16).eval()
    skeleton = copy.deepcopy(model)
    quantize_(model, min_features=64)
    int8dit.save_quantized(model, str(tmp_path / "flux.safetensors"))
    loaded = int8dit.load_quantized(skeleton, str(tmp_path / "flux.safetensors"))
    assert all(getattr(b, "_int8dit_fused_concat_gelu", False) for b in loaded.single_transformer_blocks)
    inputs = flux_inputs()
    assert torch.equal(loaded(**inputs)[0], model(**inputs)[0])


@torch.no_grad()
def test_the_residual_update_before_each_mlp_norm_runs_in_the_norms_kernel(monkeypatch):
    import int8dit.torch.block_steps as block_steps

    calls = []
    real = block_steps.gated_residual_layernorm_modulate

    def counting(x, update, gate, shift, scale, eps, **kwargs):
        calls.append(gate is not None)
        # every MLP here is a GeluMLP on an int8dit fc1: the kernel writes its int8 rows and no bf16 output
        assert kwargs.get("want_y") is False
        return real(x, update, gate, shift, scale, eps, **kwargs)

    monkeypatch.setattr(block_steps, "gated_residual_layernorm_modulate", counting)
    cases = [
        # gate_msa * attention; the first block's residual stream is the patch embedding's transposed view,
        # which the kernel does not read (the block adds it itself)
        (diffusers.DiTTransformer2DModel(**DIT), dit_inputs, [True]),
        (diffusers.PixArtTransformer2DModel(**PIXART), pixart_inputs, [False] * 2),  # the cross-attention's, ungated
        (diffusers.FluxTransformer2DModel(**FLUX), flux_inputs, [True] * 2),  # image and text stream
    ]
    for model, make_inputs, want in cases:
        torch.manual_seed(0)
        ref, fused, plain, _ = variants(model)
        inputs = make_inputs()
        calls.clear()
        out = fused(**inputs)[0]
        assert calls == want, type(model).__name__
        assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999


def test_gated_residual_norm_equals_the_sum_then_the_norm():
    from int8dit.torch.fused import gated_residual_layernorm_modulate, layernorm_modulate_quantize_with_output

    torch.manual_seed(3)
    x, u = torch.randn(2, 5, 64, dtype=BF16), torch.randn(2, 5, 64, dtype=BF16)
    gate = torch.randn(2, 6 * 64, dtype=BF16)[:, 128:192]  # a chunk of an adaLN output: row stride 384
    shift, scale = torch.randn(2, 64, dtype=BF16), torch.randn(2, 64, dtype=BF16)
    for g in (gate, None):
        h, y, q, qs = gated_residual_layernorm_modulate(x, u, g, shift, scale, 1e-6)
        want_h = (x.float() + (1.0 if g is None else g.float()[:, None]) * u.float()).to(BF16)
        assert ((h.float() - want_h.float()).abs() <= want_h.float().abs() * 2**-7).all()  # one FMA, one rounding
        want_q, want_qs, want_y = layernorm_modulate_quantize_with_output(h, shift, scale, 1e-6, None)
        assert torch.equal(y, want_y) and torch.equal(q, want_q) and torch.equal(qs, want_qs)


def test_tensors_the_residual_kernel_does_not_take_fall_back_to_the_blocks_own_ops():
    from int8dit.torch.block_steps import residual_then_modulated_norm
    from int8dit.torch.fused import gated_residual_fits

    torch.manual_seed(4)
    norm = torch.nn.LayerNorm(64, elementwise_affine=False, eps=1e-6)
    h, u = torch.randn(2, 5, 64, dtype=BF16), torch.randn(2, 5, 64, dtype=BF16)
    gate = torch.randn(2, 1, 64, dtype=BF16)
    shift = torch.randn(2, 65, dtype=BF16)[:, 1:]  # rows that start 2 bytes into an allocation
    scale = torch.randn(2, 64, dtype=BF16)
    assert not gated_residual_fits(h, u, gate, shift, scale)
    got_h, got_y = residual_then_modulated_norm(norm, h, u, gate, shift, scale)
    want_h = (h.float() + gate.float() * u.float()).to(BF16)  # one addcmul: rounded once
    assert torch.equal(got_h, want_h)
    want_y = torch.nn.functional.layer_norm(want_h.float(), (64,), eps=1e-6) * (1 + scale.float()[:, None]) + \
        shift.float()[:, None]
    assert ((got_y.float() - want_y).abs() <= want_y.abs() * 2**-7 + 1e-3).all()


def test_broadcast_modulation_rows_are_read_from_a_copy_and_never_sent_to_the_residual_kernel():
    # expand()'s rows have a batch stride of 0, below the kernels' ld_mod >= cols: the norm reads a
    # copy (it raised before), and gated_residual_fits turns such rows away, so a block falls back.
    from int8dit.torch.fused import gated_residual_fits, layernorm_modulate_quantize_with_output

    torch.manual_seed(5)
    x = torch.randn(3, 5, 64, dtype=BF16)
    shift, scale = torch.randn(1, 64, dtype=BF16).expand(3, 64), torch.randn(3, 64, dtype=BF16)
    got = layernorm_modulate_quantize_with_output(x, shift, scale, 1e-6, None)
    want = layernorm_modulate_quantize_with_output(x, shift.contiguous(), scale, 1e-6, None)
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert not gated_residual_fits(x, x, None, shift, scale)
    assert gated_residual_fits(x, x, None, shift.contiguous(), scale)
    assert not gated_residual_fits(x, x, scale.unsqueeze(0), scale, scale)  # [1, B, K]: not one row a batch


def test_a_trainable_modulation_gets_its_whole_gradient_through_the_fused_blocks():
    # A trainable embedding feeding the adaLN modulation (or an adapter's output) requires a gradient
    # while the residual stream does not: the fused kernels' outputs have no autograd history, so the
    # blocks must take PyTorch's ops there. The gradient must match the unfused int8 path's.
    torch.manual_seed(7)
    model = diffusers.DiTTransformer2DModel(**DIT).to(BF16).eval().requires_grad_(False)
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    quantize_(fused, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False, fuse_gelu=False)
    inputs = dit_inputs()
    grads = []
    for m in (fused, plain):
        tables = [block.norm1.emb.class_embedder.embedding_table.weight for block in m.transformer_blocks]
        for t in tables:
            t.requires_grad_(True)
        m(**inputs)[0].float().square().sum().backward()
        grads.append([t.grad.float() for t in tables])
    for block, (got, want) in enumerate(zip(*grads)):  # block 0: the residual stream needs no gradient there
        assert got.abs().sum() > 0 and cos(got, want) > 0.9999, block  # 0.989 with the shift and scale rows lost


@torch.no_grad()
def test_flux2_blocks_fuse_every_norm_and_match_the_unfused_path(monkeypatch):
    import int8dit.torch.block_steps as block_steps
    from test_torch_attention_prep_more import FLUX2, flux2_inputs

    residual_norms = []
    real = block_steps.gated_residual_layernorm_modulate

    def counting(x, update, gate, shift, scale, eps, **kwargs):
        residual_norms.append(tuple(x.shape))
        return real(x, update, gate, shift, scale, eps, **kwargs)

    monkeypatch.setattr(block_steps, "gated_residual_layernorm_modulate", counting)
    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.Flux2Transformer2DModel(**FLUX2))
    # the double-stream block and both single-stream blocks (FLUX.2 has no adaLN norm modules)
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps, report.swiglu_mlps) == (0, 3, 0, 2)
    assert "forward" not in vars(plain.transformer_blocks[0])
    inputs = flux2_inputs()
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # the double block: both streams' q, k, v and their MLPs' linear_in; each single block: its fused
    # qkv + MLP projection
    assert PRODUCED.hits - hits == (3 + 3) + 2 + 2 * 1
    # the residual update before each MLP norm (image: 64 tokens, text: 8), in the norm's kernel
    assert residual_norms == [(1, 64, 128), (1, 8, 128)]
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)  # the fused path ran: its roundings differ from the unfused one's
    for blocks_ in (fused.transformer_blocks, fused.single_transformer_blocks):
        for block in blocks_:  # as int8dit.bench.e2e compiles them: the fused forward traces the class's
            block.compile(fullgraph=True, backend="aot_eager")
    assert cos(fused(**inputs)[0], out) > 0.9999


def test_flux2_blocks_fuse_a_modulation_row_per_token(fused_norms):
    # FLUX.2's reference-image editing (KV-cache extract mode) blends a modulation row per token: the fused
    # norms read it as such, following the unfused int8 path; a table of another length takes the class's
    # forward.
    from test_torch_attention_prep_more import FLUX2

    torch.manual_seed(0)
    model = diffusers.Flux2Transformer2DModel(**FLUX2).to(BF16).eval()
    plain = copy.deepcopy(model)
    quantize_(model, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False, fuse_gelu=False, fuse_swiglu=False)
    single, plain_single = model.single_transformer_blocks[0], plain.single_transformer_blocks[0]
    double, plain_double = model.transformer_blocks[0], plain.transformer_blocks[0]
    x, txt = torch.randn(1, 24, 128, dtype=BF16), torch.randn(1, 8, 128, dtype=BF16)
    with torch.no_grad():
        per_token = torch.randn(1, 24, 3 * 128, dtype=BF16)
        got, want = single(x, None, per_token), plain_single(x, None, per_token)
        assert fused_norms == [(1, 24, 128)] and cos(got, want) > 0.9999 and not torch.equal(got, want)
        # the text and image tokens joined in the block: a row for each of the 8 + 24
        joined = torch.randn(1, 32, 3 * 128, dtype=BF16)
        got, want = single(x, txt, joined), plain_single(x, txt, joined)
        assert fused_norms[-1] == (1, 32, 128) and cos(got, want) > 0.9999
        per_token_img, per_token_txt = torch.randn(1, 24, 6 * 128, dtype=BF16), torch.randn(1, 8, 6 * 128, dtype=BF16)
        got = double(x, txt, per_token_img, per_token_txt)
        want = plain_double(x, txt, per_token_img, per_token_txt)
        assert all(cos(g, w) > 0.9999 and not torch.equal(g, w) for g, w in zip(got, want))
        assert fused_norms[-2:] == [(1, 24, 128), (1, 8, 128)]
        assert_per_token_rows_follow_the_per_sample_path(lambda mod: single(x, None, mod), per_token, fused_norms)


@torch.no_grad()
def test_qwen_image_blocks_fuse_every_norm_and_match_the_unfused_path(direct_mlps):
    from test_torch_attention_prep import QWEN, qwen_inputs

    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.QwenImageTransformer2DModel(**QWEN))
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (0, 2, 4)
    inputs = qwen_inputs()
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # each block: both streams' q, k, v from the norm1 kernels; both MLPs' fc1 straight from the norm2 kernels
    assert PRODUCED.hits - hits == 2 * (3 + 3) and len(direct_mlps) == 2 * 2
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    for block in fused.transformer_blocks:  # compiled: the class's forward, traced
        block.compile(fullgraph=True, backend="aot_eager")
    assert cos(fused(**inputs)[0], out) > 0.9999


@torch.no_grad()
def test_qwen_image_edit_modes_modulate_index_fuses_as_a_row_set_per_token(fused_norms):
    """Qwen-Image's edit mode (zero_cond_t) holds two modulation row sets a sample and picks one for each image
    token by an index (the target image's tokens 0, the condition images' 1): the fused forward reads that
    choice as a row set per token, following the unfused int8 path."""
    from test_torch_attention_prep import QWEN

    torch.manual_seed(0)
    model = diffusers.QwenImageTransformer2DModel(**QWEN).to(BF16).eval()
    plain = copy.deepcopy(model)
    quantize_(model, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False, fuse_gelu=False)
    block, plain_block = model.transformer_blocks[0], plain.transformer_blocks[0]
    block.zero_cond_t = plain_block.zero_cond_t = True
    x, txt = torch.randn(1, 16, 64, dtype=BF16), torch.randn(1, 8, 64, dtype=BF16)
    mask = torch.ones(1, 8)
    temb = torch.randn(2, 64, dtype=BF16)  # two row sets a sample in edit mode
    index = torch.tensor([[0] * 8 + [1] * 8])
    got = block(x, txt, mask, temb, None, None, index)
    # the image stream's and the text stream's attention norms (the MLP norms are residual steps)
    assert fused_norms == [(1, 16, 64), (1, 8, 64)]
    want = plain_block(x, txt, mask, temb, None, None, index)
    assert all(cos(g, w) > 0.9999 and not torch.equal(g, w) for g, w in zip(got, want))
    # every token on the first row set: the result of that row set alone, a row set a sample, bit for bit
    block.zero_cond_t = False
    alone = block(x, txt, mask, temb[:1], None, None, None)
    block.zero_cond_t = True
    assert all(torch.equal(g, w) for g, w in zip(block(x, txt, mask, temb, None, None, torch.zeros_like(index)), alone))
    # an index of another shape: the class's forward
    fused_norms.clear()
    odd = torch.tensor([[0] * 4 + [1] * 4])
    with pytest.raises(RuntimeError):  # (its torch.where does not broadcast 8 indices over 16 tokens)
        block(x, txt, mask, temb, None, None, odd)
    assert fused_norms == []


@pytest.mark.parametrize("causal_condition", [True, False])
@torch.no_grad()
def test_qwen_image21_blocks_fuse_both_norms_from_the_shared_modulation(causal_condition, monkeypatch):
    """Qwen-Image 2.1's single-stream blocks scale both LayerNorms by (1 + scale), without a shift, from one
    modulation the model shares: with causal_condition the text and condition-image tokens take the t = 0
    row and the target image's tokens their sample's (a row set per token), else one row set a sample."""
    import int8dit.torch.blocks as blocks

    tables = []
    real = blocks.modulated_norm
    monkeypatch.setattr(blocks, "modulated_norm", lambda norm, x, shift, scale: tables.append(
        (tuple(x.shape), tuple(scale.shape), bool((shift == 0).all()))) or real(norm, x, shift, scale))
    ref, fused, plain, report, inputs = case_variants("qwen-image-2.1", causal_condition=causal_condition)
    assert report.fused_blocks == 2
    out = fused(**inputs)[0]
    assert len(tables) == 2 and all(no_shift for _, _, no_shift in tables)
    rows, table_rows = tables[0][0][1], tables[0][1][1]
    assert table_rows == (rows if causal_condition else 1)
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    assert_compiled_blocks_match(fused, list(fused.transformer_blocks), inputs, out)


@torch.no_grad()
def test_chroma_blocks_fuse_their_pruned_norms_and_match_the_unfused_path(direct_mlps):
    ref, fused, plain, report, inputs = case_variants("chroma")
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (0, 1 + 2, 2)
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # the double block: both streams' q, k, v (their fc1s straight from the MLP norms' kernels); each
    # single block: q, k, v and proj_mlp
    assert PRODUCED.hits - hits == (3 + 3) + 2 * (3 + 1) and len(direct_mlps) == 2
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    # Chroma's pipeline masks the text's padding: the fused blocks pass the mask on as the stock ones do
    mask = torch.ones(1, 8 + 16)
    mask[:, 5:8] = 0
    masked = dict(inputs, attention_mask=mask)
    got, want = fused(**masked)[0], plain(**masked)[0]
    assert cos(got, want) > 0.9999 and cos(got, out) < 0.99999  # the mask changed the output
    for blocks_ in (fused.transformer_blocks, fused.single_transformer_blocks):
        for block in blocks_:
            block.compile(fullgraph=True, backend="aot_eager")
    assert cos(fused(**inputs)[0], out) > 0.9999


@torch.no_grad()
def test_z_image_blocks_fold_the_modulation_into_one_rmsnorm_kernel_for_one_sample(rms_norms):
    from test_torch_attention_prep_more import Z_IMAGE

    torch.manual_seed(0)
    ref, fused, plain, report = variants(diffusers.ZImageTransformer2DModel(**dict(Z_IMAGE, dim=192,
                                                                                   axes_dims=[16, 16, 16])))
    # the noise refiner's and the main layers' blocks (the context refiner's are not modulated)
    assert (report.fused_norms, report.fused_blocks) == (0, 1 + 2)
    one = dict(x=[torch.randn(16, 1, 16, 16, dtype=BF16)], t=torch.tensor([0.5]),
               cap_feats=[torch.randn(8, 64, dtype=BF16)], return_dict=False)
    hits = PRODUCED.hits
    out = fused(**one)[0]
    # each fused block: q, k, v read the attention norm's rows, the MLP's w1 and w3 the MLP norm's; the
    # context refiner's block shares its own quantization (k, v after q, w3 after w1)
    assert PRODUCED.hits - hits == 3 * (3 + 2) + (2 + 1) and len(rms_norms) == 3 * 2
    flat = lambda outputs: torch.cat([o.flatten() for o in outputs])  # noqa: E731
    unfused = plain(**one)[0]
    assert cos(flat(out), flat(unfused)) > 0.9999 and cos(flat(out), flat(ref(**one)[0])) > 0.999
    assert not torch.equal(flat(out), flat(unfused))
    # two samples (the base model's guidance): a modulation row each, each folded into its own weight
    rms_norms.clear()
    two = dict(x=[torch.randn(16, 1, 16, 16, dtype=BF16)] * 2, t=torch.tensor([0.5, 0.3]),
               cap_feats=[torch.randn(8, 64, dtype=BF16), torch.randn(13, 64, dtype=BF16)], return_dict=False)
    got, want = fused(**two)[0], plain(**two)[0]
    assert len(rms_norms) == 3 * 2 and all(shape[0] == 2 for shape in rms_norms)
    assert cos(flat(got), flat(want)) > 0.9999 and not torch.equal(flat(got), flat(want))
    # a noise mask (a modulation row per token) on a main block's own arguments: the class's forward
    block, calls = fused.layers[0], []
    hook = block.register_forward_pre_hook(lambda _m, args, kwargs: calls.append((args, kwargs)), with_kwargs=True)
    fused(**one)
    hook.remove()
    (x, attn_mask, freqs, adaln, *_), _ = calls[0]
    rms_norms.clear()
    mask = torch.zeros(x.shape[:2], dtype=torch.long)
    mask[:, ::2] = 1
    rows = dict(noise_mask=mask, adaln_noisy=adaln, adaln_clean=adaln.flip(-1))
    got = block(x, attn_mask, freqs, None, **rows)
    assert rms_norms == [] and torch.equal(got, type(block).forward(block, x, attn_mask, freqs, None, **rows))


@torch.no_grad()
def test_lumina2_blocks_fold_the_modulation_into_one_rmsnorm_kernel_for_one_sample(rms_norms):
    ref, fused, plain, report, one = case_variants("lumina2")
    # the noise refiner's block and the main layers' (the context refiner's are not modulated)
    assert report.fused_blocks == 1 + 2
    hits = PRODUCED.hits
    out = fused(**one)[0]
    assert len(rms_norms) == 3 * 2  # each fused block: the attention's norm and the MLP's
    # each fused block: q reads the attention norm's rows (k and v, 32 wide here, stay bf16 under
    # min_features=64), the MLP's linear_1 and linear_3 the MLP norm's; the context refiner's block
    # shares its own quantization (linear_3 after linear_1)
    assert PRODUCED.hits - hits == 3 * (1 + 2) + 1
    unfused = plain(**one)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**one)[0]) > 0.999
    assert not torch.equal(out, unfused)
    # two samples (a pipeline that batches its guidance): a modulation row each, each folded into its own
    # weight; the first sample's rows are what it gets alone
    rms_norms.clear()
    two = two_samples(one, [0.5, 0.3])
    got, want = fused(**two)[0], plain(**two)[0]
    assert len(rms_norms) == 3 * 2 and all(shape[0] == 2 for shape in rms_norms)
    assert cos(got, want) > 0.9999 and not torch.equal(got, want)
    assert cos(got[:1], out) > 0.99999
    assert_compiled_blocks_match(fused, list(fused.noise_refiner) + list(fused.layers), one, out)


@torch.no_grad()
def test_sana_blocks_fuse_the_norm_before_their_linear_attention(fused_norms):
    ref, fused, plain, report, one = case_variants("sana")
    assert report.fused_blocks == 2
    hits = PRODUCED.hits
    out = fused(**one)[0]
    # each block: norm1's kernel, whose rows the linear attention's q, k and v read (the MLP's norm feeds
    # GLUMBConv's convolutions, not fused); the caption's own quantization is shared by the
    # cross-attentions' k and v (3 of the 9)
    assert fused_norms == [(1, 256, 64)] * 2 and PRODUCED.hits - hits == 2 * 3 + 3
    unfused = plain(**one)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**one)[0]) > 0.999
    assert not torch.equal(out, unfused)
    # two samples (its pipeline batches the guidance): a modulation row set each
    fused_norms.clear()
    got, want = fused(**two_samples(one, [500, 300]))[0], plain(**two_samples(one, [500, 300]))[0]
    assert fused_norms == [(2, 256, 64)] * 2 and cos(got, want) > 0.9999 and cos(got[:1], out) > 0.99999
    assert_compiled_blocks_match(fused, fused.transformer_blocks, one, out)


@torch.no_grad()
def test_ltx_video_blocks_modulate_their_rmsnorms_in_the_layernorm_kernels(direct_mlps, fused_norms):
    ref, fused, plain, report, one = case_variants("ltx-video")
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (0, 2, 2)
    hits = PRODUCED.hits
    out = fused(**one)[0]
    # each block: norm1's kernel (RMSNorm statistics), whose rows self-attention's q, k and v read, and
    # norm2's with the cross-attention's update, whose rows fc1 takes straight from it; the text
    # features' own quantization is shared by the cross-attentions' k and v (3 of the 9)
    assert fused_norms == [(1, 32, 64)] * 2 and len(direct_mlps) == 2
    assert PRODUCED.hits - hits == 2 * 3 + 3
    unfused = plain(**one)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**one)[0]) > 0.999
    assert not torch.equal(out, unfused)
    # two samples (its pipeline batches the guidance): a modulation row set each
    two = two_samples(one, [500, 300])
    got, want = fused(**two)[0], plain(**two)[0]
    assert cos(got, want) > 0.9999 and cos(got[:1], out) > 0.99999
    # per-token timesteps (the conditioning pipelines'): a modulation row set per token, read by the
    # kernels (the block's unfused int8 forward for comparison); a table of another length, the class's ops
    block, plain_block = fused.transformer_blocks[0], plain.transformer_blocks[0]
    x, text = torch.randn(1, 32, 64, dtype=BF16), torch.randn(1, 8, 64, dtype=BF16)
    temb = torch.randn(1, 32, 6 * 64, dtype=BF16)
    fused_norms.clear()
    got = block(x, text, temb)
    assert fused_norms == [(1, 32, 64)]
    want = plain_block(x, text, temb)
    assert cos(got, want) > 0.9999 and not torch.equal(got, want)
    assert_per_token_rows_follow_the_per_sample_path(lambda mod: block(x, text, mod), temb, fused_norms)
    assert_compiled_blocks_match(fused, fused.transformer_blocks, one, out)


@torch.no_grad()
def test_mochi_blocks_scale_their_fp32_rmsnorms_in_one_kernel_a_sample(rms_norms):
    # heads of 48 and a 96-wide text stream: MLPs of 256, whose linears int8dit quantizes
    ref, fused, plain, report, one = case_variants("mochi", attention_head_dim=48, pooled_projection_dim=96)
    assert report.fused_blocks == 2
    hits = PRODUCED.hits
    out = fused(**one)[0]
    # the first block: both streams' norms before attention and before the MLPs; the last block
    # (context_pre_only) the image stream's two
    assert rms_norms == [(1, 32, 96), (1, 8, 96)] * 2 + [(1, 32, 96)] * 2
    # each block's image q, k, v and MLP input projection read the rows; the first block's text stream's
    # added q, k, v and MLP too; the last block's added k and v share its added q's own quantization
    assert PRODUCED.hits - hits == 2 * (3 + 1) + (3 + 1) + 2
    unfused = plain(**one)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**one)[0]) > 0.999
    assert not torch.equal(out, unfused)
    # two samples (its pipeline batches the guidance): a modulation row each, in its own kernel call
    rms_norms.clear()
    two = two_samples(one, [500, 300])
    got, want = fused(**two)[0], plain(**two)[0]
    assert len(rms_norms) == 6 and all(shape[0] == 2 for shape in rms_norms)
    assert cos(got, want) > 0.9999 and cos(got[:1], out) > 0.99999
    # where autograd must see a scaled norm (a trainable modulation, as a LoRA on it makes): PyTorch's ops,
    # rounded to the stream's dtype as the kernel's output is, though Mochi's scale is fp32
    from diffusers.models.normalization import RMSNorm

    from int8dit.torch.block_steps import scaled_rms_norm

    rms_norms.clear()
    x, scale = torch.randn(2, 5, 64, dtype=BF16), (1 + 0.1 * torch.randn(2, 1, 64)).requires_grad_()
    with torch.enable_grad():
        got = scaled_rms_norm(RMSNorm(0, 1e-6, False), x, scale)
    assert rms_norms == [] and got.dtype == BF16 and got.requires_grad
    want = (x.float() * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + 1e-6) * scale.detach()).to(BF16)
    assert cos(got.detach(), want) > 0.9999
    assert_compiled_blocks_match(fused, fused.transformer_blocks, one, out)


@torch.no_grad()
def test_wan_blocks_fuse_the_fp32_modulated_norms_and_their_residual_updates(direct_mlps, fused_norms, monkeypatch):
    from test_torch_attention_prep_video import wan_inputs, wan_model

    torch.manual_seed(0)
    ref, fused, plain, report = variants(wan_model())
    assert (report.fused_norms, report.fused_blocks, report.gelu_mlps) == (0, 2, 2)
    inputs = wan_inputs()  # two samples at different timesteps: a modulation row set each
    video_rows = []  # the video tokens' rows the layers found recorded (48 tokens a sample)
    lookup = type(PRODUCED).lookup

    def counting_lookup(self, x):
        found = lookup(self, x)
        if found is not None and x.shape[1] == 48:
            video_rows.append(tuple(x.shape))
        return found

    monkeypatch.setattr(type(PRODUCED), "lookup", counting_lookup)
    out = fused(**inputs)[0]
    # each block: norm1's kernel, whose rows self-attention's q, k and v all read, norm2's (the
    # cross-attention's, with its weight and bias), whose rows its q reads, and norm3's (with the
    # cross-attention's update), whose rows fc1 takes straight from it
    assert len(fused_norms) == 2 * 2 and len(video_rows) == 2 * 4 and len(direct_mlps) == 2
    assert out.dtype == BF16
    video_rows.clear()
    unfused = plain(**inputs)[0]
    assert len(video_rows) == 2 * 2  # unfused: q quantizes, k and v share it
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    for block in fused.blocks:  # compiled: the class's forward, traced
        block.compile(fullgraph=True, backend="aot_eager")
    assert cos(fused(**inputs)[0], out) > 0.9999


@pytest.mark.parametrize("weight_dtype", [BF16, torch.float32])
@torch.no_grad()
def test_a_layer_norm_with_weight_and_bias_is_wans_fp32_norm_rounded_once(weight_dtype):
    """Wan's cross-attention norm (FP32LayerNorm with elementwise affine) through the modulation kernel with
    its weight and bias as the rows: PyTorch's fp32 norm rounded once, within an ulp where the weight is kept
    in fp32 (the kernel reads it in bf16, as the fused blocks read Wan's fp32 modulation); its int8 rows
    recorded for the q projection."""
    from diffusers.models.normalization import FP32LayerNorm

    from int8dit.torch.block_steps import affine_layer_norm, affine_layer_norm_fits

    torch.manual_seed(0)
    norm = FP32LayerNorm(64, 1e-6, elementwise_affine=True)
    norm.weight.copy_(torch.randn(64) * 0.5)  # some near 0, where the modulation's 1 + scale would be near 1
    norm.bias.copy_(torch.randn(64) * 0.1)
    norm.to(weight_dtype)
    x = (torch.randn(2, 48, 64) * 3 + 1).to(BF16)
    assert affine_layer_norm_fits(norm, x)
    assert not affine_layer_norm_fits(FP32LayerNorm(64, 1e-6, elementwise_affine=False), x)
    assert not affine_layer_norm_fits(norm, x[..., :32].contiguous())
    hits = PRODUCED.hits
    got = affine_layer_norm(norm, x)
    want = norm(x)  # the stock module: fp32 inside, rounded to bf16
    assert got.dtype == BF16 and got.shape == x.shape
    # the same norm with the weight and bias as bf16 (what the kernel reads), in fp32, rounded once: the
    # kernel's rows are within an ulp of it (only its reductions' order differs)
    rounded = torch.nn.functional.layer_norm(x.float(), (64,), norm.weight.to(BF16).float(),
                                             norm.bias.to(BF16).float(), 1e-6).to(BF16)
    ulp = torch.finfo(BF16).eps * rounded.float().abs()
    assert ((got.float() - rounded.float()).abs() <= ulp).all() and (got != rounded).float().mean() < 0.01
    if weight_dtype == BF16:
        assert torch.equal(rounded, want)  # bf16 weights: exactly the stock module's values
    else:
        assert cos(got, want) > 0.99999 and not torch.equal(rounded, want)  # fp32 weights, read as bf16
    assert PRODUCED.lookup(got) is not None and PRODUCED.hits == hits + 1
    # where autograd must see the norm: the module's own ops, rounded to x's dtype
    norm.weight.requires_grad_(True)
    with torch.enable_grad():
        traced = affine_layer_norm(norm, x)
    assert traced.requires_grad and torch.equal(traced.detach(), want)


@torch.no_grad()
def test_wan_blocks_fuse_a_modulation_row_set_per_token_as_wan_2_2_ti2v_gives_them(direct_mlps, fused_norms):
    """Wan 2.2 TI2V's pipeline gives every token its own timestep (the conditioning image's first frame at 0):
    the blocks then get a modulation row set per token ([B, T, 6, K]), which the kernels read in place of one
    per sample; until now those calls took the class's forward."""
    from test_torch_attention_prep_video import wan_inputs, wan_model

    torch.manual_seed(0)
    ref, fused, plain, report = variants(wan_model())
    inputs = wan_inputs()  # two samples, 48 video tokens each (3 frames of 16)
    per_sample = fused(**inputs)[0]
    fused_norms.clear()
    direct_mlps.clear()
    # every token at its sample's timestep: the per-sample result, bit for bit, through the per-token kernels
    uniform = dict(inputs, timestep=inputs["timestep"][:, None].expand(2, 48).contiguous())
    assert torch.equal(fused(**uniform)[0], per_sample)
    assert fused_norms == [(2, 48, 64)] * 4 and len(direct_mlps) == 2  # norm1 and norm2 a block
    # the first frame at t = 0, as image-to-video conditions it
    timestep = uniform["timestep"].clone()
    timestep[:, :16] = 0
    conditioned = dict(inputs, timestep=timestep)
    out = fused(**conditioned)[0]
    unfused = plain(**conditioned)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**conditioned)[0]) > 0.999
    assert not torch.equal(out, unfused) and cos(out, per_sample) < 0.9999


@pytest.mark.parametrize("version", ["1", "1.5"])
@torch.no_grad()
def test_hunyuan_video_dual_stream_blocks_fuse_the_norms_before_both_mlps(direct_mlps, version):
    import test_torch_attention_prep_video as video

    config, make_inputs, cls_name = ((video.HUNYUAN, video.hunyuan_inputs, "HunyuanVideoTransformer3DModel")
                                     if version == "1" else
                                     (video.HUNYUAN15, video.hunyuan15_inputs, "HunyuanVideo15Transformer3DModel"))
    torch.manual_seed(0)
    ref, fused, plain, report = variants(getattr(diffusers, cls_name)(**config))
    assert report.fused_blocks == config["num_layers"]  # the dual-stream blocks
    inputs = make_inputs()
    out = fused(**inputs)[0]
    assert len(direct_mlps) == 2 * config["num_layers"]  # both streams' fc1 straight from their norms' kernels
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)


@pytest.mark.parametrize("name, single_blocks_fused, direct", [
    ("longcat-image", 1, 2),  # the double block's two GELU MLPs read their norms' rows straight
    ("bria", 1, 2),           # (Bria names the attention keywords attention_kwargs)
    ("bria-fibo", 0, 2),      # its single block has no text stream: only its norm fuses (adanorm)
    ("ovis-image", 0, 0),     # SwiGLU MLPs (their first linears read the rows); its single block gates with SiLU
    # HunyuanVideo's blocks: the double-stream one (HunyuanImage passes the rotary embedding as
    # image_rotary_emb) and the single-stream one, image tokens first
    ("hunyuanimage", 1, 2), ("hunyuanvideo", 1, 2), ("hunyuanvideo-framepack", 1, 2),
])
@torch.no_grad()
def test_flux_and_hunyuan_block_copies_take_their_fused_forwards(name, single_blocks_fused, direct, direct_mlps,
                                                                  monkeypatch):
    """LongCat-Image, Bria, Bria FIBO and Ovis-Image carry diffusers' copies of Flux's blocks under their
    own names, HunyuanImage 2.1 and FramePack HunyuanVideo's: the same fused forwards, following the
    unfused int8 path."""
    import int8dit.torch.flux_single as flux_single

    concat_calls, real_concat = [], flux_single.concat_gelu_quantize_impl
    monkeypatch.setattr(flux_single, "concat_gelu_quantize_impl",
                        lambda *a, **k: concat_calls.append(1) or real_concat(*a, **k))
    import int8dit.torch.block_steps as block_steps

    mlp_steps, real = [], block_steps.residual_then_mlp
    monkeypatch.setattr(block_steps, "residual_then_mlp", lambda *a, **k: mlp_steps.append(1) or real(*a, **k))
    ref, fused, plain, report, inputs = case_variants(name)
    assert (report.fused_blocks, report.concat_gelu_blocks) == (1, single_blocks_fused)
    out = fused(**inputs)[0]
    # the double block's two streams ran the fused residual + MLP norm steps (block_steps), whose GELU MLPs
    # read the norms' int8 rows straight
    assert len(mlp_steps) == 2 and len(direct_mlps) == direct
    assert len(concat_calls) == single_blocks_fused  # [attention | GELU] in proj_out's quantization
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)  # (the fused path ran: its roundings differ)
    assert_compiled_blocks_match(fused, [*fused.transformer_blocks, *fused.single_transformer_blocks], inputs, out)


@pytest.mark.parametrize("mode", ["causal_mask", "diffusion_forcing", "image_to_video"])
@torch.no_grad()
def test_skyreels_v2_blocks_take_wans_fused_forward_with_their_mask(mode, monkeypatch):
    """SkyReels-V2's block is Wan's with a self-attention mask: the fused forward passes the mask (causal
    frame blocks), diffusion forcing's per-frame modulation ([B, 6, T, K], a row per token) included."""
    import int8dit.torch.blocks_video as blocks_video

    masks, real = [], blocks_video._wan_fused
    monkeypatch.setattr(blocks_video, "_wan_fused",
                        lambda self, h, e, t, r, m, *rows: masks.append(m) or real(self, h, e, t, r, m, *rows))
    ref, fused, plain, report, inputs = case_variants("skyreels-v2-i2v" if mode == "image_to_video" else "skyreels-v2-df")
    if mode == "causal_mask":  # one timestep for every frame, the causal frame blocks still on
        inputs = dict(inputs, timestep=torch.tensor([500]), enable_diffusion_forcing=False)
    assert report.fused_blocks == 2
    out = fused(**inputs)[0]
    expected_masked = {"causal_mask": [True, True], "diffusion_forcing": [True, True],
                       "image_to_video": [False, False]}[mode]
    assert [m is not None for m in masks] == expected_masked
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999


@torch.no_grad()
def test_allegro_blocks_fuse_their_pixart_style_norms(direct_mlps, fused_norms):
    """Allegro's block modulates as PixArt's does (one table for the model plus the block's own), with
    the MLP's norm in norm2: both norms fuse, the MLP reads its norm's rows straight."""
    ref, fused, plain, report, inputs = case_variants("allegro")
    assert report.fused_blocks == 2
    out = fused(**inputs)[0]
    # each block: the self-attention's norm (its q, k, v) here; the MLP's (after the cross-attention's
    # update) in the residual step, whose GELU MLP reads the rows
    assert len(fused_norms) == 2 and len(direct_mlps) == 2
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    assert_compiled_blocks_match(fused, list(fused.transformer_blocks), inputs, out)


def assert_both_streams_four_norms_fuse(variants_and_inputs, direct_mlps, fused_norms) -> None:
    """Every block of the (ref, fused, plain, report, inputs) case fused: each block's two attention norms
    through the norm kernel, both MLP norms in the residual steps (whose GELU MLP reads the rows straight);
    the output follows the unfused int8 path and the bf16 model, and the blocks compile whole."""
    ref, fused, plain, report, inputs = variants_and_inputs
    blocks = len(fused.transformer_blocks)
    assert report.fused_blocks == blocks
    out = fused(**inputs)[0]
    assert len(fused_norms) == 2 * blocks and len(direct_mlps) == 2 * blocks
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    assert_compiled_blocks_match(fused, list(fused.transformer_blocks), inputs, out)


@pytest.mark.parametrize("name", ["cogview4", "glm-image"])
@torch.no_grad()
def test_cogview4_blocks_fuse_both_streams_norms(name, direct_mlps, fused_norms):
    """CogView4's joint block (GLM-Image's is the same with a kv_cache) norms and modulates both streams
    inside its own adaLN-Zero and runs one MLP for both: all four norms fuse."""
    assert_both_streams_four_norms_fuse(case_variants(name), direct_mlps, fused_norms)


@torch.no_grad()
def test_cogvideox_blocks_fuse_both_streams_affine_norms(direct_mlps, fused_norms):
    """CogVideoX's block: both CogVideoXLayerNormZero norms (LayerNorms with their own weight and bias) of both
    streams fuse, the modulation folded into the kernel's weight and bias rows; the MLP runs a stream at a
    time, each fed by its norm's kernel."""
    case = case_variants("cogvideox")
    for model in case[:3]:  # the norms' weights and biases away from 1 and 0, alike in ref, fused and plain
        torch.manual_seed(1)
        for name, p in model.named_parameters():
            if ".norm1.norm." in name or ".norm2.norm." in name:
                p.copy_(0.5 + torch.rand_like(p))
    assert_both_streams_four_norms_fuse(case, direct_mlps, fused_norms)


def test_a_folded_affine_modulation_is_the_norms_weight_and_bias_times_one_plus_scale_plus_shift():
    from int8dit.torch.block_steps import folded_affine_modulation

    norm = torch.nn.LayerNorm(8)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(8.0)), norm.bias.copy_(torch.full((8,), 0.5))
    shift, scale = torch.full((2, 8), 0.25), torch.stack([torch.zeros(8), torch.ones(8)])
    bias, weight = folded_affine_modulation(norm, shift, scale, torch.bfloat16)
    assert weight.dtype == bias.dtype == torch.bfloat16
    assert torch.equal(weight.float(), torch.stack([torch.arange(8.0), 2 * torch.arange(8.0)]))
    assert torch.equal(bias.float(), torch.tensor([[0.75] * 8, [1.25] * 8]))
    x = torch.randn(2, 5, 8)
    folded = torch.nn.functional.layer_norm(x, (8,)) * weight.float()[:, None] + bias.float()[:, None]
    assert torch.allclose(folded, norm(x) * (1 + scale[:, None]) + shift[:, None], atol=1e-5)


@torch.no_grad()
def test_hidream_blocks_fuse_their_norms_before_attention_and_the_moe(fused_norms):
    """HiDream-I1's double-stream block (both streams) and single-stream block: the attention norms and
    the MLP norms (in front of the routed MoE and the text stream's SwiGLU) fuse."""
    import int8dit.torch.block_steps as block_steps

    ref, fused, plain, report, inputs = case_variants("hidream")
    assert report.fused_blocks == 2
    steps, real = [], block_steps.residual_then_mlp
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(block_steps, "residual_then_mlp", lambda *a, **k: steps.append(1) or real(*a, **k))
        out = fused(**inputs)[0]
    # attention norms: the double block's two, the single block's one; MLP norms: 2 + 1
    assert len(fused_norms) == 3 and len(steps) == 3
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)


@pytest.mark.parametrize("name, residual_gates, plain_norms", [
    # Cosmos 1.0: the learnable extra positional embedding's sum (ungated) in the self-attention norm's kernel,
    # the self- and cross-attention's gated updates in the cross-attention's and the MLP's norms'; one row set
    # a sample
    ("cosmos-1.0", [False, True, True] * 2, 0),
    # Cosmos 2.5: no extra embedding (the self-attention's norm alone), a timestep a frame: a row set a token
    ("cosmos-2.5", [True, True] * 2, 2),
])
@torch.no_grad()
def test_cosmos_blocks_fuse_each_norm_with_the_residual_update_before_it(name, residual_gates, plain_norms,
                                                                         fused_norms, monkeypatch):
    import int8dit.torch.block_steps as block_steps

    gates, updates = [], []
    real_norm, real_add = block_steps.gated_residual_layernorm_modulate, block_steps.gated_add
    monkeypatch.setattr(block_steps, "gated_residual_layernorm_modulate",
                        lambda x, update, gate, *a, **k: gates.append(gate is not None) or real_norm(x, update, gate, *a, **k))
    monkeypatch.setattr(block_steps, "gated_add", lambda *a: updates.append(a[1] is not None) or real_add(*a))
    ref, fused, plain, report, inputs = case_variants(name)
    assert (report.fused_norms, report.fused_blocks) == (6, 2)
    out = fused(**inputs)[0]
    assert gates == residual_gates and len(fused_norms) == plain_norms
    assert updates == [True, True]  # each block's MLP update, gated, in one op (gated_add: one kernel on the GPU)
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)


@torch.no_grad()
def test_a_cosmos_block_given_a_controlnet_residual_runs_the_stock_forward(fused_norms, monkeypatch):
    """A ControlNet's residual (added after the block's MLP update) takes the class's forward, whose norms still
    fuse (their own instance forwards), and gives what the unfused model's blocks give with it."""
    import int8dit.torch.block_steps as block_steps

    gates = []
    real = block_steps.gated_residual_layernorm_modulate
    monkeypatch.setattr(block_steps, "gated_residual_layernorm_modulate",
                        lambda *a, **k: gates.append(1) or real(*a, **k))
    ref, fused, plain, report, inputs = case_variants("cosmos-1.0", controlnet_block_every_n=1)
    tokens = 2 * 4 * 4  # 2 frames of 8 x 8 latents in 2 x 2 patches
    residuals = [0.1 * torch.randn(1, tokens, 128, dtype=BF16) for _ in range(2)]
    out = fused(**inputs, block_controlnet_hidden_states=residuals)[0]
    assert gates == [] and len(fused_norms) == 6
    assert cos(out, plain(**inputs, block_controlnet_hidden_states=residuals)[0]) > 0.9999
    assert not torch.allclose(out, fused(**inputs)[0])  # (the residuals reached the stream)


@pytest.mark.parametrize("name, rewrite, rewritten, fused_calls", [
    # Sana-Video's blocks: text to video, one row set a sample (each block's attention norm fuses)
    ("sana-video", "fused_blocks", 2, 2),
    ("sana-video-i2v", "fused_blocks", 2, 2),  # image to video: a row set a token (the first frame at t = 0)
])
@torch.no_grad()
def test_norms_fuse_where_the_modulation_is_one_row_a_sample_or_a_token_else_the_class_ops_run(
        name, rewrite, rewritten, fused_calls, fused_norms):
    ref, fused, plain, report, inputs = case_variants(name)
    assert getattr(report, rewrite) == rewritten
    out = fused(**inputs)[0]
    assert len(fused_norms) == fused_calls
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.999
    assert torch.equal(out, unfused) == (fused_calls == 0)


@torch.no_grad()
def test_kandinsky5_visual_blocks_fuse_their_three_modulated_norms(fused_norms, monkeypatch):
    """Kandinsky 5's visual blocks (loaded as a checkpoint is: modulation and time embedding in fp32; the
    zero-initialized modulation woken): the self-attention's norm, the cross-attention's with the residual
    update before it, and the MLP's fuse."""
    import int8dit.torch.block_steps as block_steps
    import test_torch_more_diffusers_models as more

    model, make_inputs = more.built("kandinsky5")
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    assert quantize_(fused, min_features=32).fused_blocks == 2
    quantize_(plain, min_features=32, fuse_norms=False, fuse_gelu=False)
    import int8dit.torch.blocks_video as blocks_video

    # (the cross-attention's norm is blocks_video's call; the MLP's, block_steps')
    steps = {(blocks_video, "residual_then_modulated_norm"): [], (block_steps, "residual_then_mlp"): []}
    for (module, name), calls in steps.items():
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _c=calls, _r=real, **k: _c.append(1) or _r(*a, **k))
    inputs = make_inputs()
    out = fused(**inputs)[0]
    assert len(fused_norms) == 2 and [len(c) for c in steps.values()] == [2, 2]
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, model(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)


@torch.no_grad()
def test_prx_blocks_fuse_the_attention_norm_and_the_mlp_norm_with_its_residual_update(fused_norms, monkeypatch):
    """PRX's block (its zero-initialized modulation woken, so that the block reaches the output): the image
    tokens' attention norm, and the MLP's norm with the attention's gated update before it."""
    import int8dit.torch.blocks as blocks
    import test_torch_more_diffusers_models as more

    model, make_inputs = more.built("prx")
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    assert quantize_(fused, min_features=32).fused_blocks == 1
    quantize_(plain, min_features=32, fuse_norms=False, fuse_gelu=False)
    residual_norms, real = [], blocks.residual_then_modulated_norm
    monkeypatch.setattr(blocks, "residual_then_modulated_norm",
                        lambda *a, **k: residual_norms.append(1) or real(*a, **k))
    inputs = make_inputs()
    out = fused(**inputs)[0]
    assert len(fused_norms) == 1 and len(residual_norms) == 1
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, model(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)
    assert_compiled_blocks_match(fused, list(fused.blocks), inputs, out)
