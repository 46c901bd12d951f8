"""e2e.json, e2e.md and e2e.png from the benchmark's results."""
from __future__ import annotations

import json
import os

LABELS = {"bf16": "bf16", "bf16_compile": "bf16 + compile", "int8dit": "int8dit", "int8dit_compile":
          "int8dit + compile", "fake_quant": "fake-quant (int8 -> bf16 matmul)", "fp8": "FP8 rowwise _scaled_mm",
          "torchao_int8": "torchao int8 dynamic", "torchao_int8_compile": "torchao int8 dynamic + compile",
          "nf4": "NF4 (bitsandbytes)", "bf16_graph": "bf16 + CUDA graph", "int8dit_graph": "int8dit + CUDA graph",
          "bf16_compile_graph": "bf16 + compile + CUDA graph", "int8dit_compile_graph": "int8dit + compile + CUDA graph",
          "bf16_prep_graph": "bf16 + fused attention prep + CUDA graph",
          "int8dit_prep_graph": "int8dit + fused attention prep + CUDA graph"}
TARGETS = {"flux_dev_speedup_vs_bf16": ">= 1.5", "flux_dev_speedup_vs_bf16_compiled": ">= 1.3",
           "flux_dev_speedup_vs_fp8": ">= 1.0", "flux_dev_weight_memory_ratio": "<= 0.55",
           "flux_dev_cosine_vs_bf16": ">= 0.99"}


def same_mode_bf16(path: str) -> str:
    """The bf16 path run the way `path` runs: eagerly, compiled (*_compile), replayed from a CUDA
    graph (*_graph) or both (*_compile_graph). Against it, a path's speedup is the quantization's alone,
    not the execution mode's. With the fused attention prep (*_prep_*), int8dit's twin is bf16 with the
    same fusion, and that bf16 path's twin is plain bf16: the fusion's own gain."""
    prep = "_prep" if "_prep_" in path and not path.startswith("bf16") else ""
    for suffix in ("_compile_graph", "_compile", "_graph"):
        if path.endswith(suffix):
            return "bf16" + prep + suffix
    return "bf16" + prep


def _gib(b):
    return f"{b / 2**30:.2f}" if b is not None else ""


def rewrites_note(result: dict) -> str:
    """quantize_'s rewrites beyond the layers, as the int8dit paths of one model recorded them."""
    rewrites = next((e["int8dit_rewrites"] for e in result["paths"].values() if "int8dit_rewrites" in e), None)
    note = ""
    if rewrites:
        note = ("; int8dit also rewrote " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in rewrites.items()
                                                       if k != "modulation_once") + " (quantize_'s fused producers)")
    if any(e.get("modulation_once") for e in result["paths"].values()):
        note += ("; every path, bf16 too, computes FLUX.3's modulation once a sample, not once a token "
                 "(int8dit.torch.compute_modulation_once: nothing int8 in it)")
    return note


def markdown(doc: dict) -> str:
    env = doc["environment"]
    lines = ["# int8dit end to end: diffusers transformers (random weights, published configs)", "",
             f"{env.get('gpu')} · torch {env.get('torch')} (CUDA {env.get('cuda')}) · diffusers {env.get('diffusers')} "
             f"· torchao {env.get('torchao')} · bitsandbytes {env.get('bitsandbytes')} · int8dit {env.get('int8dit')} "
             f"({env.get('int8dit_archs')}) · {env.get('date_utc')} UTC", "",
             f"Command: `{env.get('command')}`", ""]
    if env.get("int8dit_env"):
        lines[-1:-1] = ["Environment: " + " ".join(f"`{k}={v}`" for k, v in env["int8dit_env"].items())]
    for run in doc.get("merged_runs", []):
        lines[-1:-1] = [f"Merged in, same GPU and packages, {run['date_utc']} UTC: `{run['command']}`"]
    if env.get("nvidia_smi"):
        lines += ["```", env["nvidia_smi"], "```", ""]
    for path, why in doc.get("not_run", {}).items():
        lines.append(f"Not run: {LABELS.get(path, path)}: {why}.")
    if doc.get("not_run"):
        lines.append("")
    if doc.get("summary"):
        lines += ["## Summary (targets: Flux-dev 1024x1024)", "", "| metric | value | target |", "| --- | --- | --- |"]
        for k, v in doc["summary"].items():
            lines.append(f"| {k} | {v:.3f} | {TARGETS.get(k, '')} |" if isinstance(v, float) else f"| {k} | {v} | |")
        lines.append("")
    lines += ["Latency: transformer forward, CUDA events, median after warm-up; \"vs bf16\" against eager bf16, "
              "\"vs bf16 run the same way\" against bf16 eager, compiled or in a CUDA graph as the path runs. "
              "Weights: bytes of the variant's own tensors. Peak: weights + the forward's activation peak. Accuracy: the whole transformer "
              "output against bf16 (cosine similarity, relative L2 error).", ""]
    for name, r in doc["results"].items():
        lines += [f"## {name}: {r['model']} ({r['shape']})", "",
                  f"Config: `{r['config_from']}` transformer/config.json; {r['params'] / 1e9:.2f} B parameters; "
                  f"{r['quantized_linears']} linear layers quantized ({r['quantized_params'] / 1e9:.2f} B parameters); "
                  f"kept in bf16: {', '.join(r['kept_float'][:8])}{' ...' if len(r['kept_float']) > 8 else ''}"
                  + (f"; the torchao paths also keep {len(r['torchao_kept_float'])} layers with <= 16 rows a call "
                     "in bf16 (torch._int_mm needs more)" if r.get("torchao_kept_float") else "")
                  + rewrites_note(r), "",
                  "| path | latency ms | vs bf16 | vs bf16 run the same way | weights GiB | peak GiB | cosine | "
                  "rel. error |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]

        def ms(p):
            return r["paths"].get(p, {}).get("median_ms")

        for path, e in r["paths"].items():
            if "error" in e:
                lines.append(f"| {LABELS.get(path, path)} | not run: {e['error'][:160]} | | | | | | |")
                continue
            speed = f"{ms('bf16') / e['median_ms']:.2f}x" if ms("bf16") else ""
            twin = same_mode_bf16(path)
            same = f"{ms(twin) / e['median_ms']:.2f}x" if twin != path and ms(twin) else ""
            cos = f"{e['cosine_vs_bf16']:.5f}" if "cosine_vs_bf16" in e else ""
            rel = f"{e['rel_error_vs_bf16']:.4f}" if "rel_error_vs_bf16" in e else ""
            lines.append(f"| {LABELS.get(path, path)} | {e['median_ms']:.2f} | {speed} | {same} "
                         f"| {_gib(e.get('weight_bytes'))} | {_gib(e.get('peak_bytes'))} | {cos} | {rel} |")
        lines.append("")
        lines += kind_comparison_lines(r["paths"])
        lines += profile_lines(r["paths"])
    m = doc.get("minilm")
    if m:
        lines += ["## Real weights: all-MiniLM-L6-v2 sentence embeddings vs fp32", ""]
        if "error" in m:
            lines.append(f"not run: {m['error']}")
        else:
            lines += [f"{m['sentences']} fixed sentences (int8dit.bench.minilm.SENTENCES); cosine of each "
                      f"sentence's normalized embedding with the fp32 model's. SmoothQuant alpha = "
                      f"{m['smoothquant_alpha']}, calibrated on a different sentence list.", "",
                      "| variant | layers quantized | mean cosine | min cosine |", "| --- | --- | --- | --- |"]
            for k in ("int8dit", "int8dit_smoothquant"):
                lines.append(f"| {k} | {m[k]['layers_quantized']} | {m[k]['cosine_mean']:.5f} | {m[k]['cosine_min']:.5f} |")
        lines.append("")
    return "\n".join(lines)


# The profile's tables: (key in the profile, caption, first column, the two figures' headers and keys).
_PROFILE_TABLES = [
    ("top", None, "operator", ("GPU ms", "device_us"), ("CPU ms", "cpu_us")),
    ("top_cpu", "Host side, by self CPU time (operators and CUDA runtime calls):", "entry",
     ("CPU ms", "cpu_us"), ("GPU ms", "device_us")),
    ("top_python", "Python, by own time under cProfile (ranks, does not time):", "function",
     ("own ms", "own_us"), ("cumulative ms", "cum_us")),
]


def kind_comparison_lines(paths: dict) -> list:
    """Per profiled path with a profiled bf16 twin run the same way (same_mode_bf16): the GPU time of each
    kind of kernel in both, side by side, and the difference: where the quantized forward saves and
    where it spends (its quantization passes), and what both still spend alike (attention, the
    elementwise work around it)."""
    out = []
    for path, e in paths.items():
        twin = same_mode_bf16(path)
        mine, theirs = (e.get("profile") or {}).get("by_kind"), (paths.get(twin, {}).get("profile") or {}).get("by_kind")
        if twin == path or not mine or not theirs:
            continue
        ours = {r["kind"]: r for r in mine}
        bf16 = {r["kind"]: r for r in theirs}
        kinds = sorted(set(ours) | set(bf16), key=lambda k: -max(ours.get(k, {}).get("device_us", 0.0),
                                                                  bf16.get(k, {}).get("device_us", 0.0)))
        label, twin_label = LABELS.get(path, path), LABELS.get(twin, twin)
        out += [f"GPU time by kind of kernel, {label} against {twin_label} (ms; kernels in brackets; "
                "each kernel owning only the time after the kernel before it ends):", "",
                f"| kind of kernel | {twin_label} | {label} | difference |", "| --- | --- | --- | --- |"]

        def cell(r):
            return f"{r['device_us'] / 1e3:.3f} ({r['kernels']})" if r else "-"

        for k in kinds:
            a, b = bf16.get(k), ours.get(k)
            diff = ((b or {}).get("device_us", 0.0) - (a or {}).get("device_us", 0.0)) / 1e3
            out.append(f"| {k} | {cell(a)} | {cell(b)} | {diff:+.3f} |")
        total_a = sum(r["device_us"] for r in theirs) / 1e3
        total_b = sum(r["device_us"] for r in mine) / 1e3
        out += [f"| all kernels | {total_a:.3f} | {total_b:.3f} | {total_b - total_a:+.3f} |", ""]
    return out


# The top table of a profile with kernels in it (profile.top_kernels; e2e JSON files written before it
# hold operators by their recorded GPU time, which the first row of _PROFILE_TABLES renders).
_TOP_KERNELS = ("Kernels by the GPU time they own (a kernel launched early under programmatic dependent launch "
                "owns only the time after the kernel before it ends; \"started early\" is the rest of its recorded "
                "time, spent waiting for that kernel):", "kernel", ("GPU ms", "device_us"),
                ("started early, ms", "early_us"))


def profile_lines(paths: dict) -> list:
    """Per path with a profile (e2e --profile): GPU busy share, the top operators by GPU time, and the
    host side's top entries (by self CPU time; Python functions by own time)."""
    out = []
    for path, e in paths.items():
        p = e.get("profile")
        if not p:
            continue
        if not out:
            out += ["One forward under torch.profiler, per path: kernel time over wall time (well below 1: the "
                    "host sets the pace) and the kernels with the most GPU time.", ""]
        out += [f"**{LABELS.get(path, path)}**: wall {p['wall_us'] / 1e3:.2f} ms, kernels {p['device_us'] / 1e3:.2f} ms "
                f"(GPU busy {p['device_busy']:.2f})" + (f"; {p['note']}" if p.get("note") else ""), ""]
        if p.get("by_kind") and p["device_us"] > 0:
            out += ["GPU time by kind of kernel (int8dit.bench.profile.KERNEL_KINDS; in an int8dit path the CUTLASS "
                    "GEMMs are its W8A8 kernels; a kernel launched early under programmatic dependent launch owns "
                    "only the time after the kernel before it ends):", "",
                    "| kind of kernel | kernels | GPU ms | share |", "| --- | --- | --- | --- |"]
            out += [f"| {r['kind']} | {r['kernels']} | {r['device_us'] / 1e3:.3f} | {r['device_us'] / p['device_us']:.2f} |"
                    for r in p["by_kind"]]
            out.append("")
        for key, caption, first, (h1, k1), (h2, k2) in _PROFILE_TABLES:
            if not p.get(key):
                continue
            if key == "top" and "early_us" in p[key][0]:  # kernels by owned time (profile.top_kernels)
                caption, first, (h1, k1), (h2, k2) = _TOP_KERNELS
            out += ([caption, ""] if caption else []) + [f"| {first} | calls | {h1} | {h2} |", "| --- | --- | --- | --- |"]
            out += [f"| `{_cell(r['name'])}` | {r['calls']} | {r[k1] / 1e3:.3f} | {r[k2] / 1e3:.3f} |" for r in p[key]]
            out.append("")
    return out


def _cell(name: str) -> str:
    """A name fit for a markdown table cell: no '|', at most 90 characters."""
    name = name.replace("|", "/")
    return name if len(name) <= 90 else name[:87] + "..."


def plot(doc: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(doc["results"])
    paths = [p for p in LABELS if any("median_ms" in doc["results"][m]["paths"].get(p, {}) for m in models)]
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(models)), 4.8))
    width = 0.8 / max(1, len(paths))
    for i, p in enumerate(paths):
        xs, ys = [], []
        base = same_mode_bf16(p)
        for j, m in enumerate(models):
            e = doc["results"][m]["paths"]
            if "median_ms" in e.get(p, {}) and "median_ms" in e.get(base, {}):
                xs.append(j + i * width)
                ys.append(e[base]["median_ms"] / e[p]["median_ms"])
        ax.bar(xs, ys, width, label=LABELS[p])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models)
    ax.set_ylabel("speed-up over bf16 run the same way:\neager, compiled or in a CUDA graph (higher is better)")
    ax.set_title(f"Transformer forward, {doc['environment'].get('gpu')}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_atomically(path: str, text: str) -> None:
    # A run killed by a device call's time limit while writing must leave the previous file, not half of one.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(doc: dict, out: str, with_plot: bool = False) -> None:
    """e2e.json and e2e.md (after every path: a run cut off keeps what it measured), and the plot where
    asked (once, at the end)."""
    _write_atomically(os.path.join(out, "e2e.json"), json.dumps(doc, indent=2))
    _write_atomically(os.path.join(out, "e2e.md"), markdown(doc))
    if not with_plot:
        return
    try:
        plot(doc, os.path.join(out, "e2e.png"))
    except Exception as e:  # the numbers matter more than the picture
        print(f"[e2e] no plot: {type(e).__name__}: {e}")
