"""FLUX.3 (diffusers' Flux3Transformer2DModel, small configurations, CPU tensors through the C++
reference): the modulation computed once a sample (int8dit.torch.flux3) against the class's per-token
forward, and the blocks' fused norms against the unfused int8 path. Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.flux3 import compute_modulation_once  # noqa: E402
from int8dit.torch.fused import (layernorm_modulate_quantize_into,  # noqa: E402
                                 layernorm_modulate_quantize_with_output)
from int8dit.torch.produced import PRODUCED  # noqa: E402
from test_torch_diffusers_fusions import assert_compiled_blocks_match, cos  # noqa: E402

BF16 = torch.bfloat16
# FLUX.3's structure (per-mode blocks for text, image and reference tokens, then joint blocks), small:
# width 128 (4 heads of 32), one block per mode and two joint blocks
FLUX3 = dict(in_channels=16, cond_in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=32,
             num_attention_heads=4, joint_attention_dim=64, timestep_channels=32, axes_dims_rope=(8, 8, 8, 8))
IMAGE, TEXT, COND = 64, 8, 16


def positions(tokens: int, frame: float = 0.0):
    ids = torch.zeros(tokens, 4)
    ids[:, 0] = frame
    ids[:, 1], ids[:, 2] = torch.arange(tokens) // 8, torch.arange(tokens) % 8
    return ids


def flux3_inputs(batch: int = 1, cond: bool = False, **extra) -> dict:
    inputs = dict(hidden_states=torch.randn(batch, IMAGE, 16, dtype=BF16),
                  encoder_hidden_states=torch.randn(batch, TEXT, 64, dtype=BF16),
                  timestep=torch.linspace(0.7, 0.3, batch), img_ids=positions(IMAGE), txt_ids=torch.zeros(TEXT, 4),
                  return_dict=False, **extra)
    if cond:
        inputs.update(image_cond_hidden_states=torch.randn(batch, COND, 16, dtype=BF16),
                      image_cond_ids=positions(COND, frame=1.0))
    return inputs


def flux3(**overrides):
    torch.manual_seed(0)
    return diffusers.Flux3Transformer2DModel(**dict(FLUX3, **overrides)).to(BF16).eval()


def modulation_rows(model, inputs) -> dict:
    """{head name: the row shape of its linear's input} in one forward of ``model``."""
    shapes, hooks = {}, []
    for group in ("early_stream_modulations", "single_stream_modulations"):
        for mode, head in getattr(model, group).items():
            hooks.append(head.register_forward_hook(
                lambda m, args, out, key=f"{group}.{mode}": shapes.__setitem__(key, tuple(args[0].shape))))
    model(**inputs)
    for h in hooks:
        h.remove()
    return shapes


@torch.no_grad()
@pytest.mark.parametrize("cond", [False, True], ids=["text_to_image", "reference_image"])
def test_the_modulation_is_computed_once_a_sample_with_the_same_bits_through_int8_linears(cond):
    model = flux3()
    quantize_(model, min_features=64, fuse_norms=False, fuse_gelu=False, fuse_swiglu=False)
    assert model.forward.__func__.__name__ == "_flux3_model_forward"
    inputs = flux3_inputs(batch=2, cond=cond)
    stock = type(model).forward(model, **inputs)[0]
    # the heads ran on one row a sample (the class's forward runs them on every token)
    assert set(modulation_rows(model, inputs).values()) == {(2, 1, 128)}
    # an int8dit Linear gives a row the same bits whatever other rows it is called with
    assert torch.equal(model(**inputs)[0], stock)


@torch.no_grad()
def test_the_float_model_computes_its_modulation_once_too_and_keeps_its_output():
    model = flux3(flow_map=True)  # (the step-distilled form: a second timestep embedder)
    inputs = flux3_inputs(target_timestep=torch.tensor([0.2]))
    stock = model(**inputs)[0]
    assert compute_modulation_once(model) == 1 and compute_modulation_once(model) == 0
    # float products of one row may round differently from the same row among many: close, not equal
    assert cos(model(**inputs)[0], stock) > 0.99999


@torch.no_grad()
def test_calls_the_rewrite_does_not_handle_run_the_class_forward(monkeypatch):
    model = flux3()
    compute_modulation_once(model)
    ran = []
    real = type(model).forward
    monkeypatch.setattr(type(model), "forward", lambda self, *a, **k: ran.append(1) or real(self, *a, **k))
    model(**flux3_inputs(attention_kwargs={"scale": 1.0}))  # LoRA scaling is the class forward's
    assert ran == [1]
    with pytest.raises(ValueError, match="image_cond_ids"):  # and so are its errors
        model(**dict(flux3_inputs(), image_cond_hidden_states=torch.randn(1, COND, 16, dtype=BF16)))


@torch.no_grad()
def test_flux3_blocks_fuse_their_norms_and_match_the_unfused_path(monkeypatch):
    joined = recorded_calls_into(monkeypatch)
    model = flux3()
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    report = quantize_(fused, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False)
    # three per-mode blocks (text, image, reference) and two joint blocks; every block's SwiGLU MLP
    assert (report.fused_blocks, report.swiglu_mlps, report.modulation_once) == (5, 5, 1)
    inputs = flux3_inputs()
    hits = PRODUCED.hits
    out = fused(**inputs)[0]
    # every block run (text, image, two joint) has its q, k, v and its MLP's linear_in read the rows
    assert PRODUCED.hits - hits == 4 * (3 + 1)
    # each joint block: the text's and the image's norm straight into the joined sequence
    assert joined == [(1, TEXT, 128), (1, IMAGE, 128)] * 2
    unfused = plain(**inputs)[0]
    assert cos(out, unfused) > 0.9999 and cos(out, model(**inputs)[0]) > 0.999
    assert not torch.equal(out, unfused)  # the fused path ran: its roundings differ from the unfused one's
    assert_compiled_blocks_match(fused, [*fused.txt_mode_blocks, *fused.mode_blocks["image"],
                                         *fused.single_transformer_blocks], inputs, out)


@torch.no_grad()
def test_flux3_fused_blocks_take_two_samples_and_reference_tokens(monkeypatch):
    joined = recorded_calls_into(monkeypatch)
    model = flux3()
    fused, plain = copy.deepcopy(model), copy.deepcopy(model)
    quantize_(fused, min_features=64)
    quantize_(plain, min_features=64, fuse_norms=False)
    two = flux3_inputs(batch=2)
    assert cos(fused(**two)[0], plain(**two)[0]) > 0.9999
    assert len(joined) == 2 * 2 * 2  # a call a part and sample, in each joint block
    # reference tokens: the content's table is a row per token, each of the image's and the reference's
    # rows repeated, which the model's forward registers: each joint block normalizes the text, the image
    # and the reference tokens with their own rows (three kernel calls)
    joined.clear()
    with_cond = flux3_inputs(cond=True)
    hits = PRODUCED.hits
    out = fused(**with_cond)[0]
    assert joined == [(1, TEXT, 128), (1, IMAGE, 128), (1, COND, 128)] * 2
    # every block run (text, image, reference, two joint) has its q, k, v and linear_in read the rows
    assert PRODUCED.hits - hits == 5 * (3 + 1)
    assert cos(out, plain(**with_cond)[0]) > 0.9999
    two_with_cond = flux3_inputs(batch=2, cond=True)
    assert cos(fused(**two_with_cond)[0], plain(**two_with_cond)[0]) > 0.9999


@torch.no_grad()
def test_a_joint_block_given_a_per_token_table_it_was_not_told_about_runs_its_class_forward(monkeypatch):
    joined = recorded_calls_into(monkeypatch)
    model = flux3()
    quantize_(model, min_features=64)
    block = model.single_transformer_blocks[0]
    text, content = torch.randn(1, TEXT, 128, dtype=BF16), torch.randn(1, IMAGE, 128, dtype=BF16)
    per_token, text_rows = torch.randn(1, IMAGE, 3 * 128, dtype=BF16), torch.randn(1, 1, 3 * 128, dtype=BF16)
    rotary = model.pos_embed(torch.cat([torch.zeros(TEXT, 4), positions(IMAGE)]))
    got = block(content, text, per_token, text_rows, rotary)
    want = type(block).forward(block, content, text, per_token, text_rows, rotary)
    assert joined == [] and all(torch.equal(g, w) for g, w in zip(got, want))


def recorded_calls_into(monkeypatch) -> list:
    """The row shapes each of flux3.py's layernorm_modulate_quantize_into calls took."""
    import int8dit.torch.flux3 as flux3_module

    calls = []
    real = flux3_module.layernorm_modulate_quantize_into
    monkeypatch.setattr(flux3_module, "layernorm_modulate_quantize_into",
                        lambda x, *a, **k: calls.append(tuple(x.shape)) or real(x, *a, **k))
    return calls


def test_layernorm_modulate_quantize_into_writes_what_with_output_returns_and_refuses_bad_outputs():
    torch.manual_seed(0)
    x = torch.randn(1, 12, 64, dtype=BF16)
    shift, scale = torch.randn(1, 64, dtype=BF16), torch.randn(1, 64, dtype=BF16)
    want_q, want_s, want_y = layernorm_modulate_quantize_with_output(x, shift, scale, 1e-6, None)
    # into rows 3..15 of larger outputs (the other rows untouched)
    q = torch.full((1, 20, 64), 5, dtype=torch.int8)
    s = torch.full((1, 20), 5.0)
    y = torch.full((1, 20, 64), 5.0, dtype=BF16)
    layernorm_modulate_quantize_into(x, shift, scale, 1e-6, q[:, 3:15], s[:, 3:15], y[:, 3:15])
    assert torch.equal(q[:, 3:15], want_q) and torch.equal(s[:, 3:15], want_s) and torch.equal(y[:, 3:15], want_y)
    assert (q[:, :3] == 5).all() and (q[:, 15:] == 5).all() and (s[:, 15:] == 5).all() and (y[:, :3] == 5).all()
    bad = [(q[:, :12].float(), s[:, :12], y[:, :12], "q must be a contiguous torch.int8"),
           (q[:, :11], s[:, :12], y[:, :12], r"shape \(1, 12, 64\)"),
           (q[:, :12], s[:, :12].double(), y[:, :12], "q_scale must be"),
           (q[:, :12], s[:, :12], torch.empty(1, 64, 12, dtype=BF16).transpose(1, 2), "not contiguous")]
    for bq, bs, by, message in bad:
        before = [t.clone() for t in (q, s, y)]
        with pytest.raises(ValueError, match=message):
            layernorm_modulate_quantize_into(x, shift, scale, 1e-6, bq, bs, by)
        assert all(torch.equal(a, b) for a, b in zip(before, (q, s, y)))  # nothing written


def flux3_with_fp32_qk_norms():
    """flux3() with its q/k norms in fp32 as from_pretrained(torch_dtype=bf16) keeps them, their weights
    moved off one to bf16 values (what a bf16 checkpoint holds), so that a kernel ignoring them would show."""
    model = flux3()
    for name, module in model.named_modules():
        if name.endswith(("norm_q", "norm_k")):
            module.float()
            module.weight.copy_((1 + 0.2 * torch.randn_like(module.weight)).to(BF16).float())
    return model


@pytest.mark.parametrize("quantized", [False, True])
@torch.no_grad()
def test_flux3_attention_prep_follows_the_stock_processor(quantized):
    from attention_prep_helpers import assert_follows, run_fused_and_stock

    from int8dit.torch.flux3_attention import Flux3AttentionPrepProcessor

    model = flux3_with_fp32_qk_norms()
    if quantized:
        quantize_(model, min_features=64)
    inputs = flux3_inputs()
    # the text's and the image's per-mode blocks, the two joint blocks (the reference's block does not run)
    fused, got, want = run_fused_and_stock(model, inputs, 5, fused_calls=4)
    assert isinstance(fused.single_transformer_blocks[0].attn.processor, Flux3AttentionPrepProcessor)
    # the stock processor rounds the fp32 norm and rotation once, as the kernel does: up to the order of
    # the norm's sum
    assert_follows(got, want, 0.01)


@torch.no_grad()
def test_flux3_attention_prep_leaves_norm_weights_that_would_round_to_the_stock_processor():
    from attention_prep_helpers import run_fused_and_stock

    model = flux3_with_fp32_qk_norms()
    attn = model.single_transformer_blocks[0].attn
    attn.norm_k.weight.add_(1e-4)  # fp32 values between bf16's: the kernel's bf16 products would differ
    inputs = flux3_inputs()
    fused, got, want = run_fused_and_stock(model, inputs, 5, fused_calls=3)
    assert cos(got, want) > 0.99999
    # a weight changed in place is checked again (its version counter moves)
    processor = fused.single_transformer_blocks[0].attn.processor
    calls = processor.fused_calls
    fused.single_transformer_blocks[0].attn.norm_k.weight.copy_(torch.ones(32))
    fused(**inputs)
    assert processor.fused_calls == calls + 1


@torch.no_grad()
def test_the_rewrite_goes_under_an_accelerate_hook_that_wraps_the_forward():
    # accelerate's add_hook_to_module (enable_model_cpu_offload) keeps the forward it found as
    # _old_forward and installs a wrapper that calls it: replacing the wrapper would drop the offload
    model = flux3()
    inputs = flux3_inputs()
    want = model(**inputs)[0]
    calls = []
    model._hf_hook = object()
    model._old_forward = model.forward

    def hooked(*args, **kwargs):
        calls.append(1)  # (accelerate moves the weights here)
        return model._old_forward(*args, **kwargs)

    model.forward = hooked
    assert compute_modulation_once(model) == 1 and compute_modulation_once(model) == 0
    assert model.forward is hooked and model._old_forward.__func__.__name__ == "_flux3_model_forward"
    got = model(**inputs)[0]
    assert calls == [1] and cos(got, want) > 0.99999


@pytest.mark.parametrize("cond", [False, True], ids=["text_to_image", "reference_image"])
@torch.no_grad()
def test_the_whole_quantized_model_compiles_in_one_graph(cond):
    # torch.compile(fullgraph=True) traces the model's forward: nothing in it may break the graph (the
    # reference tokens' registration is skipped while tracing; traced blocks run their class's forward)
    model = flux3()
    quantize_(model, min_features=64)
    inputs = flux3_inputs(cond=cond)
    eager = model(**inputs)[0]
    torch._dynamo.reset()
    try:
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        assert cos(compiled(**inputs)[0], eager) > 0.9999
    finally:
        torch._dynamo.reset()
