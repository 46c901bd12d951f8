"""The PyTorch layer on the GPU: kernels against the CPU reference, torch.compile(fullgraph=True),
CUDA graph capture, and a diffusers transformer end to end. Skips without PyTorch or a CUDA GPU."""
import copy

import numpy as np
import pytest

from helpers import assert_close_quantization, cuda_or_skip, quantize_rows_numpy

torch = cuda_or_skip()

from int8dit.torch import Linear, quantize_  # noqa: E402


def cos(a, b):
    return torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0).item()


@pytest.mark.parametrize("m,k", [(1, 64), (63, 1024), (129, 3072), (4608, 3072)])
def test_gpu_quantize_rows_is_bit_exact(m, k):
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16) * 3
    q, s = torch.ops.int8dit.quantize_rows(x, None)
    q_ref, s_ref = quantize_rows_numpy(x.float().cpu().numpy())
    np.testing.assert_array_equal(q.cpu().numpy(), q_ref)
    np.testing.assert_array_equal(s.cpu().numpy(), s_ref)


@pytest.mark.parametrize("m,n,k", [(7, 3072, 3072), (1000, 1152, 4608), (4608, 12288, 3072)])
def test_gpu_gemm_int32_equals_torch_int_mm(m, n, k):
    a = torch.randint(-127, 128, (m, k), dtype=torch.int8, device="cuda")
    b = torch.randint(-127, 128, (n, k), dtype=torch.int8, device="cuda")
    acc = torch.ops.int8dit.gemm_w8a8(a, b, torch.empty(0, device="cuda"), torch.empty(0, device="cuda"), None,
                                      torch.int32)
    assert torch.equal(acc, (a.cpu().int() @ b.cpu().int().T).cuda())


def test_gpu_linear_matches_the_cpu_reference():
    lin = torch.nn.Linear(1024, 512, device="cuda", dtype=torch.bfloat16)
    q = Linear.from_float(lin)
    x = torch.randn(3, 77, 1024, device="cuda", dtype=torch.bfloat16)
    y = q(x)
    y_cpu = q.cpu()(x.cpu())
    # bf16 outputs: one rounding of the same fp32 value, so within one bf16 ulp of each other.
    diff = (y.cpu().float() - y_cpu.float()).abs()
    assert (diff <= y_cpu.float().abs() * 2**-7 + 1e-6).all()
    assert cos(y, lin(x)) > 0.999


def test_gpu_linear_with_smoothing():
    lin = torch.nn.Linear(512, 256, device="cuda", dtype=torch.bfloat16)
    smooth = torch.rand(512, device="cuda") + 0.5
    q = Linear.from_float(lin, smooth=smooth)
    x = torch.randn(64, 512, device="cuda", dtype=torch.bfloat16)
    assert cos(q(x), lin(x)) > 0.999


@torch.no_grad()
def test_gpu_sibling_layers_share_one_quantization_bit_for_bit():
    # The sibling path on CUDA tensors: the first layer's linear call keeps its int8 rows
    # (ops.linear_keeping_rows), the others run only their GEMM on them; a strided input and a
    # 3-D one; the same bits as each layer alone. Shapes whose GEMM takes a workspace included.
    from int8dit.torch.produced import PRODUCED

    torch.manual_seed(0)
    attn = torch.nn.Module()
    attn.to_q, attn.to_k, attn.to_v = (torch.nn.Linear(1152, 1152, device="cuda", dtype=torch.bfloat16)
                                       for _ in range(3))
    alone = {n: Linear.from_float(getattr(attn, n)) for n in ("to_q", "to_k", "to_v")}
    assert quantize_(attn, exclude=(), min_features=0).shared_input_groups == 1
    for x in (torch.randn(2, 1024, 1152, device="cuda", dtype=torch.bfloat16),
              torch.randn(333, 1280, device="cuda", dtype=torch.bfloat16)[:, :1152]):
        # each layer alone first, on a copy of x: the table then holds nothing they could hit
        want = {name: alone[name](x.clone()) for name in alone}
        hits = PRODUCED.hits
        got = [attn.to_q(x), attn.to_k(x), attn.to_v(x)]
        assert PRODUCED.hits - hits == 2
        for name, y in zip(("to_q", "to_k", "to_v"), got):
            assert torch.equal(y, want[name]), name


@torch.no_grad()
def test_gpu_compiled_siblings_share_one_quantization_bit_for_bit():
    # Under torch.compile (inductor) the sibling pass makes q, k and v one int8dit::linear_group call:
    # its first call asks the dispatcher for each GEMM's workspace, later ones share one scratch.
    # Shapes whose GEMMs take a workspace (stream-K) included.
    from torch._inductor import config

    from int8dit.torch.graph_passes import install_compile_pass

    torch.manual_seed(0)
    attn = torch.nn.Module()
    attn.to_q, attn.to_k, attn.to_v = (torch.nn.Linear(3072, n, device="cuda", dtype=torch.bfloat16)
                                       for n in (3072, 3072, 12288))
    quantize_(attn, exclude=(), min_features=0)
    assert install_compile_pass()

    def qkv(t):
        return attn.to_q(t), attn.to_k(t), attn.to_v(t)

    with config.patch(fx_graph_cache=False):
        compiled = torch.compile(qkv, fullgraph=True)
        # (fp32 activations: rounded to bf16 for the quantization, fp32 out, first call and later ones)
        for m, dtype in ((333, torch.bfloat16), (4608, torch.bfloat16), (333, torch.float32)):
            x = torch.randn(m, 3072, device="cuda", dtype=dtype)
            want = [layer(x.clone()) for layer in (attn.to_q, attn.to_k, attn.to_v)]
            for _ in range(2):  # the first call, then the one with the workspace sizes known
                got = compiled(x)
                assert all(g.dtype == dtype and torch.equal(g, w) for g, w in zip(got, want))


@torch.no_grad()
def test_gpu_a_graph_capture_never_reads_rows_recorded_outside_it():
    # Rows recorded by an eager call on a stream are not what a graph captured on that stream may read:
    # its replays would read the eager rows (freed by then), not the replayed input's.
    from int8dit.torch.produced import PRODUCED

    torch.manual_seed(0)
    attn = torch.nn.Module()
    attn.to_q, attn.to_k = (torch.nn.Linear(1152, 1152, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    alone_k = Linear.from_float(attn.to_k)
    assert quantize_(attn, exclude=(), min_features=0).shared_input_groups == 1
    x = torch.randn(2, 256, 1152, device="cuda", dtype=torch.bfloat16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        attn.to_q(x)  # eager: records x's rows on this stream
        hits = PRODUCED.hits
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            y = attn.to_k(x)
        assert PRODUCED.hits == hits
    torch.cuda.current_stream().wait_stream(stream)
    x.copy_(torch.randn_like(x))
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, alone_k(x.clone()))


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(approximate="tanh"),
                               torch.nn.Linear(4096, 1024)).to("cuda", torch.bfloat16)


@torch.no_grad()
def test_gpu_compile_fullgraph():
    m = _mlp()
    x = torch.randn(2, 256, 1024, device="cuda", dtype=torch.bfloat16)
    ref = m(x)
    quantize_(m)
    eager = m(x)
    compiled = torch.compile(m, fullgraph=True)(x)
    assert cos(compiled, eager) > 0.9999 and cos(eager, ref) > 0.99


@torch.no_grad()
def test_gpu_cuda_graph_capture_replays_the_same_result():
    m = _mlp()
    quantize_(m)
    x = torch.randn(2, 256, 1024, device="cuda", dtype=torch.bfloat16)
    expect = m(x)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            m(x)  # warm-up on a side stream, as torch.cuda.graphs asks
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = m(x)
    x.copy_(torch.randn_like(x))
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, m(x))
    assert not torch.equal(out, expect)


@torch.no_grad()
def test_gpu_compile_reduce_overhead_uses_cuda_graphs():
    m = _mlp()
    quantize_(m)
    x = torch.randn(1, 128, 1024, device="cuda", dtype=torch.bfloat16)
    f = torch.compile(m, mode="reduce-overhead", fullgraph=True)
    for _ in range(3):
        y = f(x)
    assert cos(y, m(x)) > 0.9999


def small_flux_on_gpu(num_layers: int, num_single_layers: int):
    """A Flux of 1024-wide blocks in bf16 on the GPU and inputs of 1024 image + 128 text tokens."""
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=num_layers, num_single_layers=num_single_layers,
        attention_head_dim=128, num_attention_heads=8, joint_attention_dim=1024, pooled_projection_dim=256,
        guidance_embeds=True, axes_dims_rope=(16, 56, 56)).to("cuda", torch.bfloat16).eval()
    img, txt = 1024, 128
    inputs = dict(
        hidden_states=torch.randn(1, img, 64, device="cuda", dtype=torch.bfloat16),
        encoder_hidden_states=torch.randn(1, txt, 1024, device="cuda", dtype=torch.bfloat16),
        pooled_projections=torch.randn(1, 256, device="cuda", dtype=torch.bfloat16),
        timestep=torch.tensor([0.5], device="cuda"), guidance=torch.tensor([3.5], device="cuda"),
        img_ids=torch.zeros(img, 3, device="cuda"), txt_ids=torch.zeros(txt, 3, device="cuda"), return_dict=False)
    return model, inputs


@torch.no_grad()
def test_gpu_diffusers_flux_block_stack():
    model, inputs = small_flux_on_gpu(2, 4)
    ref = model(**inputs)[0]
    report = quantize_(model)
    assert any("ff" in n for n in report.quantized) and "x_embedder" in report.skipped
    assert report.concat_gelu_blocks == 4  # the single-stream blocks: proj_out reads [attention | GELU] as int8
    out = model(**inputs)[0]
    assert cos(out, ref) > 0.98
    for blocks in (model.transformer_blocks, model.single_transformer_blocks):
        for block in blocks:
            block.compile(fullgraph=True)
    assert cos(model(**inputs)[0], out) > 0.999


@torch.no_grad()
def test_gpu_first_block_cache_hooks_enabled_before_quantize_keep_skipping_the_fused_blocks():
    # diffusers' HookRegistry around each block: the fused block forwards go beneath it
    # (int8dit.torch.instance_forward), so the cache still runs them and still skips them
    pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    from diffusers.hooks import FirstBlockCacheConfig
    from test_torch_diffusers_hooks import twice_under_the_cache

    model, inputs = small_flux_on_gpu(2, 2)
    uncached = copy.deepcopy(model)
    quantize_(uncached)
    model.enable_cache(FirstBlockCacheConfig(threshold=0.05))
    assert quantize_(model).fused_blocks == 2
    want = uncached(**inputs)[0]
    first, every_block, again, head_only = twice_under_the_cache(model, inputs)
    assert cos(first, want) > 0.99999  # (the same path; no bitwise-determinism promise on the GPU)
    # per double block both streams' q, k, v; per single block q, k, v and the MLP's linear
    assert (every_block, head_only) == (2 * 6 + 2 * 4, 6)
    assert cos(again, first) > 0.999


def on_cuda(value):
    if isinstance(value, torch.Tensor):
        return value.to("cuda")
    if isinstance(value, (list, tuple)):
        return type(value)(on_cuda(v) for v in value)
    return value


@torch.no_grad()
@pytest.mark.parametrize("name", ["longcat-image", "bria", "ovis-image", "hunyuanimage", "hunyuanvideo",
                                  "skyreels-v2-i2v", "allegro", "cogview4", "hidream", "cosmos-1.0", "sana-video",
                                  "prx", "kandinsky5", "cogvideox",
                                  # with a modulation row set per token
                                  "qwen-image-2.1", "cosmos-2.5", "sana-video-i2v", "skyreels-v2-df"])
def test_gpu_block_fusions_added_on_the_cpu_follow_the_unfused_int8_path(name):
    # diffusers' copies of Flux's and HunyuanVideo's blocks, HunyuanVideo's single-stream [attention | GELU],
    # SkyReels-V2's, Allegro's, CogView4's, HiDream's, PRX's, Kandinsky 5's and Sana-Video's blocks, Cosmos'
    # adaLN-LoRA norms (2026-12-06); CogVideoX's affine norms, their modulation folded into the kernel's rows
    pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    from test_torch_more_diffusers_models import built

    from int8dit.torch.produced import PRODUCED

    # (as from_pretrained loads it, its zero-initialized modulation woken: PRX's and Kandinsky 5's blocks
    # then reach the output)
    model, make_inputs = built(name)
    model = model.to("cuda")
    if name.startswith("skyreels"):
        model.rope.float()  # (its rotary tables in fp32, as from_pretrained keeps them: the Wan prep's case)
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    report = quantize_(fused, min_features=32)
    quantize_(plain, min_features=32, fuse_norms=False, fuse_gelu=False)
    assert report.fused_blocks + report.fused_norms + report.concat_gelu_blocks >= 1
    inputs = {k: on_cuda(v) for k, v in make_inputs().items()}
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    assert PRODUCED.hits > hits  # (the fused norms' rows were read)
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, model(**inputs)[0]) > 0.999
    from int8dit.torch.attention_prep import fuse_attention_prep, fused_attention_calls

    if fuse_attention_prep(fused):  # (the processors' copies: LongCat-Image, Bria, Ovis-Image, HunyuanImage, SkyReels)
        assert cos(fused(**inputs)[0], out) > 0.9999 and fused_attention_calls(fused) > 0


@torch.no_grad()
def test_gpu_fused_layernorm_modulation_matches_the_cpu_reference():
    from int8dit.torch import modulated_linears

    b, t, k = 2, 512, 3072
    x = torch.randn(b, t, k, device="cuda", dtype=torch.bfloat16) * 2
    shift = torch.randn(b, k, device="cuda", dtype=torch.bfloat16) * 0.3
    scale = torch.randn(b, k, device="cuda", dtype=torch.bfloat16) * 0.3
    q, s = torch.ops.int8dit.layernorm_modulate_quantize(x, shift, scale, 1e-6, None)
    q_cpu, s_cpu = torch.ops.int8dit.layernorm_modulate_quantize(x.cpu(), shift.cpu(), scale.cpu(), 1e-6, None)
    # quantize.h: scales within 1e-5 relative, int8 values off by at most 1 on at most 0.1% of elements
    assert_close_quantization(q.cpu(), s.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)
    lins = [Linear.from_float(torch.nn.Linear(k, n, device="cuda", dtype=torch.bfloat16)) for n in (3072, 12288)]
    h = torch.nn.functional.layer_norm(x, (k,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
    for out, lin in zip(modulated_linears(x, shift, scale, lins), lins):
        assert cos(out, lin(h)) > 0.9999


@torch.no_grad()
def test_gpu_rmsnorm_quantize_matches_the_cpu_reference():
    from int8dit.torch import rmsnorm_quantize

    x = torch.randn(4096, 3072, device="cuda", dtype=torch.bfloat16) * 2
    weight = torch.rand(3072, device="cuda", dtype=torch.bfloat16) + 0.5
    q, s = rmsnorm_quantize(x, weight, 1e-6)
    q_cpu, s_cpu = rmsnorm_quantize(x.cpu(), weight.cpu(), 1e-6)
    assert_close_quantization(q.cpu(), s.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)
    # with the normalized rows written too (Z-Image's fused blocks): the same int8 rows, y within an ulp
    from int8dit.torch.fused import rmsnorm_quantize_with_output

    q_y, s_y, y = rmsnorm_quantize_with_output(x, weight, 1e-6)
    assert torch.equal(q_y, q) and torch.equal(s_y, s)
    y_cpu = rmsnorm_quantize_with_output(x.cpu(), weight.cpu(), 1e-6)[2]
    ulp = (y_cpu.float().abs() * 2.0 ** -7).clamp_min(2.0 ** -126)  # bf16: 8 significant bits
    assert ((y.cpu().float() - y_cpu.float()).abs() <= ulp).all()
    # a weight per sample (Z-Image's and Lumina 2's folded modulation): a call a sample, each into its
    # part of the outputs, the same bits as that sample's own call
    xs, weights = x.view(2, 2048, 3072), torch.rand(2, 3072, device="cuda") + 0.5
    q2, s2, y2 = rmsnorm_quantize_with_output(xs, weights, 1e-6)
    for b in range(2):
        qb, sb, yb = rmsnorm_quantize_with_output(xs[b], weights[b], 1e-6)
        assert torch.equal(q2[b], qb) and torch.equal(s2[b], sb) and torch.equal(y2[b], yb)


@torch.no_grad()
def test_gpu_gelu_quantize_matches_the_cpu_reference():
    x = torch.randn(2, 512, 4608, device="cuda", dtype=torch.bfloat16) * 3
    smooth = torch.rand(4608, device="cuda") + 0.5
    for div in (None, smooth):
        q, s = torch.ops.int8dit.gelu_quantize(x, div)
        q_cpu, s_cpu = torch.ops.int8dit.gelu_quantize(x.cpu(), None if div is None else div.cpu())
        assert_close_quantization(q.cpu(), s.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)


@torch.no_grad()
def test_gpu_concat_gelu_quantize_matches_the_cpu_reference():
    # Flux's single-stream proj_out input at 1024 px: [attention (3072) | GELU(proj_mlp) (12288)],
    # the attention output a strided view, as the vector kernels read two inputs.
    a = (torch.randn(4608, 3200, device="cuda", dtype=torch.bfloat16) * 3)[:, :3072]
    h = torch.randn(4608, 12288, device="cuda", dtype=torch.bfloat16) * 3
    smooth = torch.rand(15360, device="cuda") + 0.5
    for div in (None, smooth):
        q, s = torch.ops.int8dit.concat_gelu_quantize(a, h, div)
        q_cpu, s_cpu = torch.ops.int8dit.concat_gelu_quantize(a.cpu(), h.cpu(), None if div is None else div.cpu())
        assert_close_quantization(q.cpu(), s.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_gated_residual_norm_matches_the_cpu_reference(dtype):
    # DiT-XL/2's MLP norm with the attention's gated update: 8 batch elements of 1024 tokens, the gate a
    # [B, 1, K] chunk of the 6K-wide adaLN output, as the blocks pass it.
    from int8dit.torch.fused import gated_residual_fits, gated_residual_layernorm_modulate

    b, t, k = 8, 1024, 1152
    x = torch.randn(b, t, k, device="cuda", dtype=dtype)
    update = torch.randn(b, t, k, device="cuda", dtype=dtype)
    ada = torch.randn(b, 6 * k, device="cuda", dtype=dtype) * 0.3
    shift, scale, gate = ada[:, 3 * k:4 * k], ada[:, 4 * k:5 * k], ada[:, 2 * k:3 * k].unsqueeze(1)
    assert gated_residual_fits(x, update, gate, shift, scale)
    h, y, q, qs = gated_residual_layernorm_modulate(x, update, gate, shift, scale, 1e-6)
    h_cpu, y_cpu, q_cpu, qs_cpu = gated_residual_layernorm_modulate(x.cpu(), update.cpu(), gate.cpu(), shift.cpu(),
                                                                    scale.cpu(), 1e-6)
    assert torch.equal(h.cpu(), h_cpu)  # one FMA, rounded once, on both
    ulp = 2**-7 if dtype == torch.bfloat16 else 2**-10
    assert ((y.cpu().float() - y_cpu.float()).abs() <= y_cpu.float().abs() * ulp + 1e-6).all()
    assert_close_quantization(q.cpu(), qs.cpu(), q_cpu, qs_cpu, off_by_one_fraction=1.001e-3)
    # A broadcast shift row (batch stride 0, which the kernels refuse): fits says no, so a block takes
    # its own sum and the plain fused norm, which reads such rows from a copy.
    from int8dit.torch.fused import layernorm_modulate_quantize_with_output

    wide_shift = shift[:1].expand(b, k)
    assert not gated_residual_fits(x, update, gate, wide_shift, scale)
    _, _, y_expanded = layernorm_modulate_quantize_with_output(h, wide_shift, scale, 1e-6, None)
    _, _, y_copied = layernorm_modulate_quantize_with_output(h, wide_shift.contiguous(), scale, 1e-6, None)
    assert torch.equal(y_expanded, y_copied)


@torch.no_grad()
def test_gpu_per_token_modulation_tables_match_the_cpu_reference():
    """Wan 2.2 TI2V's blocks at 720p: a modulation row set per token ([B, T, 6, K], shift, scale and gate
    read in place as views at a row stride of 6K), through the fused norm, the gated residual norm and the
    gated add, against the C++ reference; a small TI2V model and a Qwen-Image edit-mode block fused against
    their unfused int8 forwards."""
    from int8dit.torch.block_steps import gated_add_fits
    from int8dit.torch.fused import (gated_residual_add, gated_residual_fits, gated_residual_layernorm_modulate,
                                     layernorm_modulate_quantize_with_output)

    torch.manual_seed(4)
    b, t, k = 2, 880, 3072  # one 704 x 1280 latent frame of tokens a sample
    x = torch.randn(b, t, k, device="cuda", dtype=torch.bfloat16)
    update = torch.randn_like(x)
    table = torch.randn(b, t, 6, k, device="cuda", dtype=torch.bfloat16) * 0.3
    shift, scale, gate = table.unbind(dim=2)[:3]
    cpu = [v.cpu() for v in (x, update, shift, scale, gate)]
    q, qs, y = layernorm_modulate_quantize_with_output(x, shift, scale, 1e-6, None)
    q_cpu, qs_cpu, y_cpu = layernorm_modulate_quantize_with_output(cpu[0], cpu[2], cpu[3], 1e-6, None)
    assert ((y.cpu().float() - y_cpu.float()).abs() <= y_cpu.float().abs() * 2**-7 + 1e-6).all()
    assert_close_quantization(q.cpu(), qs.cpu(), q_cpu, qs_cpu, off_by_one_fraction=1.001e-3)
    assert gated_residual_fits(x, update, gate, shift, scale)
    h, y, q, qs = gated_residual_layernorm_modulate(x, update, gate, shift, scale, 1e-6)
    h_cpu, y_cpu, q_cpu, qs_cpu = gated_residual_layernorm_modulate(cpu[0], cpu[1], cpu[4], cpu[2], cpu[3], 1e-6)
    assert torch.equal(h.cpu(), h_cpu)
    assert_close_quantization(q.cpu(), qs.cpu(), q_cpu, qs_cpu, off_by_one_fraction=1.001e-3)
    assert gated_add_fits(x, gate, update)
    assert torch.equal(gated_residual_add(x, gate, update).cpu(), gated_residual_add(cpu[0], cpu[4], cpu[1]))

    from test_torch_attention_prep_video import wan_inputs, wan_model
    model = wan_model().cuda()
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    assert quantize_(fused, min_features=32).fused_blocks == 2
    quantize_(plain, min_features=32, fuse_norms=False, fuse_gelu=False)
    inputs = {key: v.cuda() if isinstance(v, torch.Tensor) else v for key, v in wan_inputs().items()}
    timestep = inputs["timestep"][:, None].repeat(1, 48)
    timestep[:, :16] = 0  # the first frame conditions the video
    inputs["timestep"] = timestep
    out = fused(**inputs)[0]
    assert cos(out, plain(**inputs)[0]) > 0.9999 and cos(out, model(**inputs)[0]) > 0.999

    # Qwen-Image's edit mode: each image token picks one of two row sets (a [B, L, 6K] table)
    import diffusers
    from test_torch_attention_prep import QWEN
    model = diffusers.QwenImageTransformer2DModel(**QWEN).to(torch.bfloat16).eval().cuda()
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    quantize_(fused, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False, fuse_gelu=False)
    block, plain_block = fused.transformer_blocks[0], plain.transformer_blocks[0]
    block.zero_cond_t = plain_block.zero_cond_t = True
    x, txt = torch.randn(1, 16, 64, device="cuda", dtype=torch.bfloat16), torch.randn(1, 8, 64, device="cuda",
                                                                                     dtype=torch.bfloat16)
    mask, temb = torch.ones(1, 8, device="cuda"), torch.randn(2, 64, device="cuda", dtype=torch.bfloat16)
    index = torch.tensor([[0] * 8 + [1] * 8], device="cuda")
    got, want = block(x, txt, mask, temb, None, None, index), plain_block(x, txt, mask, temb, None, None, index)
    assert all(cos(g, w) > 0.9999 for g, w in zip(got, want))


@torch.no_grad()
def test_gpu_tensors_on_two_devices_are_refused_before_a_kernel_reads_them():
    from int8dit.torch.fused import layernorm_modulate_quantize_with_output

    x = torch.randn(2, 8, 64, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="x is on cpu and shift on cuda"):
        layernorm_modulate_quantize_with_output(x, torch.zeros(2, 64, dtype=torch.bfloat16, device="cuda"),
                                                torch.zeros(2, 64, dtype=torch.bfloat16), 1e-6, None)
    layer = Linear.from_float(torch.nn.Linear(64, 32, dtype=torch.bfloat16))  # on the CPU
    q, scale = torch.ops.int8dit.quantize_rows(x.cuda(), None)
    with pytest.raises(ValueError, match="int8 rows on cuda:0 for a layer on cpu"):
        layer.gemm_on_own_rows(q, scale, torch.bfloat16)


@torch.no_grad()
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs: a layer on the one that is not current")
def test_gpu_a_layer_on_another_gpu_than_the_current_one_runs_there():
    # The C++ entry points launch on the current device; the PyTorch layer makes the tensors' device
    # current for the call, as PyTorch's own ops do.
    lin = torch.nn.Linear(1024, 512, dtype=torch.bfloat16, device="cuda:1")
    q = Linear.from_float(lin)
    x = torch.randn(300, 1024, dtype=torch.bfloat16, device="cuda:1")
    assert torch.cuda.current_device() == 0
    y = q(x)
    assert y.device == x.device and cos(y, lin(x)) > 0.999
    y_cpu = q.cpu()(x.cpu())  # the reference: the same rounding of the same fp32 value, within one bf16 ulp
    assert ((y.cpu().float() - y_cpu.float()).abs() <= y_cpu.float().abs() * 2**-7 + 1e-6).all()


@torch.no_grad()
def test_gpu_diffusers_gelu_feed_forward_is_fused_and_matches_the_unfused_path():
    pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    from diffusers.models.attention import FeedForward

    from int8dit.torch import GeluMLP

    torch.manual_seed(0)

    def model():
        m = torch.nn.Sequential(FeedForward(1152, activation_fn="gelu-approximate"))
        return m.to("cuda", torch.bfloat16).eval()

    fused, unfused, ref = model(), model(), model()
    unfused.load_state_dict(fused.state_dict())
    ref.load_state_dict(fused.state_dict())
    assert quantize_(fused).gelu_mlps == 1 and isinstance(fused[0], GeluMLP)
    assert quantize_(unfused, fuse_gelu=False).gelu_mlps == 0
    x = torch.randn(8, 1024, 1152, device="cuda", dtype=torch.bfloat16)
    out = fused(x)
    assert cos(out, unfused(x)) > 0.9999 and cos(out, ref(x)) > 0.999
    graph = torch.cuda.CUDAGraph()
    static_x = x.clone()
    fused(static_x)  # warm-up outside capture (workspace sizes, first-use queries)
    with torch.cuda.graph(graph):
        static_out = fused(static_x)
    static_x.copy_(x * 0.5)
    graph.replay()
    assert torch.equal(static_out, fused(x * 0.5))


@torch.no_grad()
def test_gpu_diffusers_dit_norms_feed_their_int8_rows_to_their_readers():
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    from int8dit.torch import FusedAdaLayerNormZero
    from int8dit.torch.produced import PRODUCED

    torch.manual_seed(0)
    config = dict(activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=72, dropout=0.0,
                  in_channels=4, norm_elementwise_affine=False, norm_num_groups=32, norm_type="ada_norm_zero",
                  num_attention_heads=16, num_embeds_ada_norm=1000, num_layers=2, out_channels=8, patch_size=2,
                  sample_size=64, upcast_attention=False)  # DiT-XL/2 at 512 px with 2 of its 28 blocks

    def model():
        return diffusers.DiTTransformer2DModel(**config).to("cuda", torch.bfloat16).eval()

    fused, unfused, ref = model(), model(), model()
    unfused.load_state_dict(fused.state_dict())
    ref.load_state_dict(fused.state_dict())
    report = quantize_(fused)
    quantize_(unfused, fuse_norms=False, fuse_gelu=False)
    assert report.fused_norms == 2 and report.fused_blocks == 2
    assert isinstance(fused.transformer_blocks[0].norm1, FusedAdaLayerNormZero)
    inputs = dict(hidden_states=torch.randn(4, 4, 64, 64, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.full((4,), 500, device="cuda"), class_labels=torch.arange(4, device="cuda"),
                  return_dict=False)
    from int8dit.torch.mlp import GeluMLP

    fed = []
    real = GeluMLP.forward_on_rows
    GeluMLP.forward_on_rows = lambda self, q, scale, dtype: fed.append(q.shape) or real(self, q, scale, dtype)
    try:
        hits = PRODUCED.hits
        out = fused(**inputs)[0]
    finally:
        GeluMLP.forward_on_rows = real
    # diffusers' attention processor hands the norm's very output to q, k and v (the producers' table),
    # and the block's fused forward its MLP norm's int8 rows straight to fc1
    assert PRODUCED.hits - hits == 3 * 2 and len(fed) == 2
    assert cos(out, unfused(**inputs)[0]) > 0.9999 and cos(out, ref(**inputs)[0]) > 0.995


def test_gpu_gated_residual_add_matches_the_cpu_reference():
    """The end of a DiT-XL/2 block (8 x 1024 x 1152, the gate a chunk of adaLN's six rows) and a row
    length the 16-byte vectors do not fit, bit for bit against the C++ reference."""
    from int8dit.torch.block_steps import gated_add_fits
    from int8dit.torch.fused import gated_residual_add
    torch.manual_seed(3)
    for shape in ((8, 1024, 1152), (3, 50, 1001)):
        h = torch.randn(*shape, dtype=torch.bfloat16)
        update = torch.randn_like(h)
        gate = torch.randn(shape[0], 6, shape[2], dtype=torch.bfloat16).chunk(6, 1)[5]
        want = gated_residual_add(h, gate, update)
        hc, gc, uc = h.cuda(), gate.cuda(), update.cuda()
        assert gated_add_fits(hc, gc, uc)
        assert torch.equal(gated_residual_add(hc, gc, uc).cpu(), want)


def test_gpu_rows_plus_table_is_pytorchs_fp32_sum_rounded_once():
    """A per-token modulation table: Wan 2.2 TI2V's block table [1, 1, 6, K] over its tokens' time embedding
    [B, T, 6, K] (one fp32 gate row), SkyReels-V2's per-frame [1, 6, 1, K] over [B, 6, T, K] (a gate row a
    group of tokens) and a row length the 16-byte vectors do not fit: the bits of (table + x.float()).to(bf16)."""
    from int8dit.torch.fused import rows_plus_table, rows_plus_table_fits
    torch.manual_seed(4)
    for table, x in ((torch.randn(1, 1, 6, 3072), torch.randn(2, 300, 6, 3072, dtype=torch.bfloat16)),
                     (torch.randn(1, 6, 1, 1536), torch.randn(2, 6, 77, 1536, dtype=torch.bfloat16)),
                     (torch.randn(1, 1, 6, 1001), torch.randn(1, 40, 6, 1001, dtype=torch.bfloat16))):
        tc, xc = table.cuda(), x.cuda()
        assert rows_plus_table_fits(xc, tc)
        assert torch.equal(rows_plus_table(xc, tc), (tc + xc.float()).to(torch.bfloat16))


@torch.no_grad()
def test_gpu_use_cuda_graphs_replays_the_eager_forward_on_new_inputs():
    # One capture a signature; later calls copy their tensors in and replay. The int8dit MLP's kernels
    # are deterministic, so the replay is the eager forward bit for bit, on every new input.
    from int8dit.torch import cuda_graphs_of, stop_cuda_graphs, use_cuda_graphs

    m = _mlp()
    quantize_(m)
    xs = [torch.randn(2, 256, 1024, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    expect = [m(x) for x in xs]
    use_cuda_graphs(m)
    got = [m(x) for x in xs]
    for g, e in zip(got, expect):
        assert torch.equal(g, e)
    graphs = cuda_graphs_of(m)
    assert len(graphs.graphs) == 1 and graphs.replays == 3 and graphs.eager_calls == 0
    assert torch.equal(m(xs[0][:, :100]), expect[0][:, :100])  # a new shape: a second graph
    assert len(graphs.graphs) == 2
    stop_cuda_graphs(m)
    assert torch.equal(m(xs[1]), expect[1])


def assert_graphs_replay_the_eager_forward(model, steps: list) -> None:
    """As a pipeline calls its transformer (the same shapes every step, new tensors): under
    use_cuda_graphs one graph is captured and replayed for every step, each giving the eager output."""
    from int8dit.torch import cuda_graphs_of, use_cuda_graphs

    expect = [model(**s)[0] for s in steps]
    use_cuda_graphs(model)
    for s, e in zip(steps, expect):
        assert cos(model(**s)[0], e) > 0.99999
    graphs = cuda_graphs_of(model)
    assert len(graphs.graphs) == 1 and graphs.replays == len(steps) and not graphs.failed


@torch.no_grad()
def test_gpu_use_cuda_graphs_serves_a_quantized_diffusers_dit_across_timesteps():
    # As a pipeline calls its transformer: the same shapes every step, new latents and timesteps.
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    torch.manual_seed(0)
    model = diffusers.DiTTransformer2DModel(
        activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=72, dropout=0.0, in_channels=4,
        norm_elementwise_affine=False, norm_num_groups=32, norm_type="ada_norm_zero", num_attention_heads=16,
        num_embeds_ada_norm=1000, num_layers=2, out_channels=8, patch_size=2, sample_size=64,
        upcast_attention=False).to("cuda", torch.bfloat16).eval()
    quantize_(model)

    def step(t):
        return dict(hidden_states=torch.randn(2, 4, 64, 64, device="cuda", dtype=torch.bfloat16),
                    timestep=torch.full((2,), t, device="cuda"), class_labels=torch.tensor([3, 7], device="cuda"),
                    return_dict=False)

    assert_graphs_replay_the_eager_forward(model, [step(t) for t in (900, 500, 100)])


@torch.no_grad()
def test_gpu_use_cuda_graphs_captures_a_quantized_chroma():
    # diffusers' Chroma copies a host tensor to the GPU in every forward (its timestep embedding's guidance
    # input), which no capture takes: use_cuda_graphs makes it on the GPU (int8dit.torch.capturable)
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    torch.manual_seed(0)
    model = diffusers.ChromaTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=2, attention_head_dim=128, num_attention_heads=4,
        joint_attention_dim=256, axes_dims_rope=(16, 56, 56), approximator_num_channels=16, approximator_hidden_dim=256,
        approximator_layers=2).to("cuda", torch.bfloat16).eval()
    quantize_(model)

    def step(t):
        return dict(hidden_states=torch.randn(1, 256, 64, device="cuda", dtype=torch.bfloat16),
                    encoder_hidden_states=torch.randn(1, 32, 256, device="cuda", dtype=torch.bfloat16),
                    timestep=torch.tensor([t], device="cuda"), img_ids=torch.zeros(256, 3, device="cuda"),
                    txt_ids=torch.zeros(32, 3, device="cuda"), return_dict=False)

    assert_graphs_replay_the_eager_forward(model, [step(t) for t in (0.9, 0.5, 0.1)])


@torch.no_grad()
def test_gpu_use_cuda_graphs_captures_a_quantized_cogview4():
    # diffusers' CogView4 makes its rotary tables on the host every forward and each attention copies them
    # to the GPU: use_cuda_graphs keeps device copies made in its warm-up (int8dit.torch.capturable)
    pytest.importorskip("diffusers", reason="diffusers is not installed (carry its wheel)")
    from test_torch_more_diffusers_models import built

    model, make_inputs = built("cogview4")
    model = model.to("cuda")
    quantize_(model, min_features=32)

    def step(t):
        inputs = {k: on_cuda(v) for k, v in make_inputs().items()}
        inputs["timestep"] = torch.tensor([t], device="cuda")
        return inputs

    assert_graphs_replay_the_eager_forward(model, [step(t) for t in (900.0, 500.0, 100.0)])


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_qk_norm_rope_is_bit_exact_against_the_cpu_reference(dtype):
    from int8dit.torch import qk_norm_rope

    # Flux's text and image queries of a 1024 px double-stream block, into one joined buffer
    b, txt, img, h, d = 1, 512, 4096, 24, 128
    qkv = (torch.randn(b, img, 3 * h * d, device="cuda") * 3).to(dtype)
    query = qkv[..., : h * d].unflatten(-1, (h, d))  # strided: the fused projection's first third
    text = (torch.randn(b, txt, h, d, device="cuda") * 3).to(dtype)
    weight = (1 + 0.2 * torch.randn(d, device="cuda")).to(dtype)
    pos = torch.arange(txt + img, device="cuda", dtype=torch.float64)[:, None]
    angles = pos * torch.pow(10000.0, -torch.arange(0, d, 2, device="cuda") / d)[None]
    rotary = (angles.cos().repeat_interleave(2, 1).float(), angles.sin().repeat_interleave(2, 1).float())
    joined = torch.full((b, txt + img, h, d), float("nan"), device="cuda", dtype=dtype)
    qk_norm_rope(text, weight, 1e-6, rotary, out=joined[:, :txt])
    qk_norm_rope(query, weight, 1e-6, rotary, out=joined[:, txt:], rope_offset=txt)
    want = torch.empty_like(joined, device="cpu")
    rotary_cpu = tuple(t.cpu() for t in rotary)
    qk_norm_rope(text.cpu(), weight.cpu(), 1e-6, rotary_cpu, out=want[:, :txt])
    qk_norm_rope(query.cpu(), weight.cpu(), 1e-6, rotary_cpu, out=want[:, txt:], rope_offset=txt)
    assert torch.equal(joined.cpu(), want)


@torch.no_grad()
@pytest.mark.parametrize("heads, head_dim, wide_tables", [(12, 128, False), (40, 128, False), (32, 64, True)])
def test_gpu_qk_norm_across_heads_is_bit_exact_against_the_cpu_reference(heads, head_dim, wide_tables):
    # Wan 2.1 1.3B's and 14B's q (12 and 40 heads of 128, a table row every head shares) and LTX-Video's (32
    # heads of 64, tables a value a channel), strided as a fused projection's first third, fp32 and bf16 weights
    from int8dit.torch import qk_norm_rope

    b, t = 2, 300
    qkv = (torch.randn(b, t, 3 * heads * head_dim, device="cuda") * 3).to(torch.bfloat16)
    query = qkv[..., : heads * head_dim].unflatten(-1, (heads, head_dim))
    width = heads * head_dim if wide_tables else head_dim
    rotary = (torch.randn(t, width, device="cuda"), torch.randn(t, width, device="cuda"))
    for weight in ((1 + 0.2 * torch.randn(heads * head_dim, device="cuda")).to(torch.bfloat16),
                   1 + 0.2 * torch.randn(heads * head_dim, device="cuda")):
        got = qk_norm_rope(query, weight, 1e-6, rotary, norm_heads=heads)
        want = qk_norm_rope(query.cpu(), weight.cpu(), 1e-6, tuple(r.cpu() for r in rotary), norm_heads=heads)
        assert torch.equal(got.cpu(), want)


@torch.no_grad()
@pytest.mark.parametrize("quantized", [False, True])
def test_gpu_fused_flux_attention_matches_the_stock_processor_in_and_out_of_a_cuda_graph(quantized):
    diffusers = pytest.importorskip("diffusers")

    from int8dit.torch import cuda_graphs_of, fuse_attention_prep, use_cuda_graphs
    from int8dit.torch.attention_prep import fused_attention_calls

    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=2, attention_head_dim=128,
        num_attention_heads=4, joint_attention_dim=256, pooled_projection_dim=64, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56)).to("cuda", torch.bfloat16).eval()
    if quantized:
        quantize_(model, min_features=64)
    fused = copy.deepcopy(model)
    assert fuse_attention_prep(fused) == 4
    img, txt = 1024, 128
    side = torch.arange(img, device="cuda")
    img_ids = torch.stack([torch.zeros_like(side), side // 32, side % 32], dim=1).float()
    inputs = dict(hidden_states=torch.randn(1, img, 64, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, txt, 256, device="cuda", dtype=torch.bfloat16),
                  pooled_projections=torch.randn(1, 64, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([0.5], device="cuda"), guidance=torch.tensor([3.5], device="cuda"),
                  img_ids=img_ids, txt_ids=torch.zeros(txt, 3, device="cuda"), return_dict=False)
    want = model(**inputs)[0]
    got = fused(**inputs)[0]
    assert fused_attention_calls(fused) == 4
    assert cos(got, want) > 0.9999
    use_cuda_graphs(fused)
    replayed = [fused(**inputs)[0] for _ in range(2)]
    assert cuda_graphs_of(fused).replays >= 1
    assert torch.equal(replayed[0], replayed[1])
    assert cos(replayed[1], want) > 0.9999


@torch.no_grad()
@pytest.mark.parametrize("qk_norm", [None, "rms_norm"])
def test_gpu_fused_sd3_joint_attention_matches_the_stock_processor(qk_norm):
    # SD3-medium (no q/k norm: the join moves rows, so bit for bit) and SD3.5 (q/k RMSNorm: an ulp apart)
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock

    torch.manual_seed(0)
    model = diffusers.SD3Transformer2DModel(
        sample_size=64, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=64, num_attention_heads=4,
        joint_attention_dim=128, caption_projection_dim=256, pooled_projection_dim=64, out_channels=16,
        pos_embed_max_size=96, qk_norm=qk_norm).to("cuda", torch.bfloat16).eval()
    inputs = dict(hidden_states=torch.randn(2, 16, 64, 64, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(2, 77, 128, device="cuda", dtype=torch.bfloat16),
                  pooled_projections=torch.randn(2, 64, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([10, 500], device="cuda"), return_dict=False)
    _, got, want = run_fused_and_stock(model, inputs, 2)
    if qk_norm is None:  # (the fused q/k/v are token-major, the stock ones heads-major: the same values)
        assert torch.equal(got, want)
    else:
        assert cos(got, want) > 0.9999


@torch.no_grad()
def test_gpu_sd3_attention_output_reaches_the_projection_without_a_copy(monkeypatch):
    # The fused processor's token-major q/k/v: attention on the GPU (cuDNN or flash) writes its output
    # token-major too, so to_out[0] reads a view of it, where the stock processor copies it.
    diffusers = pytest.importorskip("diffusers")

    from int8dit.torch.joint_attention import JointAttentionPrepProcessor

    torch.manual_seed(0)
    stock = diffusers.SD3Transformer2DModel(
        sample_size=64, patch_size=2, in_channels=16, num_layers=1, attention_head_dim=64, num_attention_heads=4,
        joint_attention_dim=128, caption_projection_dim=256, pooled_projection_dim=64, out_channels=16,
        pos_embed_max_size=96).to("cuda", torch.bfloat16).eval().transformer_blocks[0].attn
    fused = copy.deepcopy(stock)
    fused.processor = JointAttentionPrepProcessor(fused.processor)
    seen = {}
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: seen.__setitem__("out", sdpa(*a, **k)) or seen["out"])
    image = torch.randn(1, 1024, 256, device="cuda", dtype=torch.bfloat16)
    text = torch.randn(1, 77, 256, device="cuda", dtype=torch.bfloat16)
    shares = {}
    for name, attn in (("stock", stock), ("fused", fused)):
        hook = attn.to_out[0].register_forward_pre_hook(
            lambda module, args, name=name: shares.__setitem__(name, args[0].data_ptr() == seen["out"].data_ptr()))
        want = attn(image, text)
        hook.remove()
        shares[name + " result"] = want[0]
    assert fused.processor.fused_calls == 1
    assert (shares["stock"], shares["fused"]) == (False, True)
    assert torch.equal(shares["fused result"], shares["stock result"])


def small_qwen_image(diffusers, axes_dims_rope=(16, 56, 56)):
    """A Qwen-Image of 4 heads of 128 with two blocks, bf16 on the GPU."""
    return diffusers.QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=2, attention_head_dim=128, num_attention_heads=4,
        joint_attention_dim=256, axes_dims_rope=axes_dims_rope).to("cuda", torch.bfloat16).eval()


def small_qwen_image_inputs(valid_text_tokens=64):
    """small_qwen_image's inputs: 32 x 32 image tokens, 64 text tokens of which the first ones are valid."""
    mask = torch.ones(1, 64, device="cuda")
    mask[:, valid_text_tokens:] = 0
    return dict(hidden_states=torch.randn(1, 1024, 64, device="cuda", dtype=torch.bfloat16),
                encoder_hidden_states=torch.randn(1, 64, 256, device="cuda", dtype=torch.bfloat16),
                encoder_hidden_states_mask=mask, timestep=torch.tensor([0.5], device="cuda"),
                img_shapes=[(1, 32, 32)], return_dict=False)


@torch.no_grad()
def test_gpu_fused_qwen_image_attention_matches_the_stock_processor():
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock

    torch.manual_seed(0)
    _, got, want = run_fused_and_stock(small_qwen_image(diffusers), small_qwen_image_inputs(valid_text_tokens=50), 2)
    assert cos(got, want) > 0.9999


def small_hunyuan_video(diffusers):
    """A HunyuanVideo of 4 heads of 128: two dual- and two single-stream blocks, bf16 on the GPU."""
    return diffusers.HunyuanVideoTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=4, attention_head_dim=128, num_layers=2,
        num_single_layers=2, num_refiner_layers=1, patch_size=1, patch_size_t=1, text_embed_dim=256,
        pooled_projection_dim=64, rope_axes_dim=(16, 56, 56)).to("cuda", torch.bfloat16).eval()


def small_hunyuan_video_inputs():
    """small_hunyuan_video's inputs: 8 x 16 x 16 video tokens, a prompt of 64 tokens, 50 of them valid."""
    mask = torch.ones(1, 64, device="cuda")
    mask[:, 50:] = 0
    return dict(hidden_states=torch.randn(1, 16, 8, 16, 16, device="cuda", dtype=torch.bfloat16),
                timestep=torch.tensor([500], device="cuda"),
                encoder_hidden_states=torch.randn(1, 64, 256, device="cuda", dtype=torch.bfloat16),
                encoder_attention_mask=mask,
                pooled_projections=torch.randn(1, 64, device="cuda", dtype=torch.bfloat16),
                guidance=torch.tensor([3500.0], device="cuda"), return_dict=False)


@torch.no_grad()
def test_gpu_fused_hunyuan_video_attention_matches_the_stock_processor():
    # dual- and single-stream blocks; a padded prompt; 8 x 16 x 16 video tokens
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock

    torch.manual_seed(0)
    _, got, want = run_fused_and_stock(small_hunyuan_video(diffusers), small_hunyuan_video_inputs(), 4)
    assert cos(got, want) > 0.9999


@torch.no_grad()
def test_gpu_hunyuan_video_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # the dual-stream blocks' MLP norms (both streams) through the fused kernel, against the same quantized
    # model with the blocks' own norms
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    model = small_hunyuan_video(diffusers)
    plain = copy.deepcopy(model)
    assert quantize_(model).fused_blocks == 2
    assert quantize_(plain, fuse_norms=False).fused_blocks == 0
    inputs = small_hunyuan_video_inputs()
    assert cos(model(**inputs)[0], plain(**inputs)[0]) > 0.9999


def small_wan(diffusers):
    """A Wan of 4 heads of 128 with two blocks, bf16 on the GPU (its fp32 modules as the tests set them)."""
    return diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=128, in_channels=16, out_channels=16,
        text_dim=256, freq_dim=64, ffn_dim=1024, num_layers=2, rope_max_seq_len=256).to("cuda", torch.bfloat16).eval()


@torch.no_grad()
def test_gpu_fused_wan_norms_and_rotation_follow_the_stock_ones():
    # q's and k's norms across the 4 heads of 128 and the rotation in one kernel a tensor: bit for bit the stock
    # forward with int8dit's norm across heads (the rotation rounds as the stock one), and within the norm's
    # rounding of the stock forward (torch's rms_norm takes an approximate rsqrt)
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import assert_follows, run_fused_and_stock, with_kernel_norms

    torch.manual_seed(0)
    model = small_wan(diffusers)
    model.rope.float()  # as from_pretrained(torch_dtype=torch.bfloat16) keeps it
    inputs = dict(hidden_states=torch.randn(1, 16, 5, 32, 32, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500], device="cuda"),
                  encoder_hidden_states=torch.randn(1, 64, 256, device="cuda", dtype=torch.bfloat16),
                  return_dict=False)
    # both attentions of each block change processor; the self-attentions rotate, so they fuse
    _, got, want = run_fused_and_stock(model, inputs, 4, fused_calls=2)
    assert torch.equal(got, with_kernel_norms(model, "blocks", 4)(**inputs)[0])
    assert_follows(got, want, 0.01)


@torch.no_grad()
def test_gpu_fused_ltx_video_norms_and_rotation_follow_the_stock_ones():
    # LTX-Video's q/k norms across its 32 heads of 64 and its rotation of whole 2048-channel rows (tables
    # differing in every channel), one kernel a sample and tensor, batch 2 as its guidance runs it: bit for
    # bit the stock forward with int8dit's norm across heads, within the norm's rounding of the stock one
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import assert_follows, run_fused_and_stock, with_kernel_norms

    torch.manual_seed(0)
    model = diffusers.LTXVideoTransformer3DModel(
        in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32, attention_head_dim=64,
        cross_attention_dim=2048, num_layers=2, caption_channels=256).to("cuda", torch.bfloat16).eval()
    inputs = dict(hidden_states=torch.randn(2, 3 * 8 * 12, 128, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(2, 16, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500, 500], device="cuda"), encoder_attention_mask=torch.ones(2, 16, device="cuda"),
                  num_frames=3, height=8, width=12, return_dict=False)
    # both attentions of each block change processor; the self-attentions rotate, so they fuse
    _, got, want = run_fused_and_stock(model, inputs, 4, fused_calls=2)
    assert torch.equal(got, with_kernel_norms(model, "transformer_blocks", 32)(**inputs)[0])
    assert_follows(got, want, 0.01)


def assert_prep_follows_bf16_and_int8(model, inputs, modules, min_cosine=0.99999):
    """A fused copy of ``model`` (``modules`` attention modules, one fused call each) follows the stock forward
    within the norm's rounding, as it is and int8dit-quantized."""
    from attention_prep_helpers import assert_follows, run_fused_and_stock

    for quantized in (False, True):
        m = copy.deepcopy(model)
        if quantized:
            quantize_(m)
        _, got, want = run_fused_and_stock(m, inputs, modules)
        assert_follows(got, want, 0.01, min_cosine=min_cosine)


@pytest.mark.parametrize("head_dim", [64, 128])
@torch.no_grad()
def test_gpu_cogview4_layer_norm_and_split_halves_are_the_cpu_references_bits(head_dim):
    # the extended kernel against the C++ reference (the CPU path of the same call), text rows normalized
    # only and image rows rotated, written into a [B, H, S, D] buffer as the processor writes them
    from int8dit.torch.attention import qk_norm_rope

    torch.manual_seed(head_dim)
    x = torch.randn(2, 300, 4, head_dim, device="cuda", dtype=torch.bfloat16) * 3 + 0.5
    angles = torch.rand(260, head_dim // 2, device="cuda") * 6.3
    rotary = (torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin())
    outs = []
    for device in ("cuda", "cpu"):
        out = torch.empty(2, 4, 300, head_dim, device=device, dtype=torch.bfloat16).transpose(1, 2)
        rows = x.to(device)
        qk_norm_rope(rows[:, :40], None, 1e-5, None, out=out[:, :40], layer_norm=True)
        qk_norm_rope(rows[:, 40:], None, 1e-5, tuple(t.to(device) for t in rotary), out=out[:, 40:], layer_norm=True,
                     split_halves=True)
        outs.append(out.cpu())
    assert torch.equal(outs[0], outs[1])
    # and torch's layer_norm with diffusers' rotation: an ulp of a normed value apart where they differ (a
    # rotated value near 0 is a difference of two products, so the bound is the row's largest value's ulp)
    n = torch.nn.functional.layer_norm(x, (head_dim,), eps=1e-5)
    first, second = n[:, 40:].float().chunk(2, -1)
    turned = (n[:, 40:].float() * rotary[0][:, None] + torch.cat([-second, first], -1) * rotary[1][:, None]).to(n.dtype)
    stock = torch.cat([n[:, :40], turned], 1).cpu().float()
    diff = (outs[0].float() - stock).abs()
    assert (diff <= n.float().abs().amax(-1, keepdim=True).cpu() * 2.0 ** -7).all()
    assert (diff > 0).float().mean().item() < 0.01


@torch.no_grad()
def test_gpu_fused_cogview4_prep_follows_the_stock_processor():
    # CogView4 with heads of 128 (CogView4-6B's size), bf16 and int8dit-quantized: q/k LayerNorm and the image
    # tokens' split-halves rotation through the kernel, within the norm's rounding of the stock forward
    diffusers = pytest.importorskip("diffusers")

    torch.manual_seed(0)
    model = diffusers.CogView4Transformer2DModel(
        patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=128, num_attention_heads=4,
        text_embed_dim=256, time_embed_dim=128, condition_dim=64, pos_embed_max_size=64, sample_size=32,
        rope_axes_dim=(64, 64)).to("cuda", torch.bfloat16).eval()
    size = torch.tensor([[256.0, 256.0]], device="cuda")
    inputs = dict(hidden_states=torch.randn(1, 16, 32, 32, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 24, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500.0], device="cuda"), original_size=size, target_size=size,
                  crop_coords=torch.zeros(1, 2, device="cuda"), return_dict=False)
    assert_prep_follows_bf16_and_int8(model, inputs, 2)


@torch.no_grad()
def test_gpu_fused_cosmos_prep_follows_the_stock_processor():
    # Cosmos 1.0 with heads of 128 (its own size), bf16 and int8dit-quantized: q/k RMSNorm and the
    # self-attention's split-halves rotation through the kernel, within the norm's rounding of the stock forward
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import perturb_qk_norm_weights

    torch.manual_seed(0)
    model = diffusers.CosmosTransformer3DModel(
        in_channels=16, out_channels=16, num_attention_heads=4, attention_head_dim=128, num_layers=2,
        text_embed_dim=256, adaln_lora_dim=64, max_size=(8, 32, 32), concat_padding_mask=False).to("cuda", torch.bfloat16)
    model.eval()
    perturb_qk_norm_weights(model)
    inputs = dict(hidden_states=torch.randn(1, 16, 4, 32, 32, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500.0], device="cuda"),
                  encoder_hidden_states=torch.randn(1, 32, 256, device="cuda", dtype=torch.bfloat16), fps=24,
                  return_dict=False)
    # the self- and the cross-attention of each block; diffusers' RMSNorm rounds twice, the kernel once
    assert_prep_follows_bf16_and_int8(model, inputs, 4, min_cosine=0.99995)


@torch.no_grad()
def test_gpu_fused_cogvideox_prep_follows_the_stock_processor():
    # CogVideoX with heads of 64 and its 3D rotary embedding, bf16 and int8dit-quantized: the LayerNorm with its
    # weight and bias and the neighbouring-pair rotation of the video tokens through the kernel
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import perturb_qk_norm_weights
    from int8dit.bench.models import _cogvideox_inputs

    torch.manual_seed(0)
    model = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=64, in_channels=16, out_channels=16, time_embed_dim=128,
        text_embed_dim=256, num_layers=2, sample_width=32, sample_height=24, sample_frames=9,
        use_rotary_positional_embeddings=True).to("cuda", torch.bfloat16).eval()
    perturb_qk_norm_weights(model)
    inputs = _cogvideox_inputs(9, 192, 256, 64, 16, 32, 256, sample_size=(24, 32))(torch, "cuda", torch.bfloat16)
    assert_prep_follows_bf16_and_int8(model, inputs, 2)


def small_flux2(diffusers, double_blocks):
    """A FLUX.2 of 4 heads of 128 with two single-stream blocks, bf16 on the GPU."""
    return diffusers.Flux2Transformer2DModel(
        patch_size=1, in_channels=64, num_layers=double_blocks, num_single_layers=2, attention_head_dim=128,
        num_attention_heads=4, joint_attention_dim=256, timestep_guidance_channels=64, axes_dims_rope=(32, 32, 32, 32)
    ).to("cuda", torch.bfloat16).eval()


def small_flux2_inputs():
    """small_flux2's inputs: 32 x 32 image tokens at their positions, 64 text tokens."""
    side = torch.arange(1024, device="cuda")
    img_ids = torch.stack([torch.zeros_like(side), side // 32, side % 32, torch.zeros_like(side)], dim=1).float()
    return dict(hidden_states=torch.randn(1, 1024, 64, device="cuda", dtype=torch.bfloat16),
                encoder_hidden_states=torch.randn(1, 64, 256, device="cuda", dtype=torch.bfloat16),
                timestep=torch.tensor([0.5], device="cuda"), guidance=torch.tensor([3.5], device="cuda"),
                img_ids=img_ids, txt_ids=torch.zeros(64, 4, device="cuda"), return_dict=False)


@torch.no_grad()
def test_gpu_fused_flux2_attention_matches_the_stock_processors():
    # the double-stream and the single-stream (parallel) processors; 32 x 32 image tokens
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock

    torch.manual_seed(0)
    model = small_flux2(diffusers, double_blocks=2)
    inputs = small_flux2_inputs()
    _, got, want = run_fused_and_stock(model, inputs, 4)
    assert cos(got, want) > 0.9999


def small_gpu_model(cls_name: str, **config):
    """A diffusers transformer of ``cls_name`` built from ``config``, bf16 on the GPU in eval mode, after
    seeding the generator (the test skips where diffusers is not installed)."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return getattr(diffusers, cls_name)(**config).to("cuda", torch.bfloat16).eval()


def assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks, producer_hits):
    """``model`` quantized with its blocks' modulated norms fused (blocks.py: ``blocks`` of them) against a
    copy quantized with the blocks' own norms: the fused norms' rows are read ``producer_hits`` times in a
    forward (int8dit.torch.produced), and the outputs agree to cosine 0.9999."""
    from int8dit.torch.produced import PRODUCED

    plain = copy.deepcopy(model)
    assert quantize_(model).fused_blocks == blocks
    assert quantize_(plain, fuse_norms=False).fused_blocks == 0
    hits = PRODUCED.hits
    got = model(**inputs)[0]
    assert PRODUCED.hits - hits == producer_hits
    flat = lambda out: torch.cat([o.flatten() for o in out]) if isinstance(out, list) else out  # noqa: E731
    assert cos(flat(got), flat(plain(**inputs)[0])) > 0.9999


@torch.no_grad()
def test_gpu_flux2_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # FLUX.2's double- and single-stream blocks with every modulated norm in layernorm_modulate_quantize
    # (the residual update before each MLP norm in the norm's kernel): the rows are read by q, k, v of
    # both streams, both MLPs' linear_in and each single block's fused projection
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    assert_fused_blocks_follow_the_unfused_int8_path(small_flux2(diffusers, double_blocks=1), small_flux2_inputs(),
                                                     blocks=1 + 2, producer_hits=(3 + 3) + 2 + 2)


def small_flux3():
    """A FLUX.3 of 4 heads of 64, one block per mode and two joint blocks, bf16 on the GPU, and its inputs:
    32 x 32 image and 64 text tokens."""
    from int8dit.bench.models import _flux3_inputs

    model = small_gpu_model("Flux3Transformer2DModel", in_channels=64, cond_in_channels=64, num_layers=1,
                            num_single_layers=2, attention_head_dim=64, num_attention_heads=4, joint_attention_dim=256,
                            timestep_channels=64, axes_dims_rope=(16, 16, 16, 16))
    return model, _flux3_inputs(1024, 64, 64, 256)(torch, "cuda", torch.bfloat16)


@torch.no_grad()
def test_gpu_fused_flux3_attention_follows_the_stock_processor():
    # q/k norms in fp32 as from_pretrained keeps them, with bf16-valued weights (a bf16 checkpoint's): the
    # kernel takes their bf16 copy; every block's attention fuses (the reference block does not run)
    from attention_prep_helpers import assert_follows, run_fused_and_stock

    model, inputs = small_flux3()
    for name, module in model.named_modules():
        if name.endswith(("norm_q", "norm_k")):
            module.float()
            module.weight.copy_((1 + 0.2 * torch.randn_like(module.weight)).to(torch.bfloat16).float())
    _, got, want = run_fused_and_stock(model, inputs, 5, fused_calls=4)
    assert_follows(got, want, 0.01)


@torch.no_grad()
def test_gpu_flux3_modulation_once_and_fused_norms_follow_the_int8_path():
    model, inputs = small_flux3()
    # the modulation heads on one row a sample through int8dit Linears: the per-token forward's bits
    linears_only = copy.deepcopy(model)
    assert quantize_(linears_only, fuse_norms=False, fuse_gelu=False, fuse_swiglu=False).modulation_once == 1
    assert torch.equal(linears_only(**inputs)[0], type(linears_only).forward(linears_only, **inputs)[0])
    # the per-mode blocks' norms (text, image; the reference's block runs without reference tokens) and
    # both joint blocks' two norms into the joined sequence: each read by q, k, v and linear_in
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=3 + 2, producer_hits=4 * (3 + 1))


@torch.no_grad()
def test_gpu_flux3_with_reference_tokens_follows_the_unfused_int8_path():
    # image-to-image: 16 x 16 reference tokens with their own modulation inside the joint blocks' content
    # (three norm kernels a joint block); every block runs, the reference's too
    model, inputs = small_flux3()
    side = torch.arange(256, device="cuda")
    inputs.update(image_cond_hidden_states=torch.randn(1, 256, 64, device="cuda", dtype=torch.bfloat16),
                  image_cond_ids=torch.stack([torch.ones_like(side), side // 16, side % 16, torch.zeros_like(side)],
                                             dim=1).float())
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=3 + 2, producer_hits=5 * (3 + 1))


@torch.no_grad()
def test_gpu_krea2_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # Krea 2's fp32 RMSNorms, their zero-centered weights folded into the modulation's scale, through the
    # LayerNorm kernel with RMSNorm's statistics: 64 text + 32 x 32 image tokens, 4 heads of 64 (2 for
    # k and v); each block's q, k, v and its SwiGLU's gate and up read the rows, and the text fusion
    # blocks' siblings share their own quantization (k, v, up: three a block)
    model = small_gpu_model("Krea2Transformer2DModel", in_channels=64, num_layers=2, attention_head_dim=64,
                            num_attention_heads=4, num_key_value_heads=2, intermediate_size=512, timestep_embed_dim=64,
                            text_hidden_dim=256, num_text_layers=3, text_num_attention_heads=2,
                            text_num_key_value_heads=2, text_intermediate_size=512, num_layerwise_text_blocks=1,
                            num_refiner_text_blocks=1, axes_dims_rope=(16, 24, 24))
    for name, p in model.named_parameters():
        if "norm" in name or "scale_shift_table" in name:
            p.copy_(0.2 * torch.randn_like(p))
    side = torch.arange(1024, device="cuda")
    positions = torch.cat([torch.zeros(64, 3, device="cuda"),
                           torch.stack([torch.zeros_like(side), side // 32, side % 32], dim=1).float()])
    inputs = dict(hidden_states=torch.randn(1, 1024, 64, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 64, 3, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([0.5], device="cuda"), position_ids=positions, return_dict=False)
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=2, producer_hits=2 * 5 + 2 * 3)


@torch.no_grad()
def test_gpu_qwen_image_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # Qwen-Image's blocks, 32 x 32 image tokens and 64 text tokens: each block's q, k, v of both streams
    # read the rows (its fc1s take theirs straight from the MLP norms' kernels)
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    assert_fused_blocks_follow_the_unfused_int8_path(small_qwen_image(diffusers), small_qwen_image_inputs(), blocks=2,
                                                     producer_hits=2 * (3 + 3))


@torch.no_grad()
def test_gpu_chroma_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # Chroma's blocks with a padded prompt: both streams' q, k, v, and each single block's q, k, v and proj_mlp
    model = small_gpu_model("ChromaTransformer2DModel",
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=2, attention_head_dim=128, num_attention_heads=4,
        joint_attention_dim=256, axes_dims_rope=(16, 56, 56), approximator_num_channels=16, approximator_hidden_dim=256,
        approximator_layers=2)
    mask = torch.ones(1, 64 + 1024, device="cuda")
    mask[:, 40:64] = 0
    inputs = dict(hidden_states=torch.randn(1, 1024, 64, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 64, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([0.5], device="cuda"), img_ids=torch.zeros(1024, 3, device="cuda"),
                  txt_ids=torch.zeros(64, 3, device="cuda"), attention_mask=mask, return_dict=False)
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=1 + 2, producer_hits=(3 + 3) + 2 * (3 + 1))


def test_gpu_concat_swiglu_quantize_matches_the_cpu_reference():
    # FLUX.2-dev's single stream (a 6144 wide, gate and up the 18432-wide halves of the projection's MLP
    # part, read in place: the 512-thread kernel) and a small FLUX.2's (256 + 768: the 256-thread ones)
    from int8dit.torch import concat_swiglu_quantize

    torch.manual_seed(2)
    for inner, hidden, dtype in ((6144, 18432, torch.bfloat16), (256, 768, torch.float16)):
        attention = torch.randn(77, inner, device="cuda", dtype=dtype)
        projected = torch.randn(77, 3 * inner + 2 * hidden, device="cuda", dtype=dtype)
        gate, up = projected[:, 3 * inner:3 * inner + hidden], projected[:, 3 * inner + hidden:]
        smooth = torch.rand(inner + hidden, device="cuda") + 0.5
        for s in (None, smooth):
            q, scale = concat_swiglu_quantize(attention, gate, up, s)
            q_cpu, s_cpu = concat_swiglu_quantize(attention.cpu(), gate.cpu(), up.cpu(), None if s is None else s.cpu())
            assert_close_quantization(q.cpu(), scale.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)


@torch.no_grad()
def test_gpu_flux2_single_stream_end_through_concat_swiglu_follows_the_stock_forward(monkeypatch):
    # the quantized model with every processor fused and the single-stream end let onto the GPU kernel
    # (flux2_attention.CONCAT_SWIGLU_GPU_COLS, set here so that the test holds whatever the gate) against
    # the stock forward
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock
    from int8dit.torch import flux2_attention, swiglu

    monkeypatch.setattr(flux2_attention, "CONCAT_SWIGLU_GPU_COLS", swiglu.MAX_GPU_COLS)
    calls = []
    original = swiglu.concat_swiglu_quantize_impl
    monkeypatch.setattr(swiglu, "concat_swiglu_quantize_impl", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    model = small_flux2(diffusers, double_blocks=1)
    quantize_(model)
    inputs = small_flux2_inputs()
    _, got, want = run_fused_and_stock(model, inputs, 3)
    assert calls, "the single-stream end did not take concat_swiglu_quantize"
    assert cos(got, want) > 0.9999


def small_z_image(diffusers, dim, axes_dims):
    """A Z-Image of 4 heads (dim / 4 wide, axes_dims its rotary split): two layers, one refiner layer of
    each kind, bf16 on the GPU."""
    return diffusers.ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=dim, n_layers=2, n_refiner_layers=1, n_heads=4,
        n_kv_heads=4, cap_feat_dim=256, axes_dims=axes_dims, axes_lens=[256, 64, 64]).to("cuda", torch.bfloat16).eval()


def small_z_image_inputs(prompt_lengths):
    """small_z_image's inputs: a 64 x 64 latent and a prompt of each length a sample."""
    n = len(prompt_lengths)
    return dict(x=[torch.randn(16, 1, 64, 64, device="cuda", dtype=torch.bfloat16) for _ in range(n)],
                t=torch.tensor([0.5, 0.3][:n], device="cuda"),
                cap_feats=[torch.randn(k, 256, device="cuda", dtype=torch.bfloat16) for k in prompt_lengths],
                return_dict=False)


@torch.no_grad()
def test_gpu_lumina2_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # Lumina 2, Z-Image's ancestor, one sample (4 heads of 128 sharing 2 key/value heads, so k and v are
    # 256 wide and quantized): the noise refiner's and the main layers' blocks, whose q, k, v and SwiGLU
    # linear_1, linear_3 read the norms' rows; the context refiner's block (not modulated) shares its own
    # quantization (k, v after q; linear_3 after linear_1)
    model = small_gpu_model("Lumina2Transformer2DModel",
        sample_size=32, patch_size=2, in_channels=16, hidden_size=512, num_layers=2, num_refiner_layers=1,
        num_attention_heads=4, num_kv_heads=2, multiple_of=256, norm_eps=1e-5, scaling_factor=1.0,
        axes_dim_rope=(32, 48, 48), axes_lens=(300, 64, 64), cap_feat_dim=256)
    inputs = dict(hidden_states=torch.randn(1, 16, 64, 64, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([0.5], device="cuda"),
                  encoder_hidden_states=torch.randn(1, 77, 256, device="cuda", dtype=torch.bfloat16),
                  encoder_attention_mask=torch.ones(1, 77, device="cuda", dtype=torch.bool), return_dict=False)
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=1 + 2, producer_hits=3 * (3 + 2) + (2 + 1))


@torch.no_grad()
def test_gpu_sana_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # Sana's norm before its linear self-attention (q, k, v read the rows) and the gated update after it;
    # the cross-attentions' k and v share the caption's own quantization (the first block's k quantizes it)
    model = small_gpu_model("SanaTransformer2DModel",
        in_channels=4, out_channels=4, num_attention_heads=8, attention_head_dim=32, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=128, cross_attention_dim=256, caption_channels=256,
        mlp_ratio=2.5, sample_size=32, patch_size=1)
    inputs = dict(hidden_states=torch.randn(2, 4, 32, 32, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(2, 64, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500, 300], device="cuda"), return_dict=False)
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=2, producer_hits=2 * 3 + 3)


@torch.no_grad()
def test_gpu_ltx_video_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # LTX-Video's RMSNorms through layernorm_modulate_quantize's RMSNorm statistics: each block's
    # self-attention q, k, v read norm1's rows (fc1 takes norm2's straight from its kernel); the
    # cross-attentions' k and v share the text features' own quantization (the first block's k quantizes it)
    model = small_gpu_model("LTXVideoTransformer3DModel",
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=64,
        cross_attention_dim=256, num_layers=2, caption_channels=256)
    inputs = dict(hidden_states=torch.randn(2, 4 * 16 * 16, 8, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(2, 64, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500, 300], device="cuda"), encoder_attention_mask=torch.ones(2, 64, device="cuda"),
                  num_frames=4, height=16, width=16, return_dict=False)
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=2, producer_hits=2 * 3 + 3)


@torch.no_grad()
@pytest.mark.parametrize("batch", [1, 2])
def test_gpu_mochi_blocks_with_fused_norms_follow_the_unfused_int8_path(batch):
    # Mochi's fp32 RMSNorms scaled by its modulation, a kernel call a sample (its pipeline batches the
    # guidance): both blocks' image q, k, v and MLP projection, the first block's text stream's too; the
    # last block's added k and v share its added q's own quantization
    model = small_gpu_model("MochiTransformer3DModel",
        patch_size=2, num_attention_heads=3, attention_head_dim=128, num_layers=2, pooled_projection_dim=384,
        in_channels=12, text_embed_dim=256, time_embed_dim=256, max_sequence_length=64)
    inputs = dict(hidden_states=torch.randn(batch, 12, 3, 32, 32, device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(batch, 64, 256, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500, 300][:batch], device="cuda"),
                  encoder_attention_mask=torch.ones(batch, 64, device="cuda", dtype=torch.bool), return_dict=False)
    assert_fused_blocks_follow_the_unfused_int8_path(model, inputs, blocks=2, producer_hits=2 * (3 + 1) + (3 + 1) + 2)


@torch.no_grad()
def test_gpu_fused_z_image_attention_matches_the_stock_processor():
    # two samples with prompts of different lengths: a rotary table each
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock

    torch.manual_seed(0)
    _, got, want = run_fused_and_stock(small_z_image(diffusers, 512, [32, 48, 48]), small_z_image_inputs((32, 77)), 4)
    assert cos(torch.cat([g.flatten() for g in got]), torch.cat([w.flatten() for w in want])) > 0.9999


@torch.no_grad()
@pytest.mark.parametrize("prompt_lengths", [(77,), (32, 77)])
def test_gpu_z_image_blocks_with_fused_norms_follow_the_unfused_int8_path(prompt_lengths):
    # one sample (Turbo) or two (the base model's guidance): each sample's modulation folds into its
    # RMSNorm's weight; the noise refiner's and the main layers' blocks, whose q, k, v and SwiGLU w1, w3
    # read the norms' rows; the context refiner's block (not modulated) shares its own quantization (k, v
    # after q; w3 after w1)
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    assert_fused_blocks_follow_the_unfused_int8_path(small_z_image(diffusers, 384, [32, 32, 32]),
                                                     small_z_image_inputs(prompt_lengths), blocks=1 + 2,
                                                     producer_hits=3 * (3 + 2) + (2 + 1))


@torch.no_grad()
def test_gpu_wan_blocks_with_fused_norms_follow_the_unfused_int8_path():
    # Wan's norms before self-attention and the MLP (fp32 in diffusers) through the fused kernels, two
    # samples at different timesteps, against the same quantized model with the blocks' own fp32 ops
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    model = small_wan(diffusers)
    for module in [model.rope, *(b.norm2 for b in model.blocks)]:  # as from_pretrained(torch_dtype=bf16) keeps them
        module.float()
    for block in model.blocks:
        block.scale_shift_table.data = block.scale_shift_table.data.float()
    plain = copy.deepcopy(model)
    assert quantize_(model).fused_blocks == 2
    assert quantize_(plain, fuse_norms=False).fused_blocks == 0
    inputs = dict(hidden_states=torch.randn(2, 16, 5, 32, 32, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500, 20], device="cuda"),
                  encoder_hidden_states=torch.randn(2, 64, 256, device="cuda", dtype=torch.bfloat16),
                  return_dict=False)
    got, want = model(**inputs)[0], plain(**inputs)[0]
    assert got.dtype == torch.bfloat16 and cos(got, want) > 0.9999


def test_gpu_swiglu_quantize_matches_the_cpu_reference():
    # two inputs with strides of their own, and the halves of one projection (FLUX.2), bf16 and fp16
    from int8dit.torch import swiglu_quantize

    torch.manual_seed(0)
    for dtype in (torch.bfloat16, torch.float16):
        h = torch.randn(333, 2 * 10240, device="cuda", dtype=dtype)
        up = torch.randn(333, 10240 + 8, device="cuda", dtype=dtype)[:, :10240]
        odd = torch.randn(333, 2 * 10240 + 1, device="cuda", dtype=dtype)
        smooth = torch.rand(10240, device="cuda") + 0.5
        # (the last pair starts one element in: rows no 16-byte load can take, which the op copies first)
        for gate, other, s in ((h[:, :10240], up, None), (h[:, :10240], h[:, 10240:], smooth),
                               (odd[:, 1:10241], odd[:, 10241:], None)):
            q, scale = swiglu_quantize(gate, other, s)
            q_cpu, s_cpu = swiglu_quantize(gate.cpu(), other.cpu(), None if s is None else s.cpu())
            assert_close_quantization(q.cpu(), scale.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)


def test_gpu_swiglu_quantize_takes_flux2_devs_18432_wide_halves():
    # FLUX.2-dev's feed-forward: linear_in's [rows, 2 x 18432] output, gate first; over 16384 columns the
    # op runs the 512-thread kernel (row_shape.h). 24576 is that kernel's longest row; one vector more
    # is refused with the way out in the message.
    from int8dit.torch import swiglu_quantize

    torch.manual_seed(1)
    for k in (18432, 24576):
        h = torch.randn(77, 2 * k, device="cuda", dtype=torch.bfloat16)
        q, scale = swiglu_quantize(h[:, :k], h[:, k:])
        q_cpu, s_cpu = swiglu_quantize(h[:, :k].cpu(), h[:, k:].cpu())
        assert_close_quantization(q.cpu(), scale.cpu(), q_cpu, s_cpu, off_by_one_fraction=1.001e-3)
    wide = torch.randn(2, 24584, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="up to 24576"):
        swiglu_quantize(wide, wide)


@torch.no_grad()
def test_gpu_fused_swiglu_mlps_follow_the_unfused_quantized_z_image():
    diffusers = pytest.importorskip("diffusers")

    from int8dit.torch import SwigluMLP

    torch.manual_seed(0)
    model = small_z_image(diffusers, 384, [32, 32, 32])
    unfused, fused = copy.deepcopy(model), copy.deepcopy(model)  # (hidden width 384 / 3 * 8 = 1024)
    assert quantize_(unfused, fuse_swiglu=False).swiglu_mlps == 0
    assert quantize_(fused).swiglu_mlps == 4  # on by default
    assert isinstance(fused.layers[0].feed_forward, SwigluMLP)
    inputs = small_z_image_inputs((32, 77))
    want, got = unfused(**inputs)[0], fused(**inputs)[0]
    assert cos(torch.cat([g.flatten() for g in got]), torch.cat([w.flatten() for w in want])) > 0.9999


@torch.no_grad()
def test_gpu_fused_hunyuan_video_15_attention_matches_the_stock_processor():
    # the dual-stream blocks with the [B, 1, S, S] mask the processor builds; a padded prompt
    diffusers = pytest.importorskip("diffusers")
    from attention_prep_helpers import run_fused_and_stock

    torch.manual_seed(0)
    model = diffusers.HunyuanVideo15Transformer3DModel(
        in_channels=16, out_channels=8, num_attention_heads=4, attention_head_dim=128, num_layers=2, num_refiner_layers=1,
        text_embed_dim=256, text_embed_2_dim=64, image_embed_dim=64, rope_axes_dim=(16, 56, 56), task_type="t2v"
    ).to("cuda", torch.bfloat16).eval()
    mask = torch.ones(1, 64, device="cuda")
    mask[:, 50:] = 0
    inputs = dict(hidden_states=torch.randn(1, 16, 8, 16, 16, device="cuda", dtype=torch.bfloat16),
                  timestep=torch.tensor([500.0], device="cuda", dtype=torch.bfloat16),
                  encoder_hidden_states=torch.randn(1, 64, 256, device="cuda", dtype=torch.bfloat16),
                  encoder_attention_mask=mask,
                  encoder_hidden_states_2=torch.randn(1, 16, 64, device="cuda", dtype=torch.bfloat16),
                  encoder_attention_mask_2=torch.ones(1, 16, device="cuda"),
                  image_embeds=torch.zeros(1, 729, 64, device="cuda", dtype=torch.bfloat16), return_dict=False)
    _, got, want = run_fused_and_stock(model, inputs, 2)
    assert cos(got, want) > 0.9999


def test_gpu_a_float_model_in_host_memory_is_quantized_onto_the_gpu_as_in_place():
    """int8dit.bench.e2e's offload: the float layers moved to host memory under every shared copy, then
    quantize_(device="cuda") builds the same int8 layers as quantizing on the GPU, leaving the host
    copies where they are."""
    from int8dit.bench.e2e import place_float_layers, shared_copy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256))
    model = model.to("cuda", torch.bfloat16)
    on_gpu = shared_copy(model)
    quantize_(on_gpu, min_features=0)
    layers = {"0": model[0], "2": model[2]}
    weight = model[0].weight
    variant = shared_copy(model)
    place_float_layers(layers, "cpu")
    assert model[0].weight is weight and variant[0].weight is weight and weight.device.type == "cpu"
    quantize_(variant, min_features=0, device="cuda")
    for i in (0, 2):
        assert variant[i].weight.device.type == "cuda" and model[i].weight.device.type == "cpu"
        assert torch.equal(variant[i].weight, on_gpu[i].weight)
        assert torch.equal(variant[i].weight_scale, on_gpu[i].weight_scale)
        assert torch.equal(variant[i].bias, on_gpu[i].bias)
    place_float_layers(layers, "cuda")
    assert model[0].weight is weight and weight.device.type == "cuda"
    x = torch.randn(64, 512, device="cuda", dtype=torch.bfloat16)
    assert torch.equal(variant(x), on_gpu(x))
