"""SmolLM2-135M last-token embeddings on CPU: load time, throughput against the CPU's peak, accuracy, memory.

Corpus: the bundled HH-RLHF harmless demo, each text a prompt (dialogue) followed by one of its
responses, as the pipeline embeds them; ``--texts`` of them sampled reproducibly. Each run is its own
process (its peak RSS is its own):

* load: ``first`` converts the GGUF into an empty models directory (what a first use costs), ``cached``
  loads the stored conversion (every later use); both include importing torch and transformers;
* throughput per precision (fp32, int8, bf16 where the CPU has native bf16; ``onnx`` and ``onnx-int8``, the
  same network on ONNX Runtime, whose graph is built once in a warm-up process), texts/s and achieved GFLOP/s;
* cosine of each precision's vectors to fp32's, mean with a bootstrap 95% CI grouped by prompt, and min.

FLOPs counted per text of ``s`` tokens: ``2 · P_linear · s`` for the decoder's matrix products
(``P_linear`` = weights of its Linear layers, 106.2 M for SmolLM2-135M, i.e. 0.212 GFLOP/token) plus
``2 · L · d · s · (s + 1)`` for causal attention scores and values (``L`` layers, ``d`` = heads × head
size); embedding lookups, norms and activations are left out. Peak = cores × GHz × FLOPs/cycle/core for
the ISA detected in ``/proc/cpuinfo``:

* fp32: 16 (AVX2 with FMA on 128-bit FMA units, AMD Zen 1) or 32 (AVX2 with two 256-bit FMA units,
  and AMD's AVX-512, which Zen 4 runs on 256-bit units), 64 (Intel AVX-512 with two FMA units);
* int8: ×4 that with AVX-512 VNNI (``vpdpbusd``: 4 multiply-adds per 32-bit lane), ×2 without;
* bf16: ×2 fp32 with ``avx512_bf16`` (``vdpbf16ps``: 2 per lane).

These are the textbook ceilings of the instructions, not of the kernels; ``--flops-per-cycle`` overrides
the fp32 figure. ``cores`` is ``os.cpu_count()``: where those are SMT siblings, the peak is overstated.

    python benchmarks/llm_embed.py [--texts 200] [--precisions fp32,int8,bf16,onnx,onnx-int8] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_name, peak_rss_mb, reset_peak_rss

SPEC = "hf-last:smollm2"


def build_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(texts, prompt id of each): prompt + response from the HH-RLHF harmless demo, sampled reproducibly."""
    from rewardlab.data import load_named

    dataset = load_named("hh-harmless-demo")
    responses = sorted(dataset.responses.values(), key=lambda r: r.id)
    chosen = random.Random(seed).sample(responses, min(n, len(responses)))
    texts = [dataset.prompts[r.prompt_id].text.strip() + "\n" + r.text.strip() for r in chosen]
    return texts, [r.prompt_id for r in chosen]


def cpu_ghz() -> float:
    """Nominal clock: lscpu's max MHz where it is reported, else /proc/cpuinfo's current MHz."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("CPU max MHz:"):
                return float(line.split(":", 1)[1]) / 1000
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1]) / 1000
    except (OSError, ValueError):
        pass
    return float("nan")


def peak_gflops(precision: str, fp32_per_cycle: float | None) -> tuple[float, str]:
    """(peak GFLOP/s, the formula with its numbers) for ``precision`` on this CPU."""
    from rewardlab.embed.llm_quant import cpu_flags

    flags = cpu_flags()
    vendor = Path("/proc/cpuinfo").read_text().split("vendor_id", 1)[-1].split("\n", 1)[0].strip(" :\t")
    if fp32_per_cycle is None:
        if "avx512f" in flags:
            fp32_per_cycle = 32.0 if vendor == "AuthenticAMD" else 64.0
        elif "avx2" in flags and "fma" in flags:
            fp32_per_cycle = 32.0
        else:
            fp32_per_cycle = 8.0
    # llama.cpp multiplies Q4_1/Q8_0 blocks as int8 dot products, and F16 weights in fp32 after conversion
    computed = {"onnx": "fp32", "onnx-int8": "int8", "gguf": "int8", "gguf-q8": "int8",
                "gguf-f16": "fp32"}.get(precision, precision)
    factor = {"fp32": 1.0, "bf16": 2.0 if "avx512_bf16" in flags else 1.0,
              "int8": 4.0 if ("avx512_vnni" in flags or "avx_vnni" in flags) else 2.0}[computed]
    cores, ghz = os.cpu_count() or 1, cpu_ghz()
    per_cycle = fp32_per_cycle * factor
    return cores * ghz * per_cycle, f"{cores} cores × {ghz:.2f} GHz × {per_cycle:g} {computed} FLOPs/cycle"


def text_gflops(tokens: np.ndarray, linear_params: int, layers: int, attention_width: int) -> np.ndarray:
    s = tokens.astype(np.float64)
    return (2 * linear_params * s + 2 * layers * attention_width * s * (s + 1)) / 1e9


def _worker(spec: str, models_dir: str, corpus_file: str, vectors_file: str, encode_all: bool, queue: Any) -> None:
    """A fresh process: time the load (imports included), then one pass over the corpus."""
    reset_peak_rss()
    os.environ["REWARDLAB_MODELS_DIR"] = models_dir
    texts = json.loads(Path(corpus_file).read_text(encoding="utf-8"))
    started = time.perf_counter()
    from rewardlab.embed import make_encoder

    encoder = make_encoder(spec)
    encoder.encode(texts[:1])  # loads the tokenizer and weights (converting the GGUF when not cached)
    load_s = time.perf_counter() - started
    result: dict[str, Any] = {"load_s": load_s, "from_cache": getattr(encoder, "loaded_from_cache", None),
                              "fingerprint": encoder.fingerprint()}
    if encode_all:
        import torch

        result["threads"] = getattr(encoder, "workers", None) or torch.get_num_threads()
        started, cpu_started = time.perf_counter(), time.process_time()
        vectors = encoder.encode(texts)
        result["seconds"] = time.perf_counter() - started
        result["cpu_seconds"] = time.process_time() - cpu_started
        np.save(vectors_file, vectors)
    result["peak_rss_mb"] = peak_rss_mb()
    queue.put(result)


def run(spec: str, models_dir: Path, corpus_file: Path, vectors_file: Path, encode_all: bool) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker, args=(spec, str(models_dir), str(corpus_file), str(vectors_file),
                                                     encode_all, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"{spec} failed (exit code {process.exitcode})")
    return dict(queue.get())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--precisions", default="fp32,int8,bf16,onnx,onnx-int8,gguf,gguf-q8,gguf-f16")
    parser.add_argument("--flops-per-cycle", type=float, default=None, help="fp32 FLOPs per cycle per core")
    parser.add_argument("--skip-first-load", action="store_true", help="do not time a conversion from the GGUF")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/llm_embed.json"))
    args = parser.parse_args()

    from rewardlab.embed import make_encoder
    from rewardlab.embed.llm_quant import cpu_flags, has_native_bf16
    from rewardlab.embed.llm_weights_cache import default_models_dir
    from rewardlab.evaluate.bootstrap import GroupBootstrap

    flags = sorted(f for f in cpu_flags() if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni",
                                                     "avx512_bf16", "amx_bf16", "amx_int8"))
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, {cpu_ghz():.2f} GHz; flags: {' '.join(flags)}")
    print(f"load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared machine: speeds are lower bounds)")
    precisions = [p for p in args.precisions.split(",") if p]
    if "bf16" in precisions and not has_native_bf16():
        print("bf16 skipped: this CPU has neither avx512_bf16 nor amx_bf16")
        precisions.remove("bf16")
    if "fp32" not in precisions:
        precisions.insert(0, "fp32")  # the reference for the cosines

    texts, prompt_ids = build_corpus(args.texts)
    probe = make_encoder(SPEC)
    probe._load_tokenizer()  # noqa: SLF001 - the encoder's own tokenisation, for the FLOP count
    tokens = np.array([len(ids) for ids in probe._token_ids(texts)])  # noqa: SLF001
    linear_params, layers, width = model_shape(probe)
    gflop = text_gflops(tokens, linear_params, layers, width)
    print(f"corpus: {len(texts)} texts (prompt + response, HH-RLHF harmless demo), tokens mean {tokens.mean():.0f}, "
          f"median {np.median(tokens):.0f}, max {tokens.max()}; {gflop.sum():.0f} GFLOP in all "
          f"({linear_params / 1e6:.1f} M Linear weights, {layers} layers, attention width {width})")

    report: dict[str, Any] = {"cpu": cpu_name(), "flags": flags, "cores": os.cpu_count(), "ghz": cpu_ghz(),
                              "load_average": os.getloadavg(), "texts": len(texts), "tokens_mean": float(tokens.mean()),
                              "gflop_total": float(gflop.sum()), "load": {}, "precisions": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus_file = Path(tmp) / "corpus.json"
        corpus_file.write_text(json.dumps(texts), encoding="utf-8")
        if not args.skip_first_load:
            fresh = Path(tmp) / "models"
            first = run(SPEC, fresh, corpus_file, Path(tmp) / "x.npy", encode_all=False)
            cached = run(SPEC, fresh, corpus_file, Path(tmp) / "x.npy", encode_all=False)
            report["load"] = {"first_s": first["load_s"], "cached_s": cached["load_s"],
                              "first_peak_rss_mb": first["peak_rss_mb"], "cached_peak_rss_mb": cached["peak_rss_mb"]}
            print(f"load: first (GGUF → fp32, stored) {first['load_s']:.1f} s, cached {cached['load_s']:.1f} s "
                  f"(from cache: {cached['from_cache']})")
        vectors: dict[str, np.ndarray] = {}
        rows = []
        for precision in precisions:
            spec = SPEC if precision == "fp32" else f"{SPEC}:{precision}"
            if precision.startswith(("onnx", "gguf-")):  # a one-off export or conversion is not the load a user waits for
                run(spec, default_models_dir(), corpus_file, Path(tmp) / "x.npy", encode_all=False)
            stats = run(spec, default_models_dir(), corpus_file, Path(tmp) / f"{precision}.npy", encode_all=True)
            vectors[precision] = np.load(Path(tmp) / f"{precision}.npy")
            peak, formula = peak_gflops(precision, args.flops_per_cycle)
            achieved = gflop.sum() / stats["seconds"]
            rows.append({"precision": precision, "spec": spec, "fingerprint": stats["fingerprint"],
                         "load_s": stats["load_s"], "texts_per_s": len(texts) / stats["seconds"],
                         "texts_per_cpu_s": len(texts) / stats["cpu_seconds"],
                         "tokens_per_s": float(tokens.sum() / stats["seconds"]), "gflops": achieved,
                         "peak_gflops": peak, "peak_formula": formula, "pct_of_peak": 100 * achieved / peak,
                         "peak_rss_mb": stats["peak_rss_mb"], "threads": stats["threads"]})
            print(f"  {spec:<22} {rows[-1]['texts_per_s']:6.2f} texts/s  {achieved:6.1f} GFLOP/s = "
                  f"{rows[-1]['pct_of_peak']:4.1f}% of {peak:.0f} ({formula})  peak RSS {stats['peak_rss_mb']:.0f} MB",
                  flush=True)
    bootstrap = GroupBootstrap(np.asarray(prompt_ids), n_resamples=2000, seed=0)
    for row in rows:
        cosine = (vectors[row["precision"]] * vectors["fp32"]).sum(1).astype(np.float64)
        estimate = bootstrap.mean(cosine)
        row["cosine_vs_fp32"] = {"mean": estimate.as_dict(), "min": float(cosine.min()), "n": len(cosine)}
    print(f"\n{'spec':<22}{'load s':>8}{'texts/s':>9}{'/CPU-s':>8}{'GFLOP/s':>9}{'% peak':>8}{'cos mean [95% CI]':>28}"
          f"{'cos min':>9}{'RSS MB':>8}")
    for row in rows:
        mean = row["cosine_vs_fp32"]["mean"]
        ci = f"{mean['value']:.4f} [{mean['ci_low']:.4f}, {mean['ci_high']:.4f}]"
        print(f"{row['spec']:<22}{row['load_s']:>8.1f}{row['texts_per_s']:>9.2f}{row['texts_per_cpu_s']:>8.2f}"
              f"{row['gflops']:>9.1f}{row['pct_of_peak']:>8.1f}{ci:>28}{row['cosine_vs_fp32']['min']:>9.4f}{row['peak_rss_mb']:>8.0f}")
    print(f"(n = {len(texts)} texts; CIs by prompt; load includes importing torch/transformers)")
    report["precisions"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


def model_shape(encoder: Any) -> tuple[int, int, int]:
    """(Linear weights, layers, attention width) from the cached conversion's config.json (SmolLM2-135M's if absent)."""
    directory = encoder._cache_dir()  # noqa: SLF001
    if directory is None:
        return 106_168_320, 30, 576
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
    return linear_parameter_count(config), int(config["num_hidden_layers"]), heads * head_dim


def linear_parameter_count(config: dict[str, Any]) -> int:
    """Weights of a Llama-style decoder's Linear layers (q, k, v, o, gate, up, down) across its layers."""
    d, ff, heads = int(config["hidden_size"]), int(config["intermediate_size"]), int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or d // heads)
    kv = int(config.get("num_key_value_heads") or heads) * head_dim
    per_layer = d * heads * head_dim * 2 + 2 * d * kv + 3 * d * ff
    return per_layer * int(config["num_hidden_layers"])


if __name__ == "__main__":
    main()
