"""scripts/sass_quant_report.py's readers, on SASS text of the shape cuobjdump prints (no GPU, no
cuobjdump needed)."""
import importlib.util
import pathlib

_PATH = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "sass_quant_report.py"
_spec = importlib.util.spec_from_file_location("sass_quant_report", _PATH)
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

SASS = """
	code for sm_90a
		Function : _Z3fooPf
	.headerflags	@"EF_CUDA_TEXMODE_UNIFIED EF_CUDA_64BIT_ADDRESS EF_CUDA_ACCELERATORS EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                        /* 0x00000a00ff017b82 */
                                                                                 /* 0x000fe40000000800 */
        /*0010*/                   MOV R2, RZ ;                                  /* 0x000000ff00027202 */
                                                                                 /* 0x000fe20000000f00 */
        /*0020*/                   FADD R2, R2, 1 ;                              /* 0x3f80000002027421 */
                                                                                 /* 0x000fe20000000000 */
        /*0030*/              @P0 BRA 0x50 ;                                     /* 0x0000000000080947 */
                                                                                 /* 0x000fea0003800000 */
        /*0040*/                   FADD R2, R2, 2 ;                              /* 0x4000000002027421 */
                                                                                 /* 0x000fe20000000000 */
        /*0050*/              @!P1 BRA 0x20 ;                                    /* 0xfffffffc00309947 */
                                                                                 /* 0x000fea000383ffff */
        /*0060*/                   EXIT ;                                        /* 0x000000000000794d */
                                                                                 /* 0x000fea0003800000 */
		Function : _Z3barv
        /*0000*/                   EXIT ;                                        /* 0x000000000000794d */
                                                                                 /* 0x000fea0003800000 */
"""

RES = """
Resource usage:
 Function _Z3fooPf:
  REG:40 STACK:16 SHARED:1024 LOCAL:0 CONSTANT[0]:560 TEXTURE:0 SURFACE:0 SAMPLER:0
 Function _Z3barv:
  REG:8 STACK:0 SHARED:0 LOCAL:0 CONSTANT[0]:352 TEXTURE:0 SURFACE:0 SAMPLER:0
"""


def test_functions_are_split_with_every_instruction_and_no_encoding_line():
    functions = report.split_functions(SASS)
    assert list(functions) == ["_Z3fooPf", "_Z3barv"]
    assert [a for a, _ in functions["_Z3fooPf"]] == [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60]
    assert functions["_Z3fooPf"][3][1] == "@P0 BRA 0x50"
    assert functions["_Z3barv"] == [(0, "EXIT")]


def test_the_loop_runs_from_the_back_edge_target_to_the_back_edge():
    functions = report.split_functions(SASS)
    assert report.loop_length(functions["_Z3fooPf"]) == 4  # 0x20..0x50; the forward branch is not a loop
    assert report.loop_length(functions["_Z3barv"]) == 0


def test_resources_per_function():
    usage = report.resources(RES)
    assert usage["_Z3fooPf"] == {"REG": 40, "STACK": 16, "SHARED": 1024, "LOCAL": 0}
    assert usage["_Z3barv"]["REG"] == 8


def test_int8_stores_count_the_eight_byte_stores_and_their_evict_first_hints():
    instructions = [
        (0x00, "STG.E.EF.64 desc[UR8][R20.64], R24"),
        (0x10, "STG.E.64 desc[UR8][R20.64+0x200], R98"),
        (0x20, "@P1 STG.E.EF.64 desc[UR8][R20.64+0x400], R60"),
        (0x30, "STG.E.128 desc[UR8][R24.64], R20"),  # a bf16 output's 16 bytes: not an int8 store
        (0x40, "STG.E desc[UR8][R2.64], R5"),  # a row's scale
        (0x50, "LDG.E.EF.128 R48, desc[UR8][R8.64]"),
    ]
    assert report.int8_stores(instructions) == (2, 3)
    assert report.int8_stores([(0, "EXIT")]) == (0, 0)
