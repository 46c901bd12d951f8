"""int8dit.bench.qk_norm_across_heads without a GPU: its help, and the message that says a GPU is needed."""
import pytest

from helpers import help_text, torch_or_skip

torch = torch_or_skip()

from int8dit.bench import qk_norm_across_heads  # noqa: E402


def test_help_says_what_is_timed():
    out = help_text(qk_norm_across_heads.main)
    assert "PyTorch's RMSNorm over" in out and "--out" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_without_a_gpu_it_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no CUDA GPU is visible"):
        qk_norm_across_heads.run(str(tmp_path))
