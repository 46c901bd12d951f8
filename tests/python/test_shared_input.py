"""int8dit.torch.shared_input: sibling layers quantize a common input once (recording it in the
producers' table, int8dit.torch.produced), with the same results, never reusing a stale or freed
input's quantization. CPU tensors (the C++ reference). Skips without PyTorch."""
import copy
import gc
import pickle

from helpers import torch_or_skip

torch = torch_or_skip()

from torch import nn  # noqa: E402

from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.produced import PRODUCED  # noqa: E402


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
    PRODUCED.clear()
    base = Attention()
    shared, plain = copy.deepcopy(base), copy.deepcopy(base)
    r = quantize_(shared, exclude=(), min_features=0)
    quantize_(plain, exclude=(), min_features=0, share_inputs=False)
    return shared, plain, r


def test_any_layer_reads_a_recorded_quantization_of_its_input():
    # The table is one for the process: a layer outside the group (or in another block) that reads a
    # tensor a sibling quantized runs only its GEMM too, with the same bits.
    shared, plain, _ = models()
    x = torch.randn(4, 64)
    with torch.no_grad():
        shared.to_q(x)
        hits = PRODUCED.hits
        got = plain.to_v(x)
    assert PRODUCED.hits - hits == 1
    assert torch.equal(got, plain.to_v(x.clone()))


def test_siblings_quantize_a_common_input_once_and_give_the_same_bits():
    shared, plain, report = models()
    assert report.shared_input_groups == 1  # to_q, to_k, to_v, to_out (64 in) share; add_k_proj alone
    assert shared.to_q.shares_input and shared.to_out.shares_input and not shared.add_k_proj.shares_input
    assert not plain.to_q.shares_input
    x, c = torch.randn(5, 64), torch.randn(5, 48)
    hits = PRODUCED.hits
    with torch.no_grad():
        got = shared(x, c)
    assert PRODUCED.hits - hits == 2  # k and v reuse q's quantization; to_out's input is new
    with torch.no_grad():
        want = plain(x, c)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_an_input_written_in_place_is_quantized_again():
    shared, plain, _ = models()
    x = torch.randn(3, 64)
    with torch.no_grad():
        want_a, want_b = plain.to_q(x), plain.to_k(2 * x)
        hits = PRODUCED.hits
        a = shared.to_q(x)
        x.mul_(2)  # same object, new version
        b = shared.to_k(x)
    assert PRODUCED.hits == hits
    assert torch.equal(a, want_a) and torch.equal(b, want_b)


def test_the_table_lets_go_of_a_freed_input():
    shared, _, _ = models()
    x = torch.randn(3, 64)
    with torch.no_grad():
        shared.to_q(x)
    assert len(PRODUCED) == 1
    del x
    gc.collect()
    assert len(PRODUCED) == 0


def test_inputs_that_need_gradients_take_the_usual_path():
    shared, _, _ = models()
    x = torch.randn(3, 64, requires_grad=True)
    hits = PRODUCED.hits
    y = shared.to_q(x) + shared.to_k(x)
    y.sum().backward()
    assert x.grad is not None
    assert PRODUCED.hits == hits and len(PRODUCED) == 0


def test_inference_mode_tensors_take_the_usual_path():
    shared, plain, _ = models()
    hits = PRODUCED.hits
    with torch.inference_mode():
        x = torch.randn(3, 64)
        assert torch.equal(shared.to_q(x), plain.to_q(x))
        shared.to_k(x)
    assert PRODUCED.hits == hits and len(PRODUCED) == 0


def test_copies_keep_the_grouping():
    shared, plain, _ = models()
    for clone in (copy.deepcopy(shared), pickle.loads(pickle.dumps(shared))):
        assert clone.to_q.shares_input and clone.to_k.shares_input and not clone.add_k_proj.shares_input
        x, c = torch.randn(2, 64), torch.randn(2, 48)
        hits = PRODUCED.hits
        with torch.no_grad():
            got = clone(x, c)
        assert PRODUCED.hits - hits == 2
        with torch.no_grad():
            assert torch.equal(got[0], plain(x, c)[0])


def test_the_text_streams_output_projection_keeps_its_own_input():
    # diffusers' joint attention: to_add_out projects the text stream's attention output, which no sibling
    # reads, so it is left out of the group (recording its rows would be host time for nobody).
    joint = nn.Module()
    joint.to_q, joint.to_k, joint.add_q_proj, joint.to_add_out = (nn.Linear(64, 64) for _ in range(4))
    quantize_(joint, exclude=(), min_features=0)
    assert joint.to_q.shares_input and joint.add_q_proj.shares_input and not joint.to_add_out.shares_input
