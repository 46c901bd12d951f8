"""Benchmarks of int8dit in PyTorch: ``python -m int8dit.bench.e2e`` (diffusion transformers end to end)."""
