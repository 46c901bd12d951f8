"""python -m int8dit.convert on a small diffusers transformer saved in a pipeline folder (no download):
the file it writes rebuilds the quantized model bit for bit, --verify checks that, and bad calls get a
message and exit code 2 without writing anything. Skips without PyTorch, safetensors or diffusers."""
import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
pytest.importorskip("safetensors", reason="safetensors is not installed (scripts/setup.sh pins it)")
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

import int8dit  # noqa: E402
from int8dit.convert import main  # noqa: E402
from int8dit.torch import quantize_  # noqa: E402

SD3 = dict(sample_size=16, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=32, num_attention_heads=4,
           joint_attention_dim=64, caption_projection_dim=128, pooled_projection_dim=32, out_channels=4,
           pos_embed_max_size=32)


@pytest.fixture
def pipeline_folder(tmp_path):
    torch.manual_seed(0)
    model = diffusers.SD3Transformer2DModel(**SD3)
    model.save_pretrained(str(tmp_path / "pipe" / "transformer"))
    return tmp_path / "pipe"


@torch.no_grad()
def test_the_written_file_rebuilds_the_quantized_model(pipeline_folder, tmp_path, capsys):
    out = str(tmp_path / "sd3-int8.safetensors")
    assert main([str(pipeline_folder), "--out", out, "--device", "cpu", "--min-features", "32", "--verify"]) == 0
    log = capsys.readouterr().out
    assert "[2/3]" in log and "read back as written" in log and "load_quantized_model" in log
    loaded = int8dit.load_quantized_model(out)
    from int8dit.serialization import cast_floating

    want = diffusers.SD3Transformer2DModel.from_pretrained(str(pipeline_folder), subfolder="transformer")
    want = cast_floating(want, torch.bfloat16).eval()
    quantize_(want, min_features=32)
    assert all(t.dtype in (torch.bfloat16, torch.int8, torch.float32) for t in loaded.state_dict().values())
    assert loaded.pos_embed.proj.weight.dtype == torch.bfloat16  # bf16, as the file holds it
    x = dict(hidden_states=torch.randn(1, 4, 16, 16, dtype=torch.bfloat16),
             encoder_hidden_states=torch.randn(1, 8, 64, dtype=torch.bfloat16),
             pooled_projections=torch.randn(1, 32, dtype=torch.bfloat16), timestep=torch.tensor([500.0]),
             return_dict=False)
    assert torch.equal(loaded(**x)[0], want(**x)[0])


def test_bad_calls_say_what_to_do_and_write_nothing(pipeline_folder, tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"not mine")
    assert main([str(pipeline_folder), "--out", str(out), "--device", "cpu"]) == 2
    assert "pass --force" in capsys.readouterr().err and out.read_bytes() == b"not mine"
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "y.safetensors"), "--device", "cpu"]) == 2
    assert "cannot read a diffusers config" in capsys.readouterr().err
    assert main([str(pipeline_folder), "--out", str(tmp_path / "no" / "dir" / "z.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(pipeline_folder), "--out", str(tmp_path / "w.safetensors"), "--device", "cpu"]) == 2
    assert "no linear layer of SD3Transformer2DModel was quantized" in capsys.readouterr().err  # (all < 256 wide)
    assert not (tmp_path / "y.safetensors").exists() and not (tmp_path / "w.safetensors").exists()


@torch.no_grad()
def test_a_lora_is_fused_into_the_float_weights_before_quantizing(pipeline_folder, tmp_path, capsys):
    from safetensors.torch import save_file

    from int8dit.serialization import cast_floating

    torch.manual_seed(1)
    layer = "transformer_blocks.0.attn.to_q"
    lora = {f"transformer.{layer}.lora_A.weight": torch.randn(4, 128) * 0.1,
            f"transformer.{layer}.lora_B.weight": torch.randn(128, 4) * 0.1}
    save_file(lora, str(tmp_path / "lora.safetensors"))
    out = str(tmp_path / "with-lora.safetensors")
    assert main([str(pipeline_folder), "--out", out, "--device", "cpu", "--min-features", "32",
                 "--lora", f"{tmp_path / 'lora.safetensors'}:0.5"]) == 0
    assert "fused the LoRA" in capsys.readouterr().out
    want = cast_floating(diffusers.SD3Transformer2DModel.from_pretrained(str(pipeline_folder), subfolder="transformer"),
                         torch.bfloat16)
    int8dit.fuse_lora(want, lora, scale=0.5)
    quantize_(want, min_features=32)
    loaded = int8dit.load_quantized_model(out)
    assert torch.equal(loaded.get_submodule(layer).weight, want.get_submodule(layer).weight)
    plain = diffusers.SD3Transformer2DModel.from_pretrained(str(pipeline_folder), subfolder="transformer")
    quantize_(cast_floating(plain, torch.bfloat16), min_features=32)
    assert not torch.equal(loaded.get_submodule(layer).weight, plain.get_submodule(layer).weight)
    # a LoRA for another model is refused with the fuse's message, nothing written
    save_file({"transformer.nope.lora_A.weight": torch.zeros(4, 8), "transformer.nope.lora_B.weight": torch.zeros(8, 4)},
              str(tmp_path / "bad.safetensors"))
    assert main([str(pipeline_folder), "--out", str(tmp_path / "bad-out.safetensors"), "--device", "cpu",
                 "--lora", str(tmp_path / "bad.safetensors")]) == 2
    assert "nope: no such module" in capsys.readouterr().err and not (tmp_path / "bad-out.safetensors").exists()
