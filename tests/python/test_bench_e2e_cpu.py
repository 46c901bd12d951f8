"""Pieces of int8dit.bench.e2e that run without a GPU: the rows each linear layer sees in a forward
(the torchao baselines leave layers with <= 16 rows in bf16) and their line in e2e.md. Skips
without PyTorch."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.bench.e2e import TORCHAO_MIN_ROWS, offload_needed, rows_per_call  # noqa: E402
from int8dit.bench.report import markdown  # noqa: E402


class AdaLNBlock(torch.nn.Module):
    """A DiT-like block: modulation from one embedding per batch element, an MLP over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.modulation = torch.nn.Linear(32, 64)
        self.mlp = torch.nn.Linear(32, 32)

    def forward(self, hidden, emb):
        shift = self.modulation(emb)[:, None, :32]
        return self.mlp(hidden + shift) + self.mlp(hidden)  # mlp called twice: the larger count is kept


def test_rows_per_call_counts_tokens_times_batch_per_layer():
    block = AdaLNBlock()
    inputs = {"hidden": torch.randn(2, 24, 32), "emb": torch.randn(2, 32)}
    rows = rows_per_call(torch, block, {"modulation": block.modulation, "mlp": block.mlp}, inputs)
    assert rows == {"modulation": 2, "mlp": 48}
    assert rows["modulation"] < TORCHAO_MIN_ROWS <= rows["mlp"]
    assert not block.modulation._forward_pre_hooks and not block.mlp._forward_pre_hooks  # hooks removed


def test_the_report_says_which_layers_the_torchao_paths_kept_in_bf16():
    doc = {"environment": {}, "summary": {}, "results": {"dit": {
        "model": "DiT", "shape": "512", "config_from": "x", "params": 1e9, "quantized_linears": 3,
        "quantized_params": 5e8, "kept_float": ["proj_out"], "torchao_kept_float": ["a", "b"],
        "paths": {"bf16": {"median_ms": 2.0}}}}}
    text = markdown(doc)
    assert "the torchao paths also keep 2 layers with <= 16 rows a call in bf16" in text


def _row(doc_text: str, label: str) -> list:
    line = next(l for l in doc_text.splitlines() if l.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_each_path_is_also_compared_with_bf16_run_the_same_way():
    paths = {"bf16": {"median_ms": 30.0}, "int8dit": {"median_ms": 40.0}, "bf16_compile": {"median_ms": 20.0},
             "int8dit_compile": {"median_ms": 16.0}, "bf16_graph": {"median_ms": 24.0},
             "int8dit_graph": {"median_ms": 20.0}}
    doc = {"environment": {"int8dit_env": {"INT8DIT_PDL": "0"}}, "summary": {}, "results": {"dit": {
        "model": "DiT", "shape": "512", "config_from": "x", "params": 1e9, "quantized_linears": 3,
        "quantized_params": 5e8, "kept_float": [], "paths": paths}}}
    text = markdown(doc)
    assert "Environment: `INT8DIT_PDL=0`" in text
    # label, latency, vs eager bf16, vs bf16 run the same way
    assert _row(text, "int8dit")[1:4] == ["40.00", "0.75x", "0.75x"]
    assert _row(text, "int8dit + compile")[1:4] == ["16.00", "1.88x", "1.25x"]
    assert _row(text, "int8dit + CUDA graph")[1:4] == ["20.00", "1.50x", "1.20x"]
    assert _row(text, "bf16 + CUDA graph")[1:4] == ["24.00", "1.25x", ""]
    paths["bf16_compile_graph"], paths["int8dit_compile_graph"] = {"median_ms": 15.0}, {"median_ms": 10.0}
    assert _row(markdown(doc), "int8dit + compile + CUDA graph")[1:4] == ["10.00", "3.00x", "1.50x"]
    # a run of the graph paths alone still gets its same-mode ratio
    del paths["bf16"], paths["int8dit"], paths["bf16_compile"], paths["int8dit_compile"]
    assert _row(markdown(doc), "int8dit + CUDA graph")[1:4] == ["20.00", "", "1.20x"]


def test_the_run_records_the_int8dit_switches_it_ran_with():
    from int8dit.bench.e2e import int8dit_switches

    assert int8dit_switches({"INT8DIT_PDL": "0", "PATH": "/bin", "INT8DIT_QUANT_ROWS": "bulk"}) == {
        "INT8DIT_PDL": "0", "INT8DIT_QUANT_ROWS": "bulk"}


def test_a_graph_path_refuses_to_time_a_forward_that_did_not_replay_a_graph():
    # On the CPU the real use_cuda_graphs runs every call eagerly (a CPU tensor is not capturable): the
    # bench must say so instead of timing the eager forward as a graph path.
    from int8dit.bench.e2e import replayed_forward
    from int8dit.torch import stop_cuda_graphs

    model = torch.nn.Linear(4, 4)
    with torch.no_grad(), pytest.raises(RuntimeError, match="did not replay a CUDA graph"):
        replayed_forward(model, {"input": torch.randn(2, 4)})
    stop_cuda_graphs(model)


def test_an_int8dit_variant_records_which_producers_quantize_rewrote():
    from test_torch_gelu_mlp import Block

    from int8dit.bench.e2e import make_variant
    from int8dit.torch import selected_linears

    model = Block().to(torch.bfloat16).eval()
    names, _ = selected_linears(model, min_features=64)
    fused = make_variant(torch, "int8dit", model, names)
    assert fused._int8dit_rewrites == {"shared_input_groups": 0, "gelu_mlps": 1, "concat_gelu_blocks": 0,
                                       "fused_norms": 0, "fused_blocks": 0, "swiglu_mlps": 0,
                                       "modulation_once": 0}
    plain = make_variant(torch, "int8dit", model, names, fuse_gelu=False)
    assert plain._int8dit_rewrites["gelu_mlps"] == 0


def test_the_report_says_which_producers_quantize_fused():
    from int8dit.bench.report import rewrites_note

    rewrites = {"shared_input_groups": 28, "gelu_mlps": 28, "fused_norms": 28, "fused_blocks": 28}
    result = {"paths": {"bf16": {"median_ms": 2.0}, "int8dit": {"median_ms": 1.0, "int8dit_rewrites": rewrites}}}
    assert rewrites_note(result) == ("; int8dit also rewrote 28 shared input groups, 28 gelu mlps, 28 fused norms, "
                                     "28 fused blocks (quantize_'s fused producers)")
    assert rewrites_note({"paths": {"bf16": {"median_ms": 2.0}}}) == ""
    # FLUX.3: every path computes its modulation once a sample, which the note says for all of them
    flux3 = {"paths": {"bf16_graph": {"median_ms": 2.0, "modulation_once": 1},
                       "int8dit_graph": {"median_ms": 1.0, "modulation_once": 1,
                                         "int8dit_rewrites": {"fused_blocks": 43, "modulation_once": 1}}}}
    assert rewrites_note(flux3) == ("; int8dit also rewrote 43 fused blocks (quantize_'s fused producers); every path, "
                                    "bf16 too, computes FLUX.3's modulation once a sample, not once a token "
                                    "(int8dit.torch.compute_modulation_once: nothing int8 in it)")


def test_every_path_of_a_flux3_gets_the_modulation_once_forward():
    pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    import diffusers
    from test_torch_flux3 import FLUX3

    from int8dit.bench.e2e import make_variant
    from int8dit.torch import selected_linears

    model = diffusers.Flux3Transformer2DModel(**FLUX3).to(torch.bfloat16).eval()
    names, _ = selected_linears(model, min_features=64)
    for path in ("bf16", "int8dit"):
        variant = make_variant(torch, path, model, names)
        assert variant._int8dit_modulation_once == 1 and "forward" in vars(variant)
    assert "forward" not in vars(model)  # the model the variants were copied from keeps its class's forward


def test_the_summary_gives_every_models_graph_speedup_against_bf16s_graph():
    from int8dit.bench.e2e import summary

    results = {"dit_xl_2_512": {"paths": {"bf16_graph": {"median_ms": 23.4}, "int8dit_graph": {"median_ms": 17.4}}},
               "flux_dev_1024": {"paths": {"bf16_graph": {"median_ms": 172.0}, "int8dit_graph": {"median_ms": 134.0},
                                           "int8dit": {"median_ms": 143.0}, "bf16": {"median_ms": 176.0}}},
               "sd3_medium_1024": {"paths": {"int8dit_graph": {"error": "RuntimeError: ..."}}}}
    s = summary(results)
    assert abs(s["dit_xl_2_512_graph_speedup_vs_bf16_graph"] - 23.4 / 17.4) < 1e-12
    assert abs(s["flux_dev_1024_graph_speedup_vs_bf16_graph"] - 172.0 / 134.0) < 1e-12
    assert "sd3_medium_1024_graph_speedup_vs_bf16_graph" not in s
    assert s["flux_dev_best_int8dit_path"] == "int8dit" and abs(s["flux_dev_speedup_vs_bf16"] - 176.0 / 143.0) < 1e-12
    graphs_only = {k: v for k, v in results.items() if k != "flux_dev_1024"}
    assert list(summary(graphs_only)) == ["dit_xl_2_512_graph_speedup_vs_bf16_graph"]


def test_the_summary_gives_the_compiled_and_captured_speedup_where_both_ran():
    from int8dit.bench.e2e import summary

    results = {"flux_dev_1024": {"paths": {"bf16_compile_graph": {"median_ms": 128.0},
                                           "int8dit_compile_graph": {"median_ms": 80.0}}},
               "dit_xl_2_512": {"paths": {"int8dit_compile_graph": {"median_ms": 9.0}}}}
    s = summary(results)
    assert abs(s["flux_dev_1024_compile_graph_speedup_vs_bf16_compile_graph"] - 1.6) < 1e-12
    assert "dit_xl_2_512_compile_graph_speedup_vs_bf16_compile_graph" not in s


def test_every_path_says_whether_it_compiles_and_whether_it_replays_a_graph():
    from int8dit.bench.e2e import BF16_PATHS, PATHS, QUANTIZED, captures, compiles

    assert [p for p in PATHS if compiles(p)] == ["bf16_compile", "int8dit_compile", "torchao_int8_compile",
                                                 "bf16_compile_graph", "int8dit_compile_graph"]
    assert [p for p in PATHS if captures(p)] == ["bf16_graph", "int8dit_graph", "bf16_compile_graph",
                                                 "int8dit_compile_graph", "bf16_prep_graph", "int8dit_prep_graph"]
    assert set(PATHS) == set(BF16_PATHS) | QUANTIZED  # each path is either a baseline or measured for accuracy


def test_a_compiled_and_captured_variant_compiles_its_blocks(monkeypatch):
    from int8dit.bench import e2e

    compiled = []
    monkeypatch.setattr(e2e, "compile_blocks", lambda torch, variant, fullgraph: compiled.append(fullgraph))
    model = AdaLNBlock().to(torch.bfloat16).eval()
    e2e.make_variant(torch, "bf16_compile_graph", model, {})
    e2e.make_variant(torch, "bf16_graph", model, {})
    assert compiled == [True]


def test_only_the_packages_a_requested_path_needs_are_probed(monkeypatch):
    import int8dit.bench.e2e as e2e

    probed = []
    monkeypatch.setattr(e2e, "probe_import", lambda mod: probed.append(mod) or "1.0")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a test GPU")
    env = e2e.environment(torch, ["bf16_graph", "int8dit_graph"])
    assert probed == ["diffusers"] and env["torchao"].startswith("not probed")
    probed.clear()
    e2e.environment(torch, ["int8dit", "torchao_int8", "nf4"])
    assert probed == ["diffusers", "torchao", "bitsandbytes"]


def test_the_report_files_are_replaced_whole(tmp_path):
    from int8dit.bench.report import write_report

    doc = {"environment": {}, "summary": {}, "results": {}}
    write_report(doc, str(tmp_path))
    write_report(doc, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2e.json", "e2e.md"]  # no plot yet, no temporary left


def test_the_fused_attention_paths_compare_with_their_own_twins():
    from int8dit.bench.e2e import summary
    from int8dit.bench.report import same_mode_bf16

    # int8dit with the fusion against bf16 with it; bf16 with it against plain bf16 (the fusion's gain)
    assert same_mode_bf16("int8dit_prep_graph") == "bf16_prep_graph"
    assert same_mode_bf16("bf16_prep_graph") == "bf16_graph"
    assert same_mode_bf16("int8dit_graph") == "bf16_graph"
    paths = {"bf16_graph": {"median_ms": 170.0}, "int8dit_graph": {"median_ms": 117.0},
             "bf16_prep_graph": {"median_ms": 136.0}, "int8dit_prep_graph": {"median_ms": 85.0}}
    s = summary({"flux_dev_1024": {"paths": paths}})
    assert abs(s["flux_dev_1024_prep_graph_speedup_vs_bf16_graph"] - 170.0 / 85.0) < 1e-12
    assert abs(s["flux_dev_1024_prep_graph_speedup_vs_bf16_prep_graph"] - 136.0 / 85.0) < 1e-12
    assert abs(s["flux_dev_1024_bf16_prep_graph_speedup_vs_bf16_graph"] - 170.0 / 136.0) < 1e-12
    doc = {"environment": {}, "summary": {}, "results": {"flux": {
        "model": "Flux", "shape": "1024", "config_from": "x", "params": 1e9, "quantized_linears": 3,
        "quantized_params": 5e8, "kept_float": [], "paths": paths}}}
    text = markdown(doc)
    assert _row(text, "int8dit + fused attention prep + CUDA graph")[1:4] == ["85.00", "", "1.60x"]
    assert _row(text, "bf16 + fused attention prep + CUDA graph")[1:4] == ["136.00", "", "1.25x"]


def test_a_fused_attention_variant_refuses_a_model_without_flux_attention():
    from int8dit.bench.e2e import fuses_attention, make_variant

    assert fuses_attention("bf16_prep_graph") and fuses_attention("int8dit_prep_graph")
    assert not fuses_attention("int8dit_graph")
    model = AdaLNBlock().to(torch.bfloat16).eval()
    with pytest.raises(RuntimeError, match="nothing to time"):
        make_variant(torch, "bf16_prep_graph", model, {})


def test_a_fused_attention_variant_of_flux_gets_the_fused_processors():
    diffusers = pytest.importorskip("diffusers")
    from int8dit.bench.e2e import make_variant
    from int8dit.torch.flux_attention import FluxQKNormRopeProcessor

    model = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=32, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=16, guidance_embeds=False, axes_dims_rope=(8, 12, 12))
    variant = make_variant(torch, "bf16_prep_graph", model.to(torch.bfloat16).eval(), {})
    assert variant._int8dit_fused_attention == 2
    assert isinstance(variant.transformer_blocks[0].attn.processor, FluxQKNormRopeProcessor)
    assert type(model.transformer_blocks[0].attn.processor).__name__ == "FluxAttnProcessor"  # the original's kept


def test_build_keeps_the_modules_a_class_keeps_in_fp32_and_the_video_model_is_opt_in():
    """Wan keeps its rotary tables, time embedder, norms and scale_shift_table in fp32 when loaded with
    torch_dtype; the benchmark's random-weight model must too (with bf16 tables the fused attention
    prep would fall back, and the model would not be the one users run)."""
    pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    from int8dit.bench.models import MODELS, ModelCase, build, _wan_inputs

    tiny = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=16, out_channels=16,
                text_dim=4096, freq_dim=32, ffn_dim=128, num_layers=1, rope_max_seq_len=64,
                qk_norm="rms_norm_across_heads", cross_attn_norm=True, eps=1e-6)
    model = build(ModelCase("wan_tiny", "WanTransformer3DModel", tiny, "-", "-", _wan_inputs(5, 32, 32)), torch, "cpu",
                  torch.bfloat16)
    assert model.rope.freqs_cos.dtype == torch.float32
    assert model.scale_shift_table.dtype == model.blocks[0].scale_shift_table.dtype == torch.float32
    assert model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16  # the rest is bf16
    assert model.proj_out.weight.dtype == torch.bfloat16
    # the published config builds (shapes only checked here), and only by name
    wan = MODELS["wan2_1_1_3b_480p"]
    defaults = {name for name, case in MODELS.items() if case.default}
    assert defaults == {"flux_dev_1024", "flux_dev_768", "sd3_medium_1024", "pixart_sigma_1024", "dit_xl_2_512"}
    latent = wan.inputs(torch, "cpu", torch.bfloat16)["hidden_states"]
    assert tuple(latent.shape) == (1, 16, 21, 60, 104)  # 21 x 30 x 52 = 32760 tokens after the 1x2x2 patches


def test_the_wan_2_2_ti2v_case_gives_a_timestep_per_token_and_its_inputs_run_a_small_wan_fused():
    """Wan 2.2 TI2V-5B at 720p: 48 latent channels of its 4 x 16 x 16 VAE, a timestep per video token (the
    first frame's at 0, as image to video conditions it); the same helper's inputs run a small Wan whose
    blocks then modulate per token in the fused kernels."""
    pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    from int8dit.bench.models import MODELS, ModelCase, _wan_inputs, build
    from int8dit.torch import quantize_

    case = MODELS["wan2_2_ti2v_5b_720p"]
    assert not case.default and case.config["in_channels"] == 48 and case.config["num_layers"] == 30
    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (1, 48, 31, 44, 80)
    timestep = inputs["timestep"]
    assert tuple(timestep.shape) == (1, 31 * 22 * 40)  # 27280 tokens after the 1 x 2 x 2 patches
    assert (timestep[0, :880] == 0).all() and (timestep[0, 880:] == 500).all()

    tiny = dict(case.config, num_attention_heads=2, attention_head_dim=32, ffn_dim=128, num_layers=1, freq_dim=32)
    model = build(ModelCase("wan22_tiny", "WanTransformer3DModel", tiny, "-", "-",
                            _wan_inputs(5, 64, 64, channels=48, vae_scale=16, per_token_timesteps=True)),
                  torch, "cpu", torch.bfloat16)
    small = _wan_inputs(5, 64, 64, channels=48, vae_scale=16, per_token_timesteps=True)(torch, "cpu", torch.bfloat16)
    assert tuple(small["timestep"].shape) == (1, 2 * 2 * 2)
    import int8dit.torch.blocks_video as blocks_video
    calls, real = [], blocks_video._wan_fused
    blocks_video._wan_fused = lambda *a, **k: calls.append(a[-1] is not None) or real(*a, **k)
    try:
        with torch.no_grad():
            want = model(**small)[0]
            assert quantize_(model, min_features=32).fused_blocks == 1
            got = model(**small)[0]
    finally:
        blocks_video._wan_fused = real
    assert calls == [True]  # the block's fused forward, with the per-token rows
    assert torch.nn.functional.cosine_similarity(got.flatten().float(), want.flatten().float(), dim=0) > 0.99


def test_accuracy_takes_a_list_output_and_the_z_image_case_builds_its_inputs():
    """Z-Image takes and returns lists, one tensor a sample: the accuracy figures join them."""
    from int8dit.bench.e2e import accuracy
    from int8dit.bench.models import MODELS

    ref = [torch.randn(16, 1, 8, 8), torch.randn(16, 1, 4, 4)]
    near = [r + 1e-3 * torch.randn_like(r) for r in ref]
    got = accuracy(torch, near, ref)
    assert got["cosine_vs_bf16"] > 0.999 and got["finite"]
    assert accuracy(torch, [ref[0], -ref[1]], ref)["cosine_vs_bf16"] < 0.9  # the second sample counts too
    case = MODELS["z_image_turbo_1024"]
    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert not case.default
    assert [tuple(x.shape) for x in inputs["x"]] == [(16, 1, 128, 128)]  # 64 x 64 patches of 2 x 2: 4096 tokens
    assert [tuple(c.shape) for c in inputs["cap_feats"]] == [(256, 2560)]


def opt_in_case_with_class_defaults(name: str, cls_name: str):
    """MODELS[name], checked to be opt-in, of ``cls_name``, and configured with nothing but diffusers'
    defaults for that class (the cases whose configs are the published ones or the class's: nothing of
    them may drift). Skips without diffusers."""
    pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    import inspect

    import diffusers
    from int8dit.bench.models import MODELS

    case = MODELS[name]
    assert not case.default and case.cls_name == cls_name
    def plain(v):  # (a list default and a tuple in the case are the same configuration)
        return tuple(v) if isinstance(v, list) else v

    defaults = {k: plain(p.default) for k, p in inspect.signature(getattr(diffusers, cls_name).__init__).parameters.items()
                if k in case.config}
    assert {k: plain(v) for k, v in case.config.items()} == defaults
    return case


def test_the_flux2_dev_case_is_the_published_config_and_its_inputs_run_a_small_flux2():
    # FLUX.2-dev's config is diffusers' defaults for the class
    case = opt_in_case_with_class_defaults("flux2_dev_1024", "Flux2Transformer2DModel")
    from int8dit.bench.models import ModelCase, _flux2_inputs, build

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (1, 4096, 128)
    assert tuple(inputs["encoder_hidden_states"].shape) == (1, 512, 15360)
    assert tuple(inputs["img_ids"].shape) == (4096, 4) and inputs["img_ids"][-1].tolist() == [0, 63, 63, 0]
    assert inputs["txt_ids"][:, 3].tolist() == list(range(512))
    # the same helper's inputs run a small FLUX.2
    tiny = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=32,
                num_attention_heads=2, joint_attention_dim=64, timestep_guidance_channels=32, mlp_ratio=3.0,
                axes_dims_rope=(8, 8, 8, 8), guidance_embeds=True)
    small = ModelCase("flux2_tiny", "Flux2Transformer2DModel", tiny, "-", "-", _flux2_inputs(64, 8, 16, 64))
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    assert tuple(out.shape) == (1, 64, 16) and torch.isfinite(out).all()


def test_the_float_layers_go_to_host_memory_only_where_weights_and_int8_copy_do_not_fit():
    gib = 2**30
    assert offload_needed("auto", 64 * gib, 80 * gib)       # FLUX.2-dev on an H100: 96 GB > 72
    assert not offload_needed("auto", 64 * gib, 141 * gib)  # on an H200
    assert not offload_needed("auto", 24 * gib, 80 * gib)   # FLUX.1-dev
    assert offload_needed("on", 1, 80 * gib) and not offload_needed("off", 64 * gib, 80 * gib)
    with pytest.raises(ValueError, match="choose auto, on or off"):
        offload_needed("yes", 1, 1)


def test_the_hunyuan_video_case_is_the_classs_defaults_and_its_inputs_run_a_small_model():
    case = opt_in_case_with_class_defaults("hunyuan_video_544p_61f", "HunyuanVideoTransformer3DModel")
    from int8dit.bench import models
    from int8dit.bench.models import ModelCase, build

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (1, 16, 16, 68, 120)  # 16 x 34 x 60 = 32640 tokens of 2 x 2
    tiny = dict(in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=32, num_layers=1,
                num_single_layers=1, num_refiner_layers=1, text_embed_dim=4096, pooled_projection_dim=768,
                rope_axes_dim=(8, 12, 12))
    small = ModelCase("hunyuan_tiny", case.cls_name, tiny, "-", "-", models._hunyuan_video_inputs(5, 32, 32, text_tokens=8))
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    assert tuple(out.shape) == (1, 16, 2, 4, 4) and torch.isfinite(out).all()


def test_the_ltx_video_case_is_the_classs_defaults_and_its_inputs_run_a_small_model():
    case = opt_in_case_with_class_defaults("ltx_video_768x512", "LTXVideoTransformer3DModel")
    from int8dit.bench import models
    from int8dit.bench.models import ModelCase, build

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (2, 16 * 16 * 24, 128)  # 121 frames -> 16, 512 x 768 -> 16 x 24
    tiny = dict(in_channels=128, out_channels=128, num_attention_heads=2, attention_head_dim=32, cross_attention_dim=64,
                num_layers=1, caption_channels=4096)
    small = ModelCase("ltx_tiny", case.cls_name, tiny, "-", "-", models._ltx_video_inputs(9, 64, 96, text_tokens=8))
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    assert tuple(out.shape) == (2, 2 * 2 * 3, 128) and torch.isfinite(out).all()


@pytest.mark.parametrize("name, cls_name", [("qwen_image_1024", "QwenImageTransformer2DModel"),
                                            ("chroma_1024", "ChromaTransformer2DModel")])
def test_the_qwen_image_and_chroma_cases_are_their_published_configs_and_their_inputs_run_small_models(name, cls_name):
    # the published configs are diffusers' defaults for the classes
    case = opt_in_case_with_class_defaults(name, cls_name)
    from int8dit.bench import models
    from int8dit.bench.models import ModelCase, build

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (1, 4096, 64)  # 1024 px: 64 x 64 patches
    # Qwen-Image's code for a text mask copies a host value to the GPU (no CUDA graph), and its pipeline
    # passes none when every token is valid
    assert "encoder_hidden_states_mask" not in inputs
    # the same helpers' inputs run small models of the class (the text features at the real widths)
    if name == "qwen_image_1024":
        tiny = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=1, attention_head_dim=32,
                    num_attention_heads=2, joint_attention_dim=3584, axes_dims_rope=(8, 12, 12))
        make = models._qwen_image_inputs(128, 8)
    else:
        tiny = dict(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=32,
                    num_attention_heads=2, joint_attention_dim=4096, axes_dims_rope=(8, 12, 12),
                    approximator_num_channels=16, approximator_hidden_dim=64, approximator_layers=1)
        make = models._chroma_inputs(64, 8)
    small = ModelCase(name + "_tiny", cls_name, tiny, "-", "-", make)
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    assert tuple(out.shape[:2]) == (1, 64) and torch.isfinite(out).all()


def test_the_qwen_image_edit_case_runs_a_small_edit_model_whose_blocks_fuse_per_token():
    """qwen_image_edit_1024: Qwen-Image with zero_cond_t and a condition image beside the target (8192 image
    tokens); the same helper's inputs run a small edit model whose blocks fuse their modulation per token."""
    pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
    from int8dit.bench.models import MODELS, ModelCase, _qwen_image_inputs, build
    from int8dit.torch import quantize_

    case = MODELS["qwen_image_edit_1024"]
    assert not case.default and case.config["zero_cond_t"] is True
    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (1, 8192, 64) and inputs["img_shapes"] == [[(1, 64, 64)] * 2]
    tiny = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=1, attention_head_dim=32,
                num_attention_heads=2, joint_attention_dim=3584, axes_dims_rope=(8, 12, 12), zero_cond_t=True)
    make = _qwen_image_inputs(128, 8, condition_images=1)
    model = build(ModelCase("qwen_edit_tiny", case.cls_name, tiny, "-", "-", make), torch, "cpu", torch.bfloat16)
    small = make(torch, "cpu", torch.bfloat16)
    import int8dit.torch.blocks as blocks
    picked, real = [], blocks._rows_picked_per_token
    with torch.no_grad():
        want = model(**small)[0]
        assert quantize_(model, min_features=32).fused_blocks == 1
        blocks._rows_picked_per_token = lambda *a: picked.append(1) or real(*a)
        try:
            got = model(**small)[0]
        finally:
            blocks._rows_picked_per_token = real
    assert picked == [1] and tuple(got.shape[:2]) == (1, 2 * 64)
    assert torch.nn.functional.cosine_similarity(got.flatten().float(), want.flatten().float(), dim=0) > 0.99


def test_the_flux3_case_is_the_class_defaults_and_its_inputs_run_a_small_flux3():
    case = opt_in_case_with_class_defaults("flux3_1024", "Flux3Transformer2DModel")
    from int8dit.bench.e2e import compile_blocks
    from int8dit.bench.models import ModelCase, _flux3_inputs, build

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert "guidance" not in inputs and tuple(inputs["encoder_hidden_states"].shape) == (1, 512, 20480)
    assert tuple(inputs["hidden_states"].shape) == (1, 4096, 128) and tuple(inputs["img_ids"].shape) == (4096, 4)
    tiny = dict(in_channels=16, cond_in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=32,
                num_attention_heads=2, joint_attention_dim=64, timestep_channels=32, axes_dims_rope=(8, 8, 8, 8))
    small = ModelCase("flux3_tiny", "Flux3Transformer2DModel", tiny, "-", "-", _flux3_inputs(64, 8, 16, 64))
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    # image to image: 16 reference tokens beside the 64 image tokens; the output is the image's
    edit = _flux3_inputs(64, 8, 16, 64, reference_tokens=16)(torch, "cpu", torch.bfloat16)
    assert tuple(edit["image_cond_ids"].shape) == (16, 4) and edit["image_cond_ids"][-1].tolist() == [1, 3, 3, 0]
    assert tuple(model(**edit)[0].shape) == (1, 64, 16)
    edit_case = opt_in_case_with_class_defaults("flux3_edit_1024", "Flux3Transformer2DModel")
    assert tuple(edit_case.inputs(torch, "cpu", torch.bfloat16)["image_cond_hidden_states"].shape) == (1, 4096, 128)
    assert tuple(out.shape) == (1, 64, 16) and torch.isfinite(out).all()
    # regional compilation reaches the per-mode blocks inside their ModuleDict: text, image and reference
    # blocks and the joint block
    assert compile_blocks(torch, model) == 4


def test_the_krea2_case_is_the_class_defaults_and_its_inputs_run_a_small_krea2():
    case = opt_in_case_with_class_defaults("krea2_1024", "Krea2Transformer2DModel")
    from int8dit.bench.models import ModelCase, _krea2_inputs, build
    from test_torch_more_diffusers_models import CASES

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["encoder_hidden_states"].shape) == (1, 512, 12, 2560)
    assert tuple(inputs["position_ids"].shape) == (512 + 4096, 3) and inputs["position_ids"][-1].tolist() == [0, 63, 63]
    small = ModelCase("krea2_tiny", "Krea2Transformer2DModel", CASES["krea2"][1], "-", "-", _krea2_inputs(64, 8, 16, 3, 64))
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    assert tuple(out.shape) == (1, 64, 16) and torch.isfinite(out).all()


def test_the_longcat_image_case_is_the_class_defaults_and_its_inputs_run_a_small_longcat():
    case = opt_in_case_with_class_defaults("longcat_image_1024", "LongCatImageTransformer2DModel")
    from int8dit.bench.models import ModelCase, _flux_inputs, build
    from test_torch_more_diffusers_models import CASES

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["encoder_hidden_states"].shape) == (1, 512, 3584)
    assert "pooled_projections" not in inputs and "guidance" not in inputs
    assert tuple(inputs["img_ids"].shape) == (4096, 3) and inputs["img_ids"][-1].tolist() == [0, 63, 63]
    small = ModelCase("longcat_tiny", "LongCatImageTransformer2DModel", CASES["longcat-image"][1], "-", "-",
                      _flux_inputs(64, 8, 16, 64, pooled_dim=0, guidance=False))
    model = build(small, torch, "cpu", torch.bfloat16)
    out = model(**small.inputs(torch, "cpu", torch.bfloat16))[0]
    assert tuple(out.shape) == (1, 64, 16) and torch.isfinite(out).all()


def test_the_cogview4_6b_case_is_the_class_defaults_with_the_published_transformers_blocks_and_heads():
    """THUDM/CogView4-6B's transformer differs from diffusers' class defaults in its depth and heads only:
    28 blocks of 32 heads of 128, a head size the fused attention prep takes (40 is not)."""
    from int8dit.bench.models import MODELS

    defaults = opt_in_case_with_class_defaults("cogview4_1024", "CogView4Transformer2DModel").config
    case = MODELS["cogview4_6b_1024"]
    assert not case.default and case.cls_name == "CogView4Transformer2DModel" and case.repo == "THUDM/CogView4-6B"
    changed = {k: v for k, v in case.config.items() if defaults.get(k) != v}
    assert changed == dict(num_layers=28, attention_head_dim=128, num_attention_heads=32)
    assert case.inputs is not None and set(case.config) == set(defaults)


def test_the_cogvideox_5b_case_is_the_class_defaults_with_the_published_depth_heads_and_rotation():
    """THUDM/CogVideoX-5b's transformer differs from diffusers' class defaults (CogVideoX-2B) in its depth, heads
    and rotary embedding only; its inputs carry the pipeline's rotary tables for the 13 x 30 x 45 grid."""
    import inspect

    import diffusers
    from int8dit.bench.models import MODELS, ModelCase, _cogvideox_inputs, build
    from test_torch_more_diffusers_models import CASES

    case = MODELS["cogvideox_5b_720x480_49f"]
    assert not case.default and case.repo == "THUDM/CogVideoX-5b"
    defaults = {k: v.default for k, v in inspect.signature(diffusers.CogVideoXTransformer3DModel.__init__).parameters.items()
                if k != "self"}
    assert set(case.config) == set(defaults)
    assert {k: v for k, v in case.config.items() if defaults[k] != v} == dict(
        num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True)
    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    assert tuple(inputs["hidden_states"].shape) == (1, 13, 16, 60, 90)
    cos, sin = inputs["image_rotary_emb"]
    assert tuple(cos.shape) == tuple(sin.shape) == (13 * 30 * 45, 64) and cos.dtype == torch.float32
    # the same builder at a small model's widths, its tables for the small grid: the forward runs
    config = dict(CASES["cogvideox"][1], use_rotary_positional_embeddings=True)
    small = ModelCase("cogvideox_tiny", "CogVideoXTransformer3DModel", config, "-", "-",
                      _cogvideox_inputs(5, 64, 64, 64, 4, 8, 64, sample_size=(8, 8)))
    small_inputs = small.inputs(torch, "cpu", torch.bfloat16)
    out = build(small, torch, "cpu", torch.bfloat16)(**small_inputs)[0]
    assert out.shape == small_inputs["hidden_states"].shape and torch.isfinite(out).all()


def test_the_cosmos_case_is_the_class_defaults_and_its_inputs_run_a_small_model():
    case = opt_in_case_with_class_defaults("cosmos_7b_704p_25f", "CosmosTransformer3DModel")
    from int8dit.bench.models import ModelCase, _cosmos_inputs, build
    from diffusers_cases_video import VIDEO_CASES

    inputs = case.inputs(torch, "cpu", torch.bfloat16)
    latent = inputs["hidden_states"]
    assert tuple(latent.shape) == (1, 16, 4, 88, 160) and latent.shape[2] * latent.shape[3] * latent.shape[4] // 4 == 14080
    assert tuple(inputs["padding_mask"].shape) == (1, 1, 704, 1280) and inputs["fps"] == 24
    # the same input builder at a small model's widths (without the padding mask, whose resize needs torchvision)
    small = ModelCase("cosmos_tiny", "CosmosTransformer3DModel", VIDEO_CASES["cosmos-1.0"][1], "-", "-",
                      _cosmos_inputs(9, 32, 32, 8, 4, 64, padding_mask=False))
    small_inputs = small.inputs(torch, "cpu", torch.bfloat16)
    out = build(small, torch, "cpu", torch.bfloat16)(**small_inputs)[0]
    assert out.shape == small_inputs["hidden_states"].shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name, cls_name, patch", [
    ("cogview4_1024", "CogView4Transformer2DModel", 2), ("hunyuan_image_2048", "HunyuanImageTransformer2DModel", 1),
])
def test_the_cogview4_and_hunyuan_image_cases_are_class_defaults_and_their_inputs_run_small_models(
        name, cls_name, patch):
    case = opt_in_case_with_class_defaults(name, cls_name)
    from int8dit.bench.models import ModelCase, _cogview4_inputs, _hunyuan_image_inputs, build
    from test_torch_more_diffusers_models import CASES

    latent = case.inputs(torch, "cpu", torch.bfloat16)["hidden_states"]
    assert latent.shape[-2] * latent.shape[-1] // patch ** 2 == 4096  # image tokens
    # the same input builders at a small model's widths (HunyuanImage as the class defaults it: no byT5
    # glyph stream, no guidance or meanflow embedders)
    if name.startswith("cogview4"):
        config, make = CASES["cogview4"][1], _cogview4_inputs(128, 8, 4, 64)
    else:
        config = dict(CASES["hunyuanimage"][1], text_embed_2_dim=None, guidance_embeds=False, use_meanflow=False)
        make = _hunyuan_image_inputs(256, 8, 16, 64)
    small = ModelCase(name + "_tiny", cls_name, config, "-", "-", make)
    inputs = small.inputs(torch, "cpu", torch.bfloat16)
    out = build(small, torch, "cpu", torch.bfloat16)(**inputs)[0]
    assert out.shape == inputs["hidden_states"].shape and torch.isfinite(out).all()
