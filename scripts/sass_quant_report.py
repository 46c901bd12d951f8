#!/usr/bin/env python3
"""What the compiler made of the activation-quantization row kernels, read from a build's objects.

For every row kernel (row_quantize_registers, row_quantize_bulk_ring, row_quantize_streaming) in the
sm_90a SASS of src/quant/*.cu.o: the registers a thread takes, its stack and local memory (spills),
its instruction count, how many of its 8-byte stores (the int8 rows) are evict-first, and the
instruction count of its row loop (from the loop's back edge to the
instruction it jumps to; static, over every path: the cold ones, the IEEE divisions of an
out-of-range divisor or the clamped int8 step, are in it too, so the common path is a part of it:
930 of LayerNorm's 2268 at 64 x 6). These kernels are latency-bound at low occupancy with a heavy
instruction stream (docs/quantization_history.md: ~20 instructions a row element where the arithmetic needs
~11), so the loop's length and the registers are what a change to them moves first: this reads both
in seconds on a machine without a GPU, before any device time is spent.

    python3 scripts/sass_quant_report.py [BUILD_DIR] [--filter REGEX]

Needs cuobjdump on PATH (the CUDA toolkit's, or the PyPI package nvidia-cuda-cuobjdump).
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys

INSTRUCTION = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
BRANCH = re.compile(r"\bBRA\s+(0x[0-9a-f]+)")
FUNCTION = re.compile(r"^\s*Function : (\S+)")
RESOURCES = re.compile(r"Function (\S+):\s*\n\s*(REG:\d+ STACK:\d+ SHARED:\d+ LOCAL:\d+)")


def split_functions(sass_text):
    """{mangled name: [(address, instruction text), ...]} from `cuobjdump -sass` output."""
    functions, name = {}, None
    for line in sass_text.splitlines():
        m = FUNCTION.match(line)
        if m:
            name = m.group(1)
            functions[name] = []
            continue
        m = INSTRUCTION.match(line)
        if m and name is not None:
            functions[name].append((int(m.group(1), 16), m.group(2)))
    return functions


def loop_length(instructions):
    """Instructions from the target of the last backward branch to that branch, inclusive: the
    kernel's outermost row loop (0 where the kernel has no loop)."""
    longest = 0
    for address, text in instructions:
        m = BRANCH.search(text)
        if m and int(m.group(1), 16) < address:
            target = int(m.group(1), 16)
            longest = max(longest, sum(1 for a, _ in instructions if target <= a <= address))
    return longest


def int8_stores(instructions):
    """(evict-first, all) of the kernel's 8-byte global stores, the int8 rows' (8 values a thread a
    vector; the bf16 outputs are 16-byte stores). The fast path's rows are stored evict-first since
    stop 59 (row_io.cuh store8_int8_fast), the clamped path's plainly (store8_int8, a rare row): in
    today's kernels half of each kernel's (the streaming kernel has none), and a change that loses the
    hint shows as 0/N."""
    eight_byte = [text for _, text in instructions if re.search(r"\bSTG\.\S*\b64\b", text)]
    return sum(1 for text in eight_byte if ".EF." in text), len(eight_byte)


def resources(res_text):
    """{mangled name: {"REG": n, "STACK": n, "SHARED": n, "LOCAL": n}} from `cuobjdump -res-usage`."""
    out = {}
    for name, fields in RESOURCES.findall(res_text):
        out[name] = {k: int(v) for k, v in (f.split(":") for f in fields.split())}
    return out


def readable(name):
    """A short form of a mangled row-kernel name: kernel<type, op, vectors, flags...>."""
    try:
        text = subprocess.run(["c++filt", name], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return name
    text = text.replace("int8dit::quant::", "").replace("void ", "").replace("__nv_bfloat16", "bf16")
    return re.sub(r"\(.*\)$", "", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default="build", help="the build directory (default: build)")
    parser.add_argument("--filter", default="", help="only kernels whose readable name matches this regex")
    args = parser.parse_args()
    if shutil.which("cuobjdump") is None:
        sys.exit("sass_quant_report: cuobjdump is not on PATH (CUDA toolkit, or pip install nvidia-cuda-cuobjdump)")
    objects = sorted(pathlib.Path(args.build).glob("**/quant/*.cu.o"))
    if not objects:
        sys.exit(f"sass_quant_report: no quantization objects under {args.build}/ (build the library first)")
    print(f"{'kernel':100s} {'regs':>4s} {'stack':>5s} {'local':>5s} {'instr':>6s} {'loop':>5s} {'st8 ef/all':>10s}")
    for obj in objects:
        sass = subprocess.run(["cuobjdump", "-sass", "-arch", "sm_90a", str(obj)], capture_output=True, text=True)
        res = subprocess.run(["cuobjdump", "-res-usage", "-arch", "sm_90a", str(obj)], capture_output=True, text=True)
        usage = resources(res.stdout)
        for name, instructions in split_functions(sass.stdout).items():
            if "row_quantize" not in name:
                continue
            short = readable(name)
            if args.filter and not re.search(args.filter, short):
                continue
            u = usage.get(name, {})
            ef, stores = int8_stores(instructions)
            print(f"{short[:100]:100s} {u.get('REG', '?'):>4} {u.get('STACK', '?'):>5} {u.get('LOCAL', '?'):>5} "
                  f"{len(instructions):>6d} {loop_length(instructions):>5d} {f'{ef}/{stores}':>10s}")


if __name__ == "__main__":
    main()
