"""scripts/ncu_stall_report.py on a source page of the shape `ncu --page source --csv` writes (no GPU,
no ncu needed)."""
import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "ncu_stall_report.py"
_spec = importlib.util.spec_from_file_location("ncu_stall_report", _PATH)
stalls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stalls)

HEADER = ('"Address","Source","Warp Stall Sampling (All Samples)","Warp Stall Sampling (Not-issued Samples)",'
          '"Instructions Executed","stall_barrier","stall_long_sb","stall_selected","stall_short_sb",'
          '"stall_barrier (Not Issued)","stall_long_sb (Not Issued)"')
PAGE = [
    '"Kernel Name","void k(float*)",',
    HEADER,
    '"0x7f0000a000","      LDG.E R2, [R4.64]","0","0","64","0","0","0","0","0","0"',
    '"0x7f0000a010","      FADD R2, R2, R3","6","5","64","0","5","1","0","0","5"',
    '"0x7f0000a020","      SHFL.BFLY PT, R3, R2, 0x1, 0x1f","1","0","64","0","0","1","0","0","0"',
    '"0x7f0000a030","      BAR.SYNC.DEFER_BLOCKING 0x0","3","3","-","3","0","0","0","3","0"',
]


def test_the_states_add_up_per_kernel_and_the_not_issued_columns_are_not_counted_twice():
    kernel, header, table = stalls.read_source_page(PAGE)
    assert kernel == "void k(float*)"
    totals, total, rows = stalls.summarize(header, table)
    assert total == 10
    assert totals == {"stall_barrier": 3, "stall_long_sb": 5, "stall_selected": 2, "stall_short_sb": 0}
    assert rows[3][3] == 0  # '-' executions read as none


def test_the_report_lists_states_by_share_and_the_busiest_instructions_first():
    text = stalls.report(*stalls.read_source_page(PAGE), top=2)
    states = [line.split()[0] for line in text.splitlines() if line.startswith("stall_")]
    assert states == ["stall_long_sb", "stall_barrier", "stall_selected"]  # zero-sample states left out
    listed = text.split("main states\n", 1)[1].splitlines()
    assert len(listed) == 2
    assert "FADD" in listed[0] and "long_sb 5" in listed[0]
    assert "BAR.SYNC" in listed[1]


def test_a_file_without_stall_samples_is_refused_with_how_to_write_one(tmp_path):
    with pytest.raises(ValueError, match="--page source --print-source sass --csv"):
        stalls.read_source_page(['"Address","Source","Instructions Executed"', '"0x0","EXIT","1"'])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert stalls.main([str(empty)]) == 2
