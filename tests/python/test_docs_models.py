"""docs/models.md's table says what int8dit fuses in each diffusers transformer: this builds each one
small, quantizes it with every fusion on and compares what was rewritten with the table's cells, so
that the page cannot drift from the code. Skips without PyTorch or diffusers."""
import pathlib

import pytest

from helpers import torch_or_skip

torch = torch_or_skip()
diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed (scripts/setup.sh pins it)")

from int8dit.torch import quantize_  # noqa: E402
from int8dit.torch.attention_prep import attention_prep_applies  # noqa: E402
import test_torch_more_diffusers_models as more  # noqa: E402
from test_torch_attention_prep import FLUX, QWEN, SD3  # noqa: E402
from test_torch_attention_prep_more import FLUX2, Z_IMAGE  # noqa: E402
from test_torch_attention_prep_video import HUNYUAN, HUNYUAN15, WAN  # noqa: E402
from test_torch_flux3 import FLUX3  # noqa: E402

TABLE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "models.md"

# Small configurations, each at widths that quantize_ quantizes (so that the fusions can apply).
CONFIGS = {
    "DiT-XL/2": dict(num_attention_heads=2, attention_head_dim=32, in_channels=4, num_layers=2, sample_size=8,
                     patch_size=2, num_embeds_ada_norm=10),
    "PixArt-Sigma": dict(num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=8, num_layers=2,
                         sample_size=8, patch_size=2, cross_attention_dim=64, caption_channels=64,
                         norm_type="ada_norm_single", num_embeds_ada_norm=10),
    "SD3, SD3.5": SD3, "FLUX.1": FLUX, "Chroma": more.CASES["chroma"][1], "FLUX.2": FLUX2, "FLUX.3": FLUX3, "Krea 2": more.CASES["krea2"][1],
    "Qwen-Image": QWEN,
    "Z-Image": dict(Z_IMAGE, dim=192, axes_dims=[16, 16, 16]), "AuraFlow": more.CASES["auraflow"][1],
    "Lumina2": more.CASES["lumina2"][1], "Sana": more.CASES["sana"][1], "CogView3-Plus": more.CASES["cogview3-plus"][1],
    "Wan 2.1 / 2.2": WAN, "CogVideoX": more.CASES["cogvideox"][1], "LTX-Video": more.CASES["ltx-video"][1],
    "HunyuanVideo": HUNYUAN, "HunyuanVideo 1.5": HUNYUAN15,
    "Mochi": dict(more.CASES["mochi"][1], num_attention_heads=3),  # 96 wide: a SwiGLU of 256 that quantizes
    # the drop-in cases of diffusers_cases_image.py and diffusers_cases_video.py
    **{name: more.CASES[case][1] for name, case in {
        "CogView4": "cogview4", "HiDream-I1": "hidream", "HunyuanImage 2.1": "hunyuanimage",
        "ERNIE-Image": "ernie-image", "Qwen-Image 2.1": "qwen-image-2.1", "Bria": "bria", "Bria FIBO": "bria-fibo",
        "LongCat-Image": "longcat-image", "Ovis-Image": "ovis-image", "GLM-Image": "glm-image", "PRX": "prx",
        "OmniGen": "omnigen", "LTX-2": "ltx2.3", "Kandinsky 5": "kandinsky5", "Kandinsky 6": "kandinsky6",
        "SkyReels-V2": "skyreels-v2-i2v", "Wan VACE": "wan-vace", "Sana-Video": "sana-video", "Cosmos": "cosmos-2.5",
        "Allegro": "allegro", "Latte": "latte", "EasyAnimate": "easyanimate",
        "HunyuanVideo FramePack": "hunyuanvideo-framepack"}.items()},
}
KINDS = {"fused_norms": "adaLN-Zero norms", "fused_blocks": "block norms", "gelu_mlps": "GELU MLPs",
         "concat_gelu_blocks": "[attention | GELU]"}


def table_rows():
    rows = {}
    for line in TABLE.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| model") or line.startswith("| ---"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def test_the_table_has_a_row_for_every_model_tested_here_and_no_other():
    assert set(table_rows()) == set(CONFIGS)


@pytest.mark.parametrize("model", sorted(CONFIGS))
@torch.no_grad()
def test_what_the_table_says_int8dit_fuses_is_what_it_fuses(model):
    name, cls_name, fuses, swiglu, prep = table_rows()[model][:5]
    torch.manual_seed(0)
    m = getattr(diffusers, cls_name)(**CONFIGS[model]).to(torch.bfloat16).eval()
    prep_modules = attention_prep_applies(m)
    report = quantize_(m, min_features=32)  # every fusion on: its defaults
    assert report.quantized, "quantize_ replaced no layer"
    kinds = [label for field, label in KINDS.items() if getattr(report, field)]
    assert fuses == (", ".join(kinds) or "none")
    assert swiglu == ("yes" if report.swiglu_mlps else "no")
    assert prep.split(" ")[0] == ("yes" if prep_modules else "no")
