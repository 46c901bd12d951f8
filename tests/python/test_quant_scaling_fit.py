"""scripts/quant_scaling_fit.py on the committed H100 sweep (bench/results/h100/quant_rows_scaling_7f4324e.txt):
it must give the intercepts and rates docs/quantization_history.md quotes from that file, and refuse what is not a
sweep with a message (no GPU)."""
import importlib.util
import pathlib

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("quant_scaling_fit", _ROOT / "scripts" / "quant_scaling_fit.py")
fit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit)

SWEEP = _ROOT / "bench" / "results" / "h100" / "quant_rows_scaling_7f4324e.txt"


def by_kernel(out):
    return {r["kernel"]: r for r in out["kernels"]}


def test_reproduces_the_documented_table():
    out = fit.summarize(SWEEP.read_text(), only="^(memcpy|library)")
    rows = by_kernel(out)
    assert out["k"] == 3072
    # docs/quantization_history.md: "What the 3072-column cases are bound by, as an intercept and a rate"
    expected = {
        "memcpy (same bytes: half read, half written)": (5.16, 2.968, 3106),
        "library quantize_rows": (2.52, 3.063, 3010),
        "library gelu_quantize": (3.65, 3.035, 3038),
        "library layernorm_modulate_quantize": (5.22, 3.338, 2762),
    }
    assert set(rows) == set(expected)
    for kernel, (intercept, ns_a_row, gbps) in expected.items():
        r = rows[kernel]
        assert r["intercept_us"] == pytest.approx(intercept, abs=0.01), kernel
        assert r["ns_a_row"] == pytest.approx(ns_a_row, abs=0.001), kernel
        assert r["streaming_gbps"] == pytest.approx(gbps, abs=2), kernel
        assert r["rows_timed"] == [1024, 2048, 4096, 8192, 16384, 32768]
    # "At LayerNorm's rate the 0.8 target at 4096 rows needs an intercept of at most 1.9 us ... at the copy's rate, 3.4"
    assert rows["library layernorm_modulate_quantize"]["intercept_for_0.8_at_4096_rows_us"] == pytest.approx(1.96, abs=0.01)
    assert rows["memcpy (same bytes: half read, half written)"]["intercept_for_0.8_at_4096_rows_us"] == pytest.approx(3.47, abs=0.01)


def test_a_line_through_two_points_is_exact():
    a, b, bytes_a_row = fit.fit([(1000, 12.0, 8e6), (3000, 32.0, 24e6)])
    assert a == pytest.approx(2.0)
    assert b == pytest.approx(0.01)
    assert bytes_a_row == pytest.approx(8000)


def test_refuses_a_sweep_over_two_widths():
    text = SWEEP.read_text().replace("=== M=2048 K=3072", "=== M=2048 K=1536", 1)
    with pytest.raises(ValueError, match="one K"):
        fit.summarize(text)


def test_refuses_text_that_is_not_the_probe_output():
    with pytest.raises(ValueError, match="copy bandwidth"):
        fit.summarize("=== M=1024 K=3072\nsomething else\n")


def test_cli_says_what_was_wrong_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "one_run.txt"
    bad.write_text("\n".join(SWEEP.read_text().splitlines()[:40]))  # the first M only
    assert fit.main([str(bad)]) == 2
    assert "two or more M" in capsys.readouterr().err
    assert fit.main([str(tmp_path / "missing.txt")]) == 2


def test_cli_writes_the_table_and_json(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert fit.main([str(SWEEP), "--only", "^library gelu", "--json", str(out)]) == 0
    assert "library gelu_quantize" in capsys.readouterr().out
    import json

    data = json.loads(out.read_text())
    assert [r["kernel"] for r in data["kernels"]] == ["library gelu_quantize"]
