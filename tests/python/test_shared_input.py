"""int8dit.torch.shared_input: sibling layers quantize a common input once, with the same results,
never reusing a stale or freed input's quantization. CPU tensors (the C++ reference). Skips without
PyTorch."""
import copy
import gc
import pickle

from helpers import torch_or_skip

torch = torch_or_skip()

from torch import nn  # noqa: E402

from int8dit.torch import quantize_  # noqa: E402


class Attention(nn.Module):
    """The diffusers pattern: q, k and v of one tensor, a projection of another."""

    def __init__(self, dim=64, ctx=48):
        super().__init__()
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.add_k_proj = nn.Linear(ctx, dim)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, c):
        q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        return self.to_out(q * k + v), self.add_k_proj(c)


def models():
    torch.manual_seed(0)
    base = Attention()
    shared, plain = copy.deepcopy(base), copy.deepcopy(base)
    r = quantize_(shared, exclude=(), min_features=0)
    quantize_(plain, exclude=(), min_features=0, share_inputs=False)
    return shared, plain, r


def test_siblings_quantize_a_common_input_once_and_give_the_same_bits():
    shared, plain, report = models()
    assert report.shared_input_groups == 1  # to_q, to_k, to_v, to_out (64 in) share; add_k_proj alone
    x, c = torch.randn(5, 64), torch.randn(5, 48)
    with torch.no_grad():
        got, want = shared(x, c), plain(x, c)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert shared.to_q.input_share is shared.to_v.input_share
    assert shared.to_q.input_share.hits == 2  # k and v reuse q's quantization; to_out's input is new
    assert plain.to_q.input_share is None


def test_an_input_written_in_place_is_quantized_again():
    shared, plain, _ = models()
    x = torch.randn(3, 64)
    with torch.no_grad():
        a = shared.to_q(x)
        x.mul_(2)  # same object, new version
        b = shared.to_k(x)
        assert torch.equal(a, plain.to_q(x / 2))
        assert torch.equal(b, plain.to_k(x))
    assert shared.to_q.input_share.hits == 0


def test_the_cache_lets_go_of_a_freed_input():
    shared, _, _ = models()
    share = shared.to_q.input_share
    x = torch.randn(3, 64)
    with torch.no_grad():
        shared.to_q(x)
    assert share._q is not None
    del x
    gc.collect()
    assert share._q is None and share._ref is None


def test_inputs_that_need_gradients_take_the_usual_path():
    shared, _, _ = models()
    x = torch.randn(3, 64, requires_grad=True)
    y = shared.to_q(x) + shared.to_k(x)
    y.sum().backward()
    assert x.grad is not None
    assert shared.to_q.input_share.hits == 0


def test_inference_mode_tensors_take_the_usual_path():
    shared, plain, _ = models()
    with torch.inference_mode():
        x = torch.randn(3, 64)
        assert torch.equal(shared.to_q(x), plain.to_q(x))
        shared.to_k(x)
    assert shared.to_q.input_share.hits == 0


def test_copies_keep_one_group_with_an_empty_cache_of_their_own():
    shared, _, _ = models()
    with torch.no_grad():
        shared.to_q(torch.randn(2, 64))
    for clone in (copy.deepcopy(shared), pickle.loads(pickle.dumps(shared))):
        assert clone.to_q.input_share is clone.to_k.input_share
        assert clone.to_q.input_share is not shared.to_q.input_share
        assert clone.to_q.input_share._q is None
