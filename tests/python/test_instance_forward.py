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
