"""Quantized diffusers checkpoints that name their model: save_quantized records the class and config,
load_quantized_model rebuilds the model from them (empty_skeleton: parameters on the meta device,
buffers computed) and gives the saved model's outputs bit for bit, in its dtypes; a meta skeleton
whose non-persistent buffers the file cannot fill is refused before anything changes. CPU tensors.
Every drop-in model of test_torch_more_diffusers_models round-trips bit for bit. Skips without PyTorch,
safetensors or diffusers."""
import copy

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
pytest.importorskip("safetensors", reason="safetensors is not installed (scripts/setup.sh pins it)")
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

import int8dit  # noqa: E402
from int8dit.serialization import FormatError, empty_skeleton, load_quantized_model  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402
import test_torch_more_diffusers_models as more  # noqa: E402

BF16 = torch.bfloat16
# PixArt's position embedding is a non-persistent buffer (pos_embed_max_size unset): not in any file.
PIXART = dict(num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=8, num_layers=2, sample_size=8,
              patch_size=2, cross_attention_dim=64, caption_channels=64, norm_type="ada_norm_single",
              num_embeds_ada_norm=10)


def pixart_inputs():
    return dict(hidden_states=torch.randn(1, 4, 8, 8, dtype=BF16), encoder_hidden_states=torch.randn(1, 5, 64, dtype=BF16),
                timestep=torch.tensor([500]), added_cond_kwargs={"resolution": None, "aspect_ratio": None},
                return_dict=False)


@pytest.fixture
def saved_pixart(tmp_path):
    torch.manual_seed(0)
    model = diffusers.PixArtTransformer2DModel(**PIXART).to(BF16).eval()
    quantize_(model, min_features=32)
    path = str(tmp_path / "pixart-int8.safetensors")
    int8dit.save_quantized(model, path)
    return model, path


@torch.no_grad()
def test_a_checkpoint_rebuilds_its_model_with_the_same_outputs_and_dtypes(saved_pixart):
    model, path = saved_pixart
    loaded = int8dit.load_quantized_model(path)
    assert type(loaded) is type(model) and not loaded.training
    x = pixart_inputs()
    assert torch.equal(loaded(**x)[0], model(**x)[0])
    assert {n: t.dtype for n, t in loaded.state_dict().items()} == {n: t.dtype for n, t in model.state_dict().items()}
    assert loaded.pos_embed.pos_embed.dtype == BF16  # computed, then cast as from_pretrained(torch_dtype) would


@torch.no_grad()
def test_a_meta_skeleton_whose_buffers_the_file_cannot_fill_is_refused_unchanged(saved_pixart):
    _, path = saved_pixart
    with torch.device("meta"):
        skeleton = diffusers.PixArtTransformer2DModel(**PIXART)
    before = [type(m).__name__ for m in skeleton.modules()]
    with pytest.raises(FormatError, match=r"buffers \['pos_embed.pos_embed'\] are on the meta device"):
        int8dit.load_quantized(skeleton, path)
    assert [type(m).__name__ for m in skeleton.modules()] == before  # no layer was swapped


def test_empty_skeleton_puts_parameters_on_meta_and_computes_buffers():
    skeleton = empty_skeleton(diffusers.PixArtTransformer2DModel, PIXART, dtype=BF16)
    assert all(p.is_meta for p in skeleton.parameters())
    buffer = skeleton.pos_embed.pos_embed
    assert not buffer.is_meta and buffer.dtype == BF16
    assert torch.equal(buffer, diffusers.PixArtTransformer2DModel(**PIXART).pos_embed.pos_embed.to(BF16))


@torch.no_grad()
def test_the_buffers_a_class_keeps_in_fp32_stay_fp32(tmp_path):
    # Wan keeps its rotary tables in fp32 (from_pretrained with torch_dtype does; the fused rotation needs it)
    from int8dit.serialization import cast_floating

    torch.manual_seed(0)
    cls = diffusers.WanTransformer3DModel
    model = cls(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
                text_dim=64, freq_dim=32, ffn_dim=128, num_layers=2, rope_max_seq_len=32)
    model = cast_floating(model, BF16, cls._keep_in_fp32_modules).eval()  # as from_pretrained(torch_dtype) loads it
    # (the rotary tables keep the values they were computed with, not bf16's)
    assert torch.equal(model.rope.freqs_cos, cls(**dict(model.config)).rope.freqs_cos.float())
    quantize_(model, min_features=32)
    path = str(tmp_path / "wan-int8.safetensors")
    int8dit.save_quantized(model, path)
    loaded = int8dit.load_quantized_model(path)
    assert loaded.rope.freqs_cos.dtype == torch.float32 and loaded.blocks[0].attn1.to_out[0].bias.dtype == torch.float32
    x = dict(hidden_states=torch.randn(1, 4, 2, 8, 8, dtype=BF16), timestep=torch.tensor([500]),
             encoder_hidden_states=torch.randn(1, 8, 64, dtype=BF16), return_dict=False)
    assert torch.equal(loaded(**x)[0], model(**x)[0])


def test_a_checkpoint_of_a_model_that_is_not_diffusers_names_no_class(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(64, 64))
    quantize_(model, min_features=32)
    path = str(tmp_path / "plain.safetensors")
    int8dit.save_quantized(model, path)
    with pytest.raises(FormatError, match="does not name its model class.*int8dit.load_quantized"):
        load_quantized_model(path)
    # the skeleton route still loads it
    skeleton = torch.nn.Sequential(torch.nn.Linear(64, 64))
    loaded = int8dit.load_quantized(skeleton, path)
    assert torch.equal(loaded[0].weight, model[0].weight) and copy.deepcopy(loaded) is not None


@pytest.mark.parametrize("case", sorted(more.CASES))
@torch.no_grad()
def test_every_drop_in_model_rebuilds_from_its_checkpoint_bit_for_bit(case, tmp_path):
    """save_quantized then load_quantized_model on each drop-in case (loaded as from_pretrained would, its
    zero-initialized layers woken): the same output, bit for bit, with every fused forward in place."""
    model, make_inputs = more.built(case)
    report = quantize_(model, min_features=32)
    path = str(tmp_path / "model.safetensors")
    int8dit.save_quantized(model, path)
    loaded = int8dit.load_quantized_model(path)
    inputs = make_inputs()
    assert torch.equal(loaded(**inputs)[0], model(**inputs)[0])
    rewritten = sum(getattr(m, "_int8dit_fused_norms", False) for m in loaded.modules())
    assert rewritten == sum(getattr(m, "_int8dit_fused_norms", False) for m in model.modules())
    assert report.quantized
