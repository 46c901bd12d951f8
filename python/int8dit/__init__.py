"""int8dit: native INT8 (W8A8) inference for diffusion transformers.

The C++ core (``int8dit._C``) works on any DLPack array (numpy, torch, cupy, jax): host arrays run the
CPU reference, CUDA arrays the GPU kernels. ``int8dit.torch`` (imported on first use, needs PyTorch)
replaces the nn.Linear layers of a model with real INT8 compute.
"""
from __future__ import annotations

import pkgutil

# A build tree puts the compiled module in <build>/python/int8dit/; extend_path joins that folder to
# this package when it is on sys.path, so the sources run without installing.
__path__ = pkgutil.extend_path(__path__, __name__)


def _load_torch_first() -> None:
    # NOTE: on the GPU machine, `import int8dit` (whose library loads the CUDA toolkit's libcudart)
    # followed by `import torch` (which brings its own CUDA runtime) crashed inside torch's import;
    # importing torch first never did. So when PyTorch is installed, it is loaded before the library.
    # Environments without PyTorch (numpy-only use) skip this.
    import importlib.util
    import sys

    if "torch" not in sys.modules and importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401


_load_torch_first()

from . import _C  # noqa: E402
from ._C import CudaError, KernelNotImplementedError, NotSupportedError  # noqa: E402
from .arrays import gemm_w8a8, quantize_rows  # noqa: E402

__version__ = _C.version()


def built_architectures() -> str:
    """The CUDA architectures this build holds kernels for, e.g. '90a'."""
    return _C.built_architectures()


def device_info() -> dict:
    """The current CUDA device and the kernel family serving it; NotSupportedError without a GPU."""
    return _C.device_info()


_TORCH_NAMES = {
    "Linear": "int8dit.torch.linear",
    "quantize_": "int8dit.torch.quantize",
    "DIT_DEFAULT_EXCLUDE": "int8dit.torch.quantize",
    "calibrate": "int8dit.calibration",
    "save_quantized": "int8dit.serialization",
    "load_quantized": "int8dit.serialization",
    "load_quantized_model": "int8dit.serialization",
    "use_cuda_graphs": "int8dit.torch.cuda_graphs",
    "stop_cuda_graphs": "int8dit.torch.cuda_graphs",
    "fuse_attention_prep": "int8dit.torch.attention_prep",
    "unfuse_attention_prep": "int8dit.torch.attention_prep",
    "fuse_lora": "int8dit.torch.lora",
    "unfuse_lora": "int8dit.torch.lora",
}


def __getattr__(name: str):
    # The PyTorch layer is imported on first use so that numpy-only users never import torch.
    if name in _TORCH_NAMES:
        import importlib

        value = getattr(importlib.import_module(_TORCH_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'int8dit' has no attribute {name!r}")


__all__ = [
    "CudaError",
    "KernelNotImplementedError",
    "NotSupportedError",
    "built_architectures",
    "device_info",
    "gemm_w8a8",
    "quantize_rows",
    *_TORCH_NAMES,
]
