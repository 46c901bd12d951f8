"""int8dit.bench.attention_fp8 without a GPU: its help and messages, the report it writes, and the operand
rounding its second table applies."""
import pytest

from helpers import help_text, torch_or_skip

torch = torch_or_skip()

from int8dit.bench import attention_fp8  # noqa: E402


def test_help_says_what_is_timed():
    out = help_text(attention_fp8.main)
    assert "FP8 flash attention" in out and "--shapes" in out and "nvidia-cudnn-frontend" in out


def test_an_unknown_shape_names_the_known_ones():
    with pytest.raises(SystemExit, match="unknown shape.*flux.*wan_1_3b"):
        attention_fp8.parse_shapes("flux,hunyuan")
    assert attention_fp8.parse_shapes(" wan_1_3b, sd3 ") == ["wan_1_3b", "sd3"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_without_a_gpu_it_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no CUDA GPU is visible"):
        attention_fp8.run(str(tmp_path), ["flux"])


def test_the_report_has_a_row_a_shape_its_notes_and_the_rounding_table():
    ok = dict(shape="Flux", batch=1, heads=24, tokens=4608, head_dim=128, bf16_flash_ms=0.8, bf16_cudnn_ms=0.4,
              fp8_ms=0.29, fp8_output_type="e4m3", fp8_tflops=900.0, fp8_speedup=0.4 / 0.29,
              bf16_cudnn_error=dict(cosine=0.999998, relative_l2=2e-3), fp8_error=dict(cosine=0.996, relative_l2=0.089),
              input_rounding_error={"q, k e4m3 per tensor": dict(relative_l2=0.079), "v e4m3 per tensor": dict(relative_l2=0.027)})
    failed = dict(shape="Wan", batch=1, heads=12, tokens=32760, head_dim=128, bf16_flash_ms=19.0, bf16_cudnn_ms=None,
                  bf16_cudnn_note="No available kernel", fp8_ms=None, fp8_note="cudnnGraphNotSupportedError: no engine")
    md = attention_fp8.markdown(dict(command="c", gpu="H100", torch="2.11", cudnn_backend=91900, cudnn_frontend="1.16.0",
                                     date_utc="d", method="m", rows=[ok, failed]))
    assert "| Flux | 1 x 24 x 4608 x 128 | 0.800 | 0.400 | 0.290 (e4m3) | 900 | 1.38x | 0.999998 | 0.996000 |" in md
    assert "| Wan | 1 x 12 x 32760 x 128 | 19.000 | - | - |" in md
    assert "fp8_note: cudnnGraphNotSupportedError: no engine" in md and "bf16_cudnn_note: No available kernel" in md
    assert "| shape | q, k e4m3 per tensor | v e4m3 per tensor |" in md
    assert "| Flux | 7.90e-02 | 2.70e-02 |" in md and "| Wan | - | - |" in md


def test_int8_rounding_keeps_each_tokens_max_and_255_levels():
    x = torch.randn(2, 3, 40, 64) * torch.exp(torch.randn(64))
    r = attention_fp8._roundtrip_int8_per_token(torch, x.bfloat16()).float()
    amax = x.bfloat16().float().abs().amax(-1)
    assert torch.allclose(r.abs().amax(-1), amax, rtol=2 ** -8)  # the max is level 127, bf16 on the way back
    scale = amax / 127
    levels = (r / scale[..., None]).round()
    assert levels.abs().max() <= 127
    assert torch.allclose(r, levels * scale[..., None], rtol=2 ** -8, atol=0)
    assert not torch.equal(r, x.bfloat16().float())  # it rounds


def test_e4m3_rounding_has_three_mantissa_bits_on_one_scale():
    # magnitudes in [0.5, 5]: all in e4m3's normal range at this scale (448 / 5), where its precision is relative
    x = (torch.rand(1000) * 4.5 + 0.5) * torch.where(torch.rand(1000) < 0.5, -1.0, 1.0)
    x = x.bfloat16().float()
    r = attention_fp8._roundtrip_e4m3_per_tensor(torch, x.bfloat16()).float()
    rel = ((r - x).abs() / x.abs()).max().item()
    assert rel <= 2 ** -4 + 2 ** -8  # half an e4m3 ulp (2^-3 relative) plus bf16's own rounding
    assert rel > 2 ** -8  # and it is coarser than bf16
