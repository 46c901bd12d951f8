#!/usr/bin/env python3
"""Write the Hopper W8A8 GEMM instantiation files: one explicit instantiation per file
(src/gemm/sm90/inst/<name>.cu) and the kernel list (kernel_list.inc) that the kernel table includes.

A file is rewritten only when its content changes (so the build recompiles only what changed), and
instantiation files of configurations no longer listed are removed. Run after editing CONFIGS:

    python3 src/gemm/sm90/generate_instances.py

Each file but the stream-K ones defines CUTLASS_ENABLE_GDC_FOR_SM90 before any CUTLASS header: the
kernel then waits for the previous grid (griddepcontrol.wait) before its first global access, which
is what lets run() launch it programmatically (PDL). NOTE: CUTLASS 4.2's stream-K scheduler does not
compile with it (is_last_tile, a const member function, binds a member to a non-const reference), so
the stream-K configurations are built without it and launch in plain stream order.

NOTE: every sm_90a configuration costs about a minute of nvcc time and CI builds all of them on two
cores: bf16 (the DiT output type) gets the full set, the other outputs one configuration each.
"""
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
INST = HERE / "inst"

ELEMENT = {"bf16": "cutlass::bfloat16_t", "fp16": "cutlass::half_t", "fp32": "float", "int32": "int32_t"}
DTYPE = {"bf16": "DType::kBF16", "fp16": "DType::kFP16", "fp32": "DType::kFP32", "int32": "DType::kInt32"}
SCHEDULE = {"coop": "Schedule::kCooperative", "pingpong": "Schedule::kPingpong"}


@dataclass(frozen=True)
class Config:
    out: str
    tile: tuple  # (M, N, K)
    cluster: tuple  # (M, N)
    schedule: str  # coop | pingpong
    streamk: bool = False

    @property
    def name(self):
        m, n, k = self.tile
        cm, cn = self.cluster
        return f"sm90_{self.out}_{m}x{n}x{k}_{cm}x{cn}_{self.schedule}" + ("_streamk" if self.streamk else "")

    @property
    def cpp_type(self):
        m, n, k = self.tile
        cm, cn = self.cluster
        scheduling = "TileScheduling::kStreamK" if self.streamk else "TileScheduling::kPersistent"
        return (f"GemmConfig<{ELEMENT[self.out]}, {m}, {n}, {k}, {cm}, {cn}, {SCHEDULE[self.schedule]}, "
                f"{scheduling}>")


# Why each exists (src/gemm/sm90/heuristic.cu picks among them):
CONFIGS = [
    # Large M and N: the biggest tile that keeps 4 pipeline stages; the 2x1 cluster multicasts B.
    Config("bf16", (128, 256, 128), (2, 1), "coop"),
    # Same tile, stream-K: few tiles per SM (M = 512, N = 3072) or a ragged last wave, and large K.
    Config("bf16", (128, 256, 128), (2, 1), "coop", streamk=True),
    # N = 1152 / 3072 / 4608 are multiples of 192: no half-empty tile column (DiT-XL/2, Flux proj).
    Config("bf16", (128, 192, 128), (2, 1), "coop"),
    # Medium problems: twice the tiles of 128x256, for wave quantization.
    Config("bf16", (128, 128, 128), (2, 1), "coop"),
    # Small M with large K: stream-K over 128x128 tiles fills the GPU when there are few tiles.
    Config("bf16", (128, 128, 128), (1, 1), "coop", streamk=True),
    # Ping-pong on a 128x128 tile: one warp group's epilogue overlaps the other's mainloop, which
    # pays off when K is short (DiT-XL/2 K = 1152: 9 k-iterations per tile).
    Config("bf16", (128, 128, 128), (2, 1), "pingpong"),
    # N = 1152 (PixArt, DiT-XL/2) is 8 tiles of 144: at M = 4096 that is 256 tiles, 1.94 waves on 132
    # SMs, where 128x128 makes 288 (2.18: a third wave 18% full). wgmma N = 144 is one of CUTLASS's
    # extended shapes (w8a8_gemm_sm90.cuh enables them).
    Config("bf16", (128, 144, 128), (2, 1), "pingpong"),
    # M <= 64 rows per tile: ping-pong overlaps one tile's epilogue with the next's mainloop.
    Config("bf16", (64, 128, 128), (1, 1), "pingpong"),
    Config("bf16", (64, 256, 128), (1, 1), "pingpong"),
    # 64-row tiles whose N fills one wave of 132 SMs at DiT text/caption shapes (M = 300-512), where
    # 64x128 leaves SMs idle or spills into a second wave (cuBLASLt's FP8 kernels pick such tiles there):
    #   64x192: M = 512, N = 3072 -> 8 x 16 = 128 tiles (64x128: 192, 1.45 waves; 64x256: 96)
    #   64x48:  M = 300, N = 1152 -> 5 x 24 = 120 tiles (64x128: 45)
    # wgmma N = 48 is one of CUTLASS's extended shapes (w8a8_gemm_sm90.cuh enables them). A 64x80 tile
    # (M = 333, N = 1536: 120 tiles) was timed too and dropped: no faster than 64x128 at K = 1536, 14%
    # slower at K = 6144 (bench/results/h200/gemm_narrow_trial.md). The 64-row tiles with a 2x1 cluster
    # (B multicast to two adjacent M tiles, half of B's L2 reads) were timed too and dropped: as fast
    # at best, up to 8% slower at M = 300-512 (gemm_cluster64_trial*.md): those GEMMs are not bound by
    # L2 bandwidth, and the cluster couples each pair of CTAs to the slower one.
    Config("bf16", (64, 192, 128), (1, 1), "pingpong"),
    Config("bf16", (64, 48, 128), (1, 1), "pingpong"),
    # Other outputs: one general configuration each.
    Config("fp16", (128, 256, 128), (2, 1), "coop"),
    Config("fp32", (128, 128, 128), (2, 1), "coop"),
    Config("int32", (128, 128, 128), (2, 1), "coop"),
]

HEADER = "// Generated by src/gemm/sm90/generate_instances.py: edit CONFIGS there, not this file.\n"


GRID_DEPENDENCY_CONTROL = ("// Programmatic dependent launch: the kernel waits for the previous grid (see the generator).\n"
                           "#define CUTLASS_ENABLE_GDC_FOR_SM90 1\n")


def instance_source(c):
    return (HEADER + ("" if c.streamk else GRID_DEPENDENCY_CONTROL) + '#include "gemm/sm90/w8a8_gemm_sm90.cuh"\n\n'
            "namespace int8dit::detail::sm90 {\n\n"
            f"template struct W8A8GemmSm90<{c.cpp_type}>;\n\n"
            f"GemmKernel {c.name}() {{\n"
            f'  return make_gemm_kernel<{c.cpp_type}>("{c.name}", {DTYPE[c.out]});\n'
            "}\n\n"
            "}  // namespace int8dit::detail::sm90\n")


def kernel_list():
    lines = [HEADER, "// INT8DIT_SM90_KERNEL(function name = configuration name), in table order.\n"]
    lines += [f"INT8DIT_SM90_KERNEL({c.name})\n" for c in CONFIGS]
    return "".join(lines)


def write_if_changed(path, text):
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def main():
    INST.mkdir(exist_ok=True)
    names = [c.name for c in CONFIGS]
    assert len(set(names)) == len(names), "duplicate configuration names"
    changed = [c.name for c in CONFIGS if write_if_changed(INST / f"{c.name}.cu", instance_source(c))]
    if write_if_changed(HERE / "kernel_list.inc", kernel_list()):
        changed.append("kernel_list.inc")
    stale = [p for p in INST.glob("*.cu") if p.stem not in names]
    for p in stale:
        p.unlink()
    print(f"{len(CONFIGS)} configurations; rewrote {len(changed)} file(s); removed {len(stale)} stale file(s)")


if __name__ == "__main__":
    main()
