"""int8dit.torch.instance_forward: where the module rewrites put an instance's forward, with and without
an accelerate-style hook around it. Skips without PyTorch."""
from helpers import torch_or_skip

torch = torch_or_skip()

from torch import nn  # noqa: E402

from int8dit.torch.instance_forward import has_forward, set_forward  # noqa: E402


def doubled(self, x):
    return 2 * type(self).forward(self, x)


def test_a_plain_module_gets_the_forward_on_the_instance():
    layer = nn.Identity()
    assert not has_forward(layer, doubled)
    set_forward(layer, doubled)
    assert has_forward(layer, doubled) and "forward" in vars(layer)
    assert torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0))
    assert not has_forward(nn.Identity(), doubled)  # (the class is untouched)


def test_a_hooked_module_gets_it_under_the_hook_which_keeps_running():
    # accelerate's add_hook_to_module: the forward found is kept as _old_forward, and the wrapper that
    # replaces it (moving weights before, offloading after) calls it
    layer = nn.Identity()
    calls = []
    layer._hf_hook = object()
    layer._old_forward = layer.forward
    layer.forward = lambda *args, **kwargs: calls.append(1) or layer._old_forward(*args, **kwargs)
    wrapper = layer.forward
    set_forward(layer, doubled)
    assert layer.forward is wrapper and has_forward(layer, doubled)
    assert torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0)) and calls == [1]


def diffusers_hooks_or_skip():
    import pytest

    return pytest.importorskip("diffusers.hooks", reason="diffusers is not installed (scripts/setup.sh pins it)")


def counting_hook(hooks, calls: list, wraps: bool):
    """A diffusers ModelHook that records each call: with pre_forward only, or (wraps) with its own
    new_forward calling the forward it wraps, as the caching hooks do."""

    class Counting(hooks.ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            calls.append("pre")
            return args, kwargs

    class Wrapping(hooks.ModelHook):
        def new_forward(self, module, *args, **kwargs):
            calls.append("new")
            return self.fn_ref.original_forward(*args, **kwargs)

    return Wrapping() if wraps else Counting()


def test_a_module_with_diffusers_hooks_gets_it_beneath_all_of_them():
    hooks = diffusers_hooks_or_skip()
    layer = nn.Identity()
    calls = []
    registry = hooks.HookRegistry.check_if_exists_or_initialize(layer)
    registry.register_hook(counting_hook(hooks, calls, wraps=True), "outer_cache")
    registry.register_hook(counting_hook(hooks, calls, wraps=False), "counter")
    chain = layer.forward
    set_forward(layer, doubled)
    assert layer.forward is chain and has_forward(layer, doubled)
    assert torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0)) and calls == ["pre", "new"]
    # removing the hooks leaves the rewritten forward, not the class's
    registry.remove_hook("counter", recurse=False)
    registry.remove_hook("outer_cache", recurse=False)
    assert has_forward(layer, doubled) and torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0))


def test_a_module_with_only_plain_diffusers_hooks_gets_it_in_the_first_ones_forward():
    hooks = diffusers_hooks_or_skip()
    layer = nn.Identity()
    calls = []
    hooks.HookRegistry.check_if_exists_or_initialize(layer).register_hook(counting_hook(hooks, calls, False), "a")
    set_forward(layer, doubled)
    assert torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0)) and calls == ["pre"]


def accelerate_style_hook(layer, calls: list) -> None:
    layer._hf_hook = object()
    layer._old_forward = layer.forward
    # (accelerate's wrapper looks _old_forward up at each call)
    layer.forward = lambda *args, **kwargs: calls.append("hf") or layer._old_forward(*args, **kwargs)


def test_accelerate_and_diffusers_hooks_in_either_order_all_keep_running():
    hooks = diffusers_hooks_or_skip()
    for accelerate_first in (True, False):
        layer = nn.Identity()
        calls = []
        if accelerate_first:
            accelerate_style_hook(layer, calls)
        hooks.HookRegistry.check_if_exists_or_initialize(layer).register_hook(counting_hook(hooks, calls, True), "c")
        if not accelerate_first:
            accelerate_style_hook(layer, calls)
        set_forward(layer, doubled)
        assert has_forward(layer, doubled)
        assert torch.equal(layer(torch.ones(2)), torch.full((2,), 2.0))
        assert sorted(calls) == ["hf", "new"], (accelerate_first, calls)
