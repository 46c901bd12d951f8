"""int8dit.bench.profile (e2e --profile) and its section of e2e.md, on the CPU. Skips without PyTorch."""
from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.bench.profile import device_time_us, profile_forward  # noqa: E402
from int8dit.bench.report import profile_lines  # noqa: E402


def test_a_profile_names_the_operators_that_ran_and_the_wall_time():
    a, b = torch.randn(256, 512), torch.randn(512, 384)
    p = profile_forward(torch, lambda: torch.relu(a @ b), top=5)
    assert p["wall_us"] > 0
    assert 1 <= len(p["top"]) <= 5
    names = [row["name"] for row in p["top"]]
    assert any(n in ("aten::mm", "aten::matmul", "aten::relu", "aten::clamp_min") for n in names), names
    cpu_names = [row["name"] for row in p["top_cpu"]]
    assert any(n in ("aten::mm", "aten::matmul", "aten::relu", "aten::clamp_min") for n in cpu_names), cpu_names
    assert [r["cpu_us"] for r in p["top_cpu"]] == sorted((r["cpu_us"] for r in p["top_cpu"]), reverse=True)
    py = p["top_python"]
    assert 1 <= len(py) <= 5 and all(r["calls"] >= 1 and r["cum_us"] >= r["own_us"] >= 0 for r in py)
    assert any("<lambda>" in r["name"] or "matmul" in r["name"] or "relu" in r["name"] for r in py), py
    if not torch.cuda.is_available():
        assert p["device_us"] == 0 and p["device_busy"] == 0  # no GPU ran: ranked by CPU time instead
        cpu = [row["cpu_us"] for row in p["top"]]
        assert cpu == sorted(cpu, reverse=True)


def test_the_report_shows_a_table_per_profiled_path_and_nothing_without_profiles():
    prof = {"wall_us": 2000.0, "device_us": 1500.0, "device_busy": 0.75,
            "top": [{"name": "int8dit::linear|x", "calls": 6, "device_us": 900.0, "cpu_us": 120.0}],
            "top_cpu": [{"name": "cudaLaunchKernel", "calls": 12, "device_us": 0.0, "cpu_us": 60.0}],
            "top_python": [{"name": "ops.py:112(linear_impl)", "calls": 6, "own_us": 30.0, "cum_us": 90.0}]}
    lines = profile_lines({"bf16": {"median_ms": 1.0}, "int8dit": {"median_ms": 2.0, "profile": prof}})
    text = "\n".join(lines)
    assert "**int8dit**: wall 2.00 ms, kernels 1.50 ms (GPU busy 0.75)" in text
    assert "| `int8dit::linear/x` | 6 | 0.900 | 0.120 |" in text  # a '|' in a name would break the table
    assert "| `cudaLaunchKernel` | 12 | 0.060 | 0.000 |" in text
    assert "| `ops.py:112(linear_impl)` | 6 | 0.030 | 0.090 |" in text
    assert profile_lines({"bf16": {"median_ms": 1.0}}) == []


def _event(name, start, end, device="DeviceType.CUDA"):
    from types import SimpleNamespace

    return SimpleNamespace(name=name, device_type=device, time_range=SimpleNamespace(start=start, end=end))


def test_gpu_time_counts_each_kernel_once_not_again_under_its_operator():
    from int8dit.bench.profile import device_intervals

    events = [_event("aten::addmm", 0.0, 905.0, "DeviceType.CPU"), _event("nvjet_gemm_kernel", 5.0, 905.0),
              _event("row_quantize_registers", 910.0, 1010.0)]
    assert device_time_us(device_intervals(events)) == 1000.0


def test_kernels_overlapping_under_programmatic_launch_count_their_overlap_once():
    # A PDL launch starts while the kernel before it runs and waits in griddepcontrol.wait: its recorded
    # interval covers the wait. The busy time is the union; each kernel owns what no earlier one covers.
    from int8dit.bench.profile import device_intervals, gpu_time_by_kind

    events = [_event("row_quantize_registers<...>", 0.0, 20.0),
              _event("cutlass::device_kernel<GemmUniversal<...>>", 15.0, 60.0),  # started 5 us early
              _event("row_quantize_registers<...>", 58.0, 70.0),
              _event("flash_fwd_kernel", 80.0, 80.0)]  # no duration: left out
    intervals = device_intervals(events)
    assert device_time_us(intervals) == 70.0
    assert gpu_time_by_kind(intervals) == [
        {"kind": "CUTLASS GEMM", "device_us": 40.0, "kernels": 1},
        {"kind": "int8dit quantization", "device_us": 30.0, "kernels": 2},
    ]


def test_kernels_are_sorted_into_kinds_by_their_names():
    from int8dit.bench.profile import kernel_kind

    kinds = {
        "void int8dit::quant::row_quantize_registers<__nv_bfloat16, int8dit::quant::ConcatGeluOp<...>, 8>": "int8dit quantization",
        "pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>, true>": "attention",
        "fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<...>)": "attention",
        "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x128": "attention",
        "void cutlass::device_kernel<cutlass::gemm::kernel::GemmUniversal<cute::tuple<int, int, int, int>, ...>>": "CUTLASS GEMM",
        "void int8dit::gemm::sm80::sm80_w8a8_gemm_kernel<int8dit::gemm::sm80::Mainloop<128, 128, 64>>": "int8dit GEMM",
        "void int8dit::(anonymous namespace)::gated_add_kernel<__nv_bfloat16, true>(int8dit::(an...": "int8dit residual update",
        "void int8dit::(anonymous namespace)::qk_norm_rope_kernel<__nv_bfloat16, 16, true>(int8dit::(...": "int8dit attention prep",
        "nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_NTN": "cuBLAS GEMM",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1": "cuBLAS GEMM",
        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float>": "normalization",
        "triton_red_fused_native_layer_norm_0": "normalization",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>>": "elementwise, reductions, copies",
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy<...>": "elementwise, reductions, copies",
        "triton_poi_fused_add_mul_0": "elementwise, reductions, copies",
        "Memcpy DtoD (Device -> Device)": "elementwise, reductions, copies",
        # cuBLAS's and cuDNN's own CUTLASS-built kernels and GEMVs are not int8dit's W8A8 GEMMs
        "void gemv2T_kernel_val<int, int, __nv_bfloat16, __nv_bfloat16, float, 128, 16, 4, 4, false>": "cuBLAS GEMM",
        "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8>(...)": "cuBLAS GEMM",
        "cutlass3x_sm90_tensorop_gemm_e4m3_e4m3_f32_bf16_bf16_128x128x128_1x2x1_0_tnn_align16": "cuBLAS GEMM",
        "_ZN7cutlass13device_kernelINS_4gemm6kernel13GemmUniversalIN4cute5tupleIJiiiiEEE": "CUTLASS GEMM",
        "some_kernel_nobody_named": "other",
    }
    for name, kind in kinds.items():
        assert kernel_kind(name) == kind, name


def test_gpu_time_is_summed_by_kind_over_device_events_only():
    from int8dit.bench.profile import device_intervals, gpu_time_by_kind

    events = [_event("row_quantize_registers<...>", 0.0, 20.0), _event("row_quantize_registers<...>", 100.0, 110.0),
              _event("row_quantize_streaming<...>", 200.0, 205.0), _event("nvjet_hsh_128x256", 20.0, 60.0),
              _event("int8dit::linear", 0.0, 300.0, "DeviceType.CPU")]
    assert gpu_time_by_kind(device_intervals(events)) == [
        {"kind": "cuBLAS GEMM", "device_us": 40.0, "kernels": 1},
        {"kind": "int8dit quantization", "device_us": 35.0, "kernels": 3},
    ]  # the CPU-side operator (whose interval spans its kernels') is left out


def test_the_report_shows_the_gpu_time_by_kind():
    prof = {"wall_us": 2000.0, "device_us": 1000.0, "device_busy": 0.5, "top": [],
            "by_kind": [{"kind": "int8dit GEMM", "device_us": 600.0, "kernels": 12},
                        {"kind": "attention", "device_us": 400.0, "kernels": 2}]}
    text = "\n".join(profile_lines({"int8dit": {"median_ms": 2.0, "profile": prof}}))
    assert "| int8dit GEMM | 12 | 0.600 | 0.60 |" in text and "| attention | 2 | 0.400 | 0.40 |" in text


def test_the_kernel_table_gives_each_kernel_the_time_it_owns_and_the_wait_of_its_early_start():
    # A gated_add launched early behind a GEMM (PDL) is recorded from its early start: 50 us, of which it
    # owns the 20 after the GEMM ends. The table ranks by owned time and keeps the wait apart.
    from int8dit.bench.profile import device_intervals, top_kernels

    events = [_event("gemm", 0.0, 100.0), _event("gated_add", 70.0, 120.0), _event("gemm", 120.0, 150.0),
              _event("gated_add", 150.0, 170.0), _event("flash_fwd", 170.0, 175.0),
              _event("aten::add", 60.0, 180.0, "DeviceType.CPU")]
    rows = top_kernels(device_intervals(events), top=2)
    assert rows == [{"name": "gemm", "calls": 2, "device_us": 130.0, "early_us": 0.0},
                    {"name": "gated_add", "calls": 2, "device_us": 40.0, "early_us": 30.0}]


def test_the_report_renders_the_kernel_table_and_older_operator_tables():
    kernels = {"wall_us": 2000.0, "device_us": 1000.0, "device_busy": 0.5,
               "top": [{"name": "gated_add_kernel", "calls": 4, "device_us": 80.0, "early_us": 120.0}]}
    text = "\n".join(profile_lines({"int8dit": {"median_ms": 2.0, "profile": kernels}}))
    assert "| kernel | calls | GPU ms | started early, ms |" in text
    assert "| `gated_add_kernel` | 4 | 0.080 | 0.120 |" in text
    older = dict(kernels, top=[{"name": "gated_add_kernel", "calls": 4, "device_us": 200.0, "cpu_us": 0.0}])
    text = "\n".join(profile_lines({"int8dit": {"median_ms": 2.0, "profile": older}}))
    assert "| operator | calls | GPU ms | CPU ms |" in text and "| `gated_add_kernel` | 4 | 0.200 | 0.000 |" in text


def test_the_report_sets_each_kind_of_kernel_beside_the_bf16_path_run_the_same_way():
    from int8dit.bench.report import kind_comparison_lines

    def prof(kinds):
        return {"profile": {"wall_us": 1.0, "device_us": 1.0, "device_busy": 1.0,
                            "by_kind": [{"kind": k, "device_us": us, "kernels": n} for k, us, n in kinds]}}

    paths = {"bf16_graph": prof([("cuBLAS GEMM", 9000.0, 10), ("attention", 2000.0, 2)]),
             "int8dit_graph": prof([("CUTLASS GEMM", 5000.0, 10), ("attention", 2000.0, 2),
                                    ("int8dit quantization", 500.0, 6)]),
             "int8dit": prof([("CUTLASS GEMM", 5000.0, 10)])}  # no eager bf16 profile: no table
    text = "\n".join(kind_comparison_lines(paths))
    assert text.count("| kind of kernel |") == 1
    assert "| kind of kernel | bf16 + CUDA graph | int8dit + CUDA graph | difference |" in text
    assert "| cuBLAS GEMM | 9.000 (10) | - | -9.000 |" in text
    assert "| CUTLASS GEMM | - | 5.000 (10) | +5.000 |" in text
    assert "| attention | 2.000 (2) | 2.000 (2) | +0.000 |" in text
    assert "| int8dit quantization | - | 0.500 (6) | +0.500 |" in text
    assert "| all kernels | 11.000 | 7.500 | -3.500 |" in text
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "kind of" not in line and "---" not in line]
    assert rows[:2] == ["| cuBLAS GEMM", "| CUTLASS GEMM"]  # the largest kinds first
