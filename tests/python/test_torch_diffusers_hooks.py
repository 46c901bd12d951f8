"""diffusers' module hooks (HookRegistry: first-block cache, FasterCache, layer skip...) installed on a
model before quantize_: the rewritten block forwards go beneath them, so the hooks keep running.
Skips without PyTorch or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")
hooks = pytest.importorskip("diffusers.hooks", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.produced import PRODUCED  # noqa: E402
from test_torch_diffusers_fusions import BF16, FLUX, cos, flux_inputs  # noqa: E402

# q, k, v of both streams (their fc1s read the MLP norms' rows directly); q, k, v and the MLP's linear
DOUBLE_BLOCK_HITS, SINGLE_BLOCK_HITS = 3 + 3, 3 + 1


def twice_under_the_cache(model, inputs):
    """The model called twice on the same inputs in one cache context: (first output, the fused rows its
    blocks read, second output, the rows read the second time)."""
    with model.cache_context("cond"):
        hits = PRODUCED.hits
        first = model(**inputs)[0]
        every_block = PRODUCED.hits - hits
        hits = PRODUCED.hits
        again = model(**inputs)[0]
        return first, every_block, again, PRODUCED.hits - hits


@pytest.mark.parametrize("cache_first", [True, False], ids=["cache_then_quantize", "quantize_then_cache"])
@torch.no_grad()
def test_first_block_cache_keeps_skipping_the_fused_blocks_in_either_order(cache_first):
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**dict(FLUX, num_layers=2)).to(BF16).eval()
    uncached = copy.deepcopy(model)
    quantize_(uncached, min_features=64)
    cache = hooks.FirstBlockCacheConfig(threshold=0.05)
    if cache_first:
        model.enable_cache(cache)  # (the pipeline-facing switch)
    report = quantize_(model, min_features=64)
    if not cache_first:
        model.enable_cache(cache)
    assert report.fused_blocks == 2 and all(hasattr(b, "_diffusers_hook") for b in model.transformer_blocks)
    inputs = flux_inputs()
    want = uncached(**inputs)[0]
    first, every_block, again, head_only = twice_under_the_cache(model, inputs)
    # the first call runs every block through its fused forward (the same bits as without the cache),
    # the second only the head block: the rest is the cached residual
    assert torch.equal(first, want)
    assert every_block == 2 * DOUBLE_BLOCK_HITS + 2 * SINGLE_BLOCK_HITS
    assert head_only == DOUBLE_BLOCK_HITS
    assert cos(again, first) > 0.9999


@torch.no_grad()
def test_removing_the_hooks_after_quantize_leaves_the_fused_forwards():
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(BF16).eval()
    uncached = copy.deepcopy(model)
    quantize_(uncached, min_features=64)
    model.enable_cache(hooks.FirstBlockCacheConfig(threshold=0.05))
    quantize_(model, min_features=64)
    model.disable_cache()  # removes the hooks: each block's forward goes back to the one beneath them
    inputs = flux_inputs()
    hits = PRODUCED.hits
    assert torch.equal(model(**inputs)[0], uncached(**inputs)[0])
    assert PRODUCED.hits - hits == 2 * (DOUBLE_BLOCK_HITS + 2 * SINGLE_BLOCK_HITS)  # (both models' calls)


@torch.no_grad()
def test_layers_hooked_before_quantize_stay_float_with_the_reason_and_a_warning():
    # layerwise casting stores each Linear's weight in float8 and casts it back around its forward:
    # replacing the layer would silently drop that, so quantize_ keeps such layers and says why
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(BF16).eval()
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=BF16)
    inputs = flux_inputs()
    want = model(**inputs)[0]
    with pytest.warns(UserWarning, match=r"kept \d+ nn.Linear layer\(s\) in float because hooks wrap them"):
        report = quantize_(model, min_features=64)
    # (layerwise casting leaves the norms' layers out: those are quantized as usual)
    assert report.quantized and all(".norm" in name or name.startswith("norm") for name in report.quantized)
    hooked = [name for name, why in report.skipped.items() if "layerwise_casting" in why]
    assert "transformer_blocks.0.attn.to_q" in hooked and "quantize_ first" in report.skipped[hooked[0]]
    assert all(type(model.get_submodule(name)) is torch.nn.Linear for name in hooked)
    assert model.transformer_blocks[0].attn.to_q.weight.dtype == torch.float8_e4m3fn  # (still cast by its hook)
    assert cos(model(**inputs)[0], want) > 0.999


@torch.no_grad()
def test_a_hooked_feed_forward_keeps_its_module_and_its_hook():
    # a hook on the MLP itself (layer skip's FeedForward hook, a user's own): the GELU fusion would
    # replace the module, so it leaves that one unfused and the hook running
    torch.manual_seed(0)
    model = diffusers.FluxTransformer2DModel(**FLUX).to(BF16).eval()
    calls = []

    class Counting(hooks.ModelHook):
        def pre_forward(self, module, *args, **kwargs):
            calls.append(type(module).__name__)
            return args, kwargs

    ff = model.transformer_blocks[0].ff
    hooks.HookRegistry.check_if_exists_or_initialize(ff).register_hook(Counting(), "count")
    report = quantize_(model, min_features=64)
    assert report.gelu_mlps == 1 and model.transformer_blocks[0].ff is ff  # (ff_context fused, ff kept)
    assert type(ff.net[2]).__name__ == "Linear" and ff.net[2] in {m for m in model.modules()}
    model(**flux_inputs())
    assert calls == ["FeedForward"]
