"""README's "Build options and environment variables" table names every setting the project reads.

DESIGN.md asks for every environment variable and build option in one table. The settings are
collected from the code itself: environment variables read by C++ (getenv) or Python (os.environ),
the ${INT8DIT_...} that the top-level scripts read, and the CMake cache options. A setting added
without its row fails here, naming it.
"""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]

READS = [
    # (files, pattern whose group 1 is the setting's name)
    (["src", "include", "tools", "tests/cpp", "bench"], re.compile(r'getenv\("(INT8DIT_[A-Z0-9_]+)"\)')),
    (["python"], re.compile(r'environ(?:\.get\(|\[)"(INT8DIT_[A-Z0-9_]+)"')),
    (["scripts"], re.compile(r"\$\{(INT8DIT_[A-Z0-9_]+):-")),
    (["CMakeLists.txt", "cmake", "src"], re.compile(r"option\((INT8DIT_[A-Z0-9_]+)\s")),
    (["CMakeLists.txt", "cmake", "src"], re.compile(r'set\((INT8DIT_[A-Z0-9_]+)\s+"[^"]*"\s+CACHE\s')),
]
SUFFIXES = {".cpp", ".cu", ".h", ".cuh", ".py", ".sh", ".cmake", ".txt"}


def files_under(rel: str):
    p = ROOT / rel
    if p.is_file():
        yield p
        return
    for f in sorted(p.rglob("*")):
        if f.is_file() and f.suffix in SUFFIXES and "results" not in f.parts and "__pycache__" not in f.parts:
            yield f


def settings_read_by_the_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for roots, pattern in READS:
        for rel in roots:
            for f in files_under(rel):
                for name in pattern.findall(f.read_text(errors="replace")):
                    found.setdefault(name, str(f.relative_to(ROOT)))
    return found


def settings_in_readme_table() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Build options and environment variables", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(INT8DIT_[A-Z0-9_]+)`", table, flags=re.M))


def test_the_collector_finds_the_settings_it_should():
    # Guards the patterns themselves: one known setting of each kind.
    found = settings_read_by_the_code()
    for name in ["INT8DIT_PDL", "INT8DIT_MINILM_DIR", "INT8DIT_NO_TORCH", "INT8DIT_BUILD_TESTS", "INT8DIT_CUDA_ARCHS"]:
        assert name in found, f"the collector no longer sees {name}: update READS"


def test_every_setting_has_a_row_in_the_readme_table():
    missing = {name: where for name, where in settings_read_by_the_code().items()
               if name not in settings_in_readme_table()}
    assert not missing, ("README.md's 'Build options and environment variables' table lacks "
                         + ", ".join(f"{n} (read in {w})" for n, w in sorted(missing.items()))
                         + ": add a row saying its kind, default and what it does")
