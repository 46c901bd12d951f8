"""Pieces of int8dit.bench.e2e that run without a GPU: the rows each linear layer sees in a forward
(the torchao baselines leave layers with <= 16 rows in bf16) and their line in e2e.md. Skips
without PyTorch."""
from helpers import torch_or_skip

torch = torch_or_skip()

from int8dit.bench.e2e import TORCHAO_MIN_ROWS, rows_per_call  # noqa: E402
from int8dit.bench.report import markdown  # noqa: E402


class AdaLNBlock(torch.nn.Module):
    """A DiT-like block: modulation from one embedding per batch element, an MLP over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.modulation = torch.nn.Linear(32, 64)
        self.mlp = torch.nn.Linear(32, 32)

    def forward(self, hidden, emb):
        shift = self.modulation(emb)[:, None, :32]
        return self.mlp(hidden + shift) + self.mlp(hidden)  # mlp called twice: the larger count is kept


def test_rows_per_call_counts_tokens_times_batch_per_layer():
    block = AdaLNBlock()
    inputs = {"hidden": torch.randn(2, 24, 32), "emb": torch.randn(2, 32)}
    rows = rows_per_call(torch, block, {"modulation": block.modulation, "mlp": block.mlp}, inputs)
    assert rows == {"modulation": 2, "mlp": 48}
    assert rows["modulation"] < TORCHAO_MIN_ROWS <= rows["mlp"]
    assert not block.modulation._forward_pre_hooks and not block.mlp._forward_pre_hooks  # hooks removed


def test_the_report_says_which_layers_the_torchao_paths_kept_in_bf16():
    doc = {"environment": {}, "summary": {}, "results": {"dit": {
        "model": "DiT", "shape": "512", "config_from": "x", "params": 1e9, "quantized_linears": 3,
        "quantized_params": 5e8, "kept_float": ["proj_out"], "torchao_kept_float": ["a", "b"],
        "paths": {"bf16": {"median_ms": 2.0}}}}}
    text = markdown(doc)
    assert "the torchao paths also keep 2 layers with <= 16 rows a call in bf16" in text
