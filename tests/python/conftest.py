"""pytest setup for int8dit's Python tests.

Run from a CMake build with INT8DIT_BUILD_PYTHON=ON:
    PYTHONPATH=python:<build>/python python -m pytest tests/python
Tests that need PyTorch skip without it; tests that need a CUDA GPU skip without one.
"""
import pytest


def pytest_report_header(config):
    try:
        import int8dit
    except ImportError as e:  # the module was not built or PYTHONPATH misses it
        return f"int8dit: not importable ({e})"
    return f"int8dit {int8dit.__version__}, built for CUDA archs {int8dit.built_architectures()}"


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng()
