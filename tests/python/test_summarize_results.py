"""scripts/device/summarize_results.py: a device run's figures in one screen, from its results.tgz."""
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "device" / "summarize_results.py"


def _tgz(path: Path, files: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content if isinstance(content, bytes) else (content if isinstance(content, str) else json.dumps(content)).encode()
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def run(source) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(source)], capture_output=True, text=True)


def test_a_run_reads_as_its_verdicts_and_its_figures_against_the_targets(tmp_path):
    gemm = {"summary": {"geomean_vs_bf16_large": 1.8, "tops_flux_single_lin1": 1620.0, "all_checks_passed": True,
                        "stream_order": {"geomean_vs_bf16_large": 1.9},
                        "targets": {"geomean_vs_bf16_large": {"bound": ">= 2", "met": False},
                                    "tops_flux_single_lin1": {"bound": ">= 1600", "met": True}}},
            "rows": [{"m": 4608, "n": 21504, "k": 3072,
                      "paths": {"ours_heuristic": {"sm_mhz": 1500.0, "tops_per_ghz": 1080.0}}}]}
    quant = {"copy_bandwidth_gbps": 3010.0, "summary": {"min_bandwidth_fraction": 0.81, "min_bandwidth_case": "x 4096x3072",
                                                         "target_fraction": 0.8},
             "rows": [{"op": "qk_norm_rope", "m": 4608, "k": 3072, "counts_for_target": False, "time_us": 21.5,
                       "fraction_of_same_size_copy": 0.91, "speedup_vs_eager": 18.2},
                      {"op": "quantize_rows", "m": 4608, "k": 3072, "counts_for_target": True, "time_us": 13.0}]}
    e2e = {"results": {"dit": {"paths": {"bf16_graph": {"median_ms": 24.0}, "int8dit_graph": {"median_ms": 12.0},
                                         "int8dit": {"error": "boom"}}},
                       "flux": {"paths": {"bf16_graph": {"median_ms": 170.0}, "bf16_prep_graph": {"median_ms": 136.0},
                                          "int8dit_prep_graph": {"median_ms": 85.0}}}}}
    tgz = _tgz(tmp_path / "results.tgz", {
        "gpu.txt": "name, driver_version\nNVIDIA H100 80GB HBM3, 580.159.04\n",
        "steps.txt": "build: 190 s (status so far 0)\ntest: 50 s (status so far 1)\n",
        "test.log": "...\n 99% tests passed, 1 tests failed out of 243\n\nThe following tests FAILED:\n\t 17 - GatedAddGpu.Bits (Failed)\n",
        "pytest.log": "....\nFAILED tests/python/test_x.py::test_y - assert 0\n1 failed, 120 passed, 2 skipped in 30.1s\n",
        "results/gemm.json": gemm, "quant/quant.json": quant, "e2e/e2e.json": e2e})
    r = run(tgz)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "GPU: NVIDIA H100 80GB HBM3, 580.159.04" in out
    assert "test: 50 s (status so far 1)" in out
    assert "1 tests failed out of 243" in out and "FAILED GatedAddGpu.Bits" in out
    assert "1 failed, 120 passed, 2 skipped in 30.1s" in out and "FAILED tests/python/test_x.py::test_y" in out
    assert "vs bf16, M >= 4096" in out and "(no PDL 1.900)" in out and "target >= 2: MISSED" in out
    assert "target >= 1600: met" in out
    assert "4608x21504x3072 1500/1080" in out
    assert "lowest of the copy 0.810 (x 4096x3072), target 0.8: met" in out
    assert "dit: bf16_graph 24.00 ms, int8dit_graph 12.00 ms, int8dit FAILED; speedups int8dit_graph/bf16_graph 2.00x" in out
    assert "qk_norm_rope 4608x3072: 21.5 us, 0.910 of a same-size copy, 18.2x eager torch" in out
    assert "quantize_rows 4608x3072" not in out  # (the summary's kernels are in its lowest-fraction line)
    assert "int8dit_prep_graph/bf16_prep_graph 1.60x, bf16_prep_graph/bf16_graph 1.25x" in out


def test_a_folder_works_as_the_archive_does_and_a_missing_source_is_refused(tmp_path):
    (tmp_path / "quant").mkdir()
    (tmp_path / "quant" / "quant.json").write_text(json.dumps({"copy_bandwidth_gbps": 4200.0, "summary": {}}))
    r = run(tmp_path)
    assert r.returncode == 0 and "copy bandwidth 4200 GB/s" in r.stdout
    r = run(tmp_path / "nope.tgz")
    assert r.returncode == 2 and "does not exist" in r.stderr
