"""bench/quant/eager_torch.py's markdown report, from a quant.json without a GPU: the line that names the
summary's cases below the target must count strictly (0.79993 is below 0.8, though the table's 3 digits print 0.800)
and leave out the rows the summary does not cover."""
import importlib.util
import json
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("eager_torch", _ROOT / "bench" / "quant" / "eager_torch.py")
eager_torch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eager_torch)


def report(rows):
    return {"summary": {"target_fraction": 0.8}, "rows": rows}


def row(op, m, k, fraction, counts=True, batches=1):
    return {"op": op, "m": m, "k": k, "batches": batches, "bandwidth_fraction": fraction, "counts_for_target": counts}


def test_names_the_cases_below_the_target_lowest_first_and_counts_strictly():
    line = eager_torch.below_target_line(report([
        row("rmsnorm_quantize", 4096, 3072, 0.79993),
        row("quantize_rows", 4096, 3072, 0.834),
        row("layernorm_modulate_quantize", 8192, 1536, 0.783, batches=2),
        row("layernorm_modulate_quantize", 4608, 3072, 0.770),
        row("layernorm_modulate_quantize", 8192, 1152, 0.74, counts=False),  # below the target's M x K
        row("gelu_quantize", 4096, 3072, 0.8),  # at the target is not below it
    ]))
    assert line == ("Below the target: 3 of the 5 cases in the summary: layernorm_modulate_quantize 4608x3072 (0.7700), "
                    "layernorm_modulate_quantize 8192x1536/2 (0.7830), rmsnorm_quantize 4096x3072 (0.7999).")


def test_says_so_when_every_case_meets_the_target():
    line = eager_torch.below_target_line(report([row("quantize_rows", 4096, 3072, 0.83), row("x", 1, 8, 0.1, counts=False)]))
    assert line == "Every one of the 1 cases in the summary is at or above the target."


def test_the_committed_h100_report_agrees_with_its_json():
    data = json.loads((_ROOT / "bench" / "results" / "h100" / "quant.json").read_text())
    md = (_ROOT / "bench" / "results" / "h100" / "quant.md").read_text()
    assert eager_torch.below_target_line(data) in md
