"""int8dit.torch.capturable on the CPU: the diffusers modules that copy a host tensor to the GPU in every
forward, rewritten to make it on the device. Run on the meta device, a forward shows where each of its
ops' results lives: the stock Chroma makes host tensors, the rewritten one none, and on the CPU the two
give the same bits. The capture itself runs in test_torch_gpu.py. Skips without PyTorch or diffusers."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

import test_torch_more_diffusers_models as more  # noqa: E402
from int8dit.torch.capturable import make_capturable  # noqa: E402
from int8dit.torch.cuda_graphs import stop_cuda_graphs, use_cuda_graphs  # noqa: E402


class HostResults(TorchDispatchMode):
    """Records the ops whose results are on the host while it is active."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tree_leaves(out)):
            self.ops.add(str(func))
        return out


def small_chroma():
    cls_name, config, make_inputs = more.CASES["chroma"]
    torch.manual_seed(0)
    return getattr(diffusers, cls_name)(**config).to(torch.bfloat16).eval(), make_inputs()


@torch.no_grad()
def test_chroma_makes_its_guidance_input_on_the_device_once_rewritten():
    model, inputs = small_chroma()
    model = model.to("meta")
    meta_inputs = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    stock = HostResults()
    with stock:
        model(**meta_inputs)
    assert stock.ops  # the stock timestep embedding projects a host tensor (what a capture cannot copy)
    assert make_capturable(model) == 1 and make_capturable(model) == 0  # one module; a second call: nothing
    rewritten = HostResults()
    with rewritten:
        model(**meta_inputs)
    assert rewritten.ops == set()


@torch.no_grad()
def test_the_rewritten_chroma_gives_the_stock_bits():
    model, inputs = small_chroma()
    want = model(**inputs)[0]
    embed_want = model.time_text_embed(torch.tensor([0.25, 0.75], dtype=torch.bfloat16))
    assert make_capturable(model) == 1
    assert torch.equal(model(**inputs)[0], want)
    assert torch.equal(model.time_text_embed(torch.tensor([0.25, 0.75], dtype=torch.bfloat16)), embed_want)


def test_use_cuda_graphs_rewrites_them_and_leaves_them_after_stop():
    model, _ = small_chroma()
    use_cuda_graphs(model)
    assert "forward" in model.time_text_embed.__dict__ and make_capturable(model) == 0
    stop_cuda_graphs(model)
    assert "forward" in model.time_text_embed.__dict__


@torch.no_grad()
def test_cogview4_copies_its_rotary_tables_to_the_device_once_per_size_and_gives_the_stock_bits():
    cls_name, config, make_inputs = more.CASES["cogview4"]
    torch.manual_seed(0)
    model, inputs = getattr(diffusers, cls_name)(**config).to(torch.bfloat16).eval(), make_inputs()
    want = model(**inputs)[0]
    assert make_capturable(model) == 1 and make_capturable(model) == 0
    assert torch.equal(model(**inputs)[0], want)
    # on the meta device: the stock module makes its tables on the host every call; the rewritten one on
    # the first call of a size only, then hands back the device copies it kept
    latent = torch.empty(1, 16, 8, 8, device="meta")
    stock, first, again = HostResults(), HostResults(), HostResults()
    with stock:
        type(model.rope).forward(model.rope, latent)
    with first:
        tables = model.rope(latent)
    with again:
        assert model.rope(latent) is tables
    assert stock.ops and first.ops and again.ops == set()
    assert all(t.device.type == "meta" for t in tables)
    other = model.rope(torch.empty(1, 16, 16, 16, device="meta"))  # another size: its own tables
    assert other[0].shape[0] == 64 and tables[0].shape[0] == 16
