"""`int8dit bench --help` names the PyTorch-level benchmarks (tools/int8dit/cmd_bench.cpp): every module of
python/int8dit/bench with a command line (a main()) is named there, so a new one is not left out."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_benchmark_module_with_a_command_line_is_named_in_the_help():
    modules = sorted(p.stem for p in (ROOT / "python/int8dit/bench").glob("*.py")
                     if re.search(r"^def main\(", p.read_text(), re.MULTILINE))
    assert {"e2e", "attention_fp8"} <= set(modules)  # the glob finds them
    help_text = (ROOT / "tools/int8dit/cmd_bench.cpp").read_text()
    missing = [m for m in modules if f"python3 -m int8dit.bench.{m}`" not in help_text]
    assert not missing, f"not named by `int8dit bench --help` (tools/int8dit/cmd_bench.cpp): {missing}"
