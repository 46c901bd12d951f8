"""bench/host: the PyTorch layer's host-time benchmark runs on a CPU-only machine (its C++ entry points
stubbed), every path it times takes the path it names, and compare.py tabulates before/after rounds."""
import json
import os
import subprocess
import sys

from helpers import torch_or_skip

torch_or_skip()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_benchmark(tmp_path, name):
    out = tmp_path / f"{name}.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, os.path.join(ROOT, "bench/host/python_overhead.py"), "--calls", "50",
                    "--json", str(out)], check=True, env=env, capture_output=True, text=True)
    return out


def test_the_benchmark_times_every_path_and_records_its_machine(tmp_path):
    doc = json.loads(run_benchmark(tmp_path, "run").read_text())
    assert set(doc["us_per_call"]) == {"linear", "linear_3d", "produced_hit", "gelu_mlp", "siblings", "modulated_norm",
                                      "concat_gelu", "mlp_half", "compiled_layer", "compiled_siblings", "compiled_gelu_mlp", "torch_empty",
                                      "swiglu_mlp", "swiglu_mlp_unfused"}
    assert all(us > 0 for us in doc["us_per_call"].values())
    assert doc["machine"]["cores"] >= 1 and doc["commit"]


def test_compare_writes_the_median_of_the_rounds(tmp_path):
    def round_file(name, us):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"us_per_call": {"linear": us}, "commit": name[:1], "date": "d", "unit": "us",
                                    "machine": {"cpu": "c", "cores": 2, "python": "3", "torch": "2"}}))
        return str(path)

    before = [round_file(f"b{i}", us) for i, us in enumerate([10.0, 30.0, 20.0])]
    after = [round_file(f"a{i}", us) for i, us in enumerate([5.0, 4.0, 6.0])]
    out = str(tmp_path / "table")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench/host/compare.py"), "--before", *before, "--after",
                    *after, "--out", out], check=True)
    assert json.loads(open(out + ".json").read())["median"]["linear"] == {"before": 20.0, "after": 5.0}
    assert "| Linear: quantizes its own input, then the GEMM | 20.00 | 5.00 | 4.00x |" in open(out + ".md").read()
