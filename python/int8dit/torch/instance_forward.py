"""Where int8dit's module rewrites put the forward they give an instance (blocks, flux_single, flux3,
capturable): ``module.forward``, or, where accelerate has hooked the module (a pipeline's
``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``), the ``_old_forward`` its wrapper
calls, so that the hook keeps running (moving the weights) around the rewritten forward. Replacing the
wrapper itself would drop the hook."""
from __future__ import annotations

import types
from typing import Callable

from torch import nn


def _slot(module: nn.Module) -> str:
    return "_old_forward" if hasattr(module, "_hf_hook") and "_old_forward" in module.__dict__ else "forward"


def has_forward(module: nn.Module, fn: Callable) -> bool:
    """Whether ``module`` already runs ``fn`` as its instance forward (under a hook or not)."""
    current = module.__dict__.get(_slot(module))
    return isinstance(current, types.MethodType) and current.__func__ is fn


def set_forward(module: nn.Module, fn: Callable) -> None:
    """Give ``module`` the forward ``fn`` (called as a method), under accelerate's hook where it has one."""
    setattr(module, _slot(module), types.MethodType(fn, module))
