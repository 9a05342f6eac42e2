"""GPU against CPU in one run, per encoder spec: texts/s on each (and the ratio), and how close the GPU's vectors are
to the CPU's (cosine, mean with a 95% CI by prompt, and min) and to the CPU fp32 reference of the same model.

On a machine without a CUDA GPU it says so and exits 0: there is nothing to compare. Both devices embed the same
texts (prompt + response from the bundled HH-RLHF harmless demo); the CPU runs on the first ``--cpu-texts`` of them
only (an LLM encoder is slow there), and the GPU's texts/s is taken on all ``--texts`` after a warm-up batch.

    python benchmarks/device_check.py [--texts 1000] [--cpu-texts 100] [--specs minilm,minilm:int8,hf-last:smollm2]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import describe_cpu

SPECS = ("minilm", "minilm:int8", "hf-last:smollm2")
#: the CPU fp32 spec each spec's vectors are also compared with
REFERENCE = {"minilm": "minilm", "minilm:int8": "minilm", "minilm:onnx": "minilm", "hf-last:smollm2": "hf-last:smollm2",
             "hf-last:smollm2:int8": "hf-last:smollm2"}


def build_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(texts, prompt id of each): prompt + response from the HH-RLHF harmless demo, sampled reproducibly."""
    from rewardlab.data import load_named

    dataset = load_named("hh-harmless-demo")
    responses = sorted(dataset.responses.values(), key=lambda r: r.id)
    chosen = random.Random(seed).sample(responses, min(n, len(responses)))
    return [dataset.prompts[r.prompt_id].text.strip() + "\n" + r.text.strip() for r in chosen], [r.prompt_id for r in chosen]


def timed(encoder: Any, texts: list[str]) -> tuple[np.ndarray, float]:
    """Vectors and texts/s, after a warm-up batch that loads the weights (and, on a GPU, the kernels)."""
    import torch

    encoder.encode(texts[:8])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return vectors, len(texts) / (time.perf_counter() - started)


def cosine_summary(a: np.ndarray, b: np.ndarray, groups: list[str]) -> dict[str, Any]:
    from rewardlab.evaluate.bootstrap import GroupBootstrap

    cosine = (a * b).sum(1).astype(np.float64)  # both L2-normalised
    mean = GroupBootstrap(np.asarray(groups), n_resamples=2000, seed=0).mean(cosine)
    return {"mean": mean.as_dict(), "min": float(cosine.min()), "n": len(cosine)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000, help="texts embedded on the GPU")
    parser.add_argument("--cpu-texts", type=int, default=100, help="of those, how many the CPU embeds too")
    parser.add_argument("--specs", default=",".join(SPECS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/device_check.json"))
    args = parser.parse_args()

    import torch

    from rewardlab.embed import make_encoder
    from rewardlab.embed.devices import describe_device, resolve_device

    print(f"CPU: {describe_cpu()}")
    if not torch.cuda.is_available():
        print(f"no CUDA GPU here (torch {torch.__version__}, CUDA build: {torch.version.cuda}): nothing to compare")
        return 0
    gpu = resolve_device("cuda")
    print(f"GPU: {describe_device(gpu)}; bf16 supported: {torch.cuda.is_bf16_supported()}")
    texts, groups = build_corpus(args.texts)
    n_cpu = min(args.cpu_texts, len(texts))
    report: dict[str, Any] = {"cpu": describe_cpu(), "gpu": describe_device(gpu), "torch": torch.__version__,
                              "texts": len(texts), "cpu_texts": n_cpu, "specs": []}
    references: dict[str, np.ndarray] = {}
    for spec in [s for s in args.specs.split(",") if s]:
        on_cpu, on_gpu = make_encoder(spec, "cpu"), make_encoder(spec, "cuda")
        cpu_vectors, cpu_rate = timed(on_cpu, texts[:n_cpu])
        gpu_vectors, gpu_rate = timed(on_gpu, texts)
        reference_spec = REFERENCE.get(spec, spec)
        if reference_spec not in references:
            references[reference_spec] = (cpu_vectors if reference_spec == spec
                                          else make_encoder(reference_spec, "cpu").encode(texts[:n_cpu]))
        row = {"spec": spec, "cpu_fingerprint": on_cpu.fingerprint(), "gpu_fingerprint": on_gpu.fingerprint(),
               "cpu_texts_per_s": cpu_rate, "gpu_texts_per_s": gpu_rate, "gpu_over_cpu": gpu_rate / cpu_rate,
               "cosine_gpu_vs_cpu": cosine_summary(gpu_vectors[:n_cpu], cpu_vectors, groups[:n_cpu]),
               "reference": reference_spec,
               "cosine_gpu_vs_cpu_fp32": cosine_summary(gpu_vectors[:n_cpu], references[reference_spec],
                                                        groups[:n_cpu])}
        report["specs"].append(row)
        print(f"{spec:<20} CPU {cpu_rate:8.1f} texts/s  GPU {gpu_rate:9.1f} texts/s  ×{row['gpu_over_cpu']:.1f}  "
              f"fingerprint {'shared' if row['cpu_fingerprint'] == row['gpu_fingerprint'] else 'own'}", flush=True)
    print(f"\n{'spec':<20}{'GPU/CPU':>9}{'cos GPU-CPU mean [95% CI]':>32}{'min':>8}{'cos to CPU fp32 mean':>22}{'min':>8}")
    for row in report["specs"]:
        same, ref = row["cosine_gpu_vs_cpu"], row["cosine_gpu_vs_cpu_fp32"]
        ci = f"{same['mean']['value']:.5f} [{same['mean']['ci_low']:.5f}, {same['mean']['ci_high']:.5f}]"
        print(f"{row['spec']:<20}{row['gpu_over_cpu']:>9.1f}{ci:>32}{same['min']:>8.4f}"
              f"{ref['mean']['value']:>22.5f}{ref['min']:>8.4f}")
    print(f"(cosines: n = {n_cpu} texts, CIs by prompt; GPU texts/s on {len(texts)} texts)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"→ {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
