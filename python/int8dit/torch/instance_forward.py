"""Where int8dit's module rewrites put the forward they give an instance (blocks, flux_single, flux3,
capturable): the innermost forward of the module's hook chain, so that every hook around it keeps
running around the rewritten forward. Replacing the outer ``module.forward`` would drop them.

Two hook systems wrap ``module.forward`` in place:

- accelerate's ``add_hook_to_module`` (a pipeline's ``enable_model_cpu_offload`` /
  ``enable_sequential_cpu_offload``) keeps the forward it found as ``module._old_forward`` and calls it;
- diffusers' ``HookRegistry`` (``module._diffusers_hook``: first-block cache, FasterCache, layer skip,
  group offloading...) keeps it in the first registered hook's function reference
  (``fn_ref.original_forward`` where that hook has its own ``new_forward``, else ``fn_ref.forward``),
  which every later hook's chain ends in.

Either may wrap the other. The innermost slot is the one holding a method bound to the module itself
(the class's forward, or one set here); the wrappers around it are partials. A module with no hook
takes the forward as its ``forward`` attribute."""
from __future__ import annotations

import types
from typing import Callable, Optional, Tuple

from torch import nn


def _bound_to(value, module: nn.Module) -> bool:
    return isinstance(value, types.MethodType) and value.__self__ is module


def _diffusers_slot(module: nn.Module) -> Optional[Tuple[object, str]]:
    """(holder, attribute) of the innermost forward in diffusers' hook chain, or None without one."""
    registry = module.__dict__.get("_diffusers_hook")
    refs = getattr(registry, "_fn_refs", None)
    if not refs:
        return None
    first = refs[0]
    return first, "original_forward" if getattr(first, "original_forward", None) is not None else "forward"


def _slot(module: nn.Module) -> Tuple[object, str]:
    """(holder, attribute) where the module's innermost forward lives."""
    candidates = []
    if hasattr(module, "_hf_hook") and "_old_forward" in module.__dict__:
        candidates.append((module, "_old_forward"))
    diffusers = _diffusers_slot(module)
    if diffusers is not None:
        candidates.append(diffusers)
    for holder, name in candidates:
        if _bound_to(getattr(holder, name, None), module):
            return holder, name
    if candidates:
        # None holds a method of the module (a third wrapper in between): accelerate's slot first, as
        # before diffusers' hooks were looked for.
        return candidates[0]
    return module, "forward"


def has_forward(module: nn.Module, fn: Callable) -> bool:
    """Whether ``module`` already runs ``fn`` as its instance forward (under hooks or not)."""
    holder, name = _slot(module)
    current = holder.__dict__.get(name) if holder is module else getattr(holder, name, None)
    return isinstance(current, types.MethodType) and current.__func__ is fn


def set_forward(module: nn.Module, fn: Callable) -> None:
    """Give ``module`` the forward ``fn`` (called as a method), beneath whatever hooks wrap it."""
    holder, name = _slot(module)
    setattr(holder, name, types.MethodType(fn, module))


def hooks_around(module: nn.Module) -> list:
    """The names of the hooks wrapping ``module``'s forward: diffusers' (by their registry names, e.g.
    ``layerwise_casting``, ``group_offloading``, ``fbc_block_hook``) and ``accelerate`` for accelerate's.
    A rewrite that replaces such a module would drop them; one that sets its forward goes beneath them."""
    names = list(getattr(module.__dict__.get("_diffusers_hook"), "_hook_order", None) or ())
    if hasattr(module, "_hf_hook"):
        names.append("accelerate")
    return names
