"""Encoder throughput side by side: sentence-transformers fp32 (baseline) against every rewardlab variant.

Corpus: HH-RLHF harmless dialogues plus AlpacaEval model outputs from ``../shared/data`` (a few thousand
unique texts of mixed length, many past the 256-token limit). Each encoder runs in its own process, so
its peak memory is its own; the one-off ONNX builds happen first and model loading happens before the
clock starts (both reported separately). All variants run in ``--rounds`` rounds, in alternating order,
and each keeps its best round: a 2-core machine's speed drifts by ±10% over minutes, and interleaving
keeps that drift out of the ratios. For every variant: texts/s, ratio to baseline, cosine to the
baseline's vectors (mean / min), peak RSS.

Then the downstream check: BT-MLP k-fold held-out accuracy on the bundled HH-RLHF harmless pairs with
fp32 embeddings against each lossy variant's, on the same folds, with a paired cluster-bootstrap CI on
the difference. Writes everything to JSON.

    python benchmarks/embed_throughput.py [--hh 1000] [--alpaca 1000] [--rounds 2] [--variants minilm,minilm:int8]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import peak_rss_mb, reset_peak_rss

from rewardlab.data import load_named
from rewardlab.data.registry import shared_data_dir

VARIANTS = ("minilm", "minilm:bf16", "minilm:onnx", "minilm:int8")
BASELINE = "sentence-transformers fp32"


def build_corpus(n_hh: int, n_alpaca: int, seed: int = 0) -> list[str]:
    """Unique HH-RLHF dialogues and AlpacaEval outputs, sampled reproducibly and shuffled together."""
    root = shared_data_dir()
    dialogues: set[str] = set()
    with gzip.open(root / "hh-rlhf-harmless-base-test" / "test.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            dialogues.update((row["chosen"].strip(), row["rejected"].strip()))
    outputs: set[str] = set()
    path = root / "alpaca-eval-weighted-gpt4-turbo" / "annotations_weighted_gpt4_turbo.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line)["output"].strip()
            if text:
                outputs.add(text)
    rng = random.Random(seed)
    texts = rng.sample(sorted(dialogues), min(n_hh, len(dialogues))) + rng.sample(sorted(outputs), min(n_alpaca, len(outputs)))
    rng.shuffle(texts)
    return texts


def _encode_worker(variant: str, corpus_file: str, vectors_file: str, queue: Any) -> None:
    """Runs in a fresh process: load (and build) the encoder, time one pass over the corpus."""
    reset_peak_rss()  # a spawned child starts with its parent's high-water mark
    texts = json.loads(Path(corpus_file).read_text(encoding="utf-8"))
    started = time.perf_counter()
    if variant == BASELINE:
        from sentence_transformers import SentenceTransformer

        from rewardlab.embed.minilm import minilm_path

        model = SentenceTransformer(str(minilm_path()), device="cpu")  # max_seq_length 256 from the model's config

        def encode(batch: list[str]) -> np.ndarray:
            return model.encode(batch, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    else:
        from rewardlab.embed import make_encoder

        encoder = make_encoder(variant)
        encode = encoder.encode  # type: ignore[assignment]
    encode(texts[:8])  # load weights (and build the ONNX graph) outside the timing
    setup_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = np.asarray(encode(texts), dtype=np.float32)
    seconds = time.perf_counter() - started
    np.save(vectors_file, vectors)
    queue.put({"setup_s": setup_s, "seconds": seconds, "peak_rss_mb": peak_rss_mb()})


def run_variant(variant: str, corpus_file: Path, work: Path) -> tuple[dict[str, Any], np.ndarray]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    vectors_file = work / f"{abs(hash(variant))}.npy"
    process = context.Process(target=_encode_worker, args=(variant, str(corpus_file), str(vectors_file), queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"variant {variant} failed (exit code {process.exitcode})")
    return queue.get(), np.load(vectors_file)


def downstream(variants: list[str], folds: int, seeds: int) -> list[dict[str, Any]]:
    """BT-MLP held-out accuracy with fp32 vs each variant's embeddings, same folds, paired CI per seed pool."""
    from rewardlab.embed import make_encoder
    from rewardlab.evaluate.bootstrap import GroupBootstrap
    from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
    from rewardlab.evaluate.pairwise import paired_difference, pairwise_correct

    dataset = load_named("hh-harmless-demo")
    learners = [LearnerSpec(f"BT-MLP seed {s}", "bt-mlp") for s in range(seeds)]
    results = {}
    for variant in ["minilm", *variants]:
        encoder = make_encoder(variant)
        results[variant] = [cross_validate(dataset, [learners[seed]], encoder, k=folds, seed=seed) for seed in range(seeds)]
    rows = []
    for variant in ["minilm", *variants]:
        correct, reference, groups, decided = [], [], [], []
        accuracy = []
        for seed in range(seeds):
            ours, ref = results[variant][seed], results["minilm"][seed]
            if not np.array_equal(ours.pair_group, ref.pair_group):
                raise SystemExit("folds differ between encoders; the paired comparison would be invalid")
            name = learners[seed].name
            correct.append(pairwise_correct(*ours.scores[name], ours.pair_target))
            reference.append(pairwise_correct(*ref.scores[name], ref.pair_target))
            groups.append(ours.pair_group)
            decided.append(ours.pair_target != 0.5)
            accuracy.append(ours.metrics[name]["accuracy"].value)
        bootstrap = GroupBootstrap(np.concatenate(groups), n_resamples=2000, seed=0)
        mask = np.concatenate(decided)
        acc = bootstrap.mean(np.concatenate(correct).astype(float), mask)
        diff = paired_difference(np.concatenate(correct), np.concatenate(reference), mask, bootstrap)
        print(f"  {variant:<14} accuracy {acc}   Δ vs fp32 {diff.value:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}]"
              f"   (per seed: {', '.join(f'{a:.3f}' for a in accuracy)})", flush=True)
        rows.append({"variant": variant, "accuracy": acc.as_dict(), "accuracy_per_seed": accuracy,
                     "difference_vs_fp32": diff.as_dict(), "pairs": int(mask.sum() // seeds),
                     "ci_includes_zero": bool(diff.low <= 0 <= diff.high)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hh", type=int, default=1000, help="HH-RLHF dialogues in the corpus")
    parser.add_argument("--alpaca", type=int, default=1000, help="AlpacaEval outputs in the corpus")
    parser.add_argument("--rounds", type=int, default=2, help="timed passes per variant, interleaved; best kept")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="head-training seeds pooled in the downstream check")
    parser.add_argument("--skip-downstream", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embed_throughput.json"))
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]

    texts = build_corpus(args.hh, args.alpaca)
    from rewardlab.embed.minilm import MAX_TOKENS, load_minilm_tokenizer, minilm_path

    lengths = np.array([len(e.ids) for e in load_minilm_tokenizer(minilm_path(), MAX_TOKENS).encode_batch(texts)])
    print(f"corpus: {len(texts)} unique texts ({args.hh} HH-RLHF dialogues + {args.alpaca} AlpacaEval outputs); "
          f"tokens per text mean {lengths.mean():.0f}, median {np.median(lengths):.0f}, "
          f"{(lengths == MAX_TOKENS).mean():.0%} truncated at {MAX_TOKENS}")

    from rewardlab.embed import make_encoder

    for variant in variants:  # build ONNX graphs now, so no timed process pays for (or measures memory of) a build
        encoder = make_encoder(variant)
        if hasattr(encoder, "model_file"):
            encoder.model_file()

    everyone = [BASELINE, *variants]
    best: dict[str, dict[str, Any]] = {}
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus_file = Path(tmp) / "corpus.json"
        corpus_file.write_text(json.dumps(texts), encoding="utf-8")
        for round_index in range(args.rounds):
            for variant in everyone if round_index % 2 == 0 else everyone[::-1]:
                stats, vectors[variant] = run_variant(variant, corpus_file, Path(tmp))
                stats["rate"] = len(texts) / stats["seconds"]
                print(f"  round {round_index + 1}: {variant:<28} {stats['rate']:7.1f} texts/s", flush=True)
                if variant not in best or stats["rate"] > best[variant]["rate"]:
                    best[variant] = stats
    base_rate = best[BASELINE]["rate"]
    rows: list[dict[str, Any]] = []
    for variant in everyone:
        cosine = (vectors[variant] * vectors[BASELINE]).sum(1)
        stats = best[variant]
        rows.append({"variant": variant, "texts_per_s": stats["rate"], "ratio": stats["rate"] / base_rate,
                     "cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min()),
                     "cosine_p01": float(np.percentile(cosine, 1)), "peak_rss_mb": stats["peak_rss_mb"],
                     "load_s": stats["setup_s"], "seconds": stats["seconds"]})

    print(f"\n{'variant':<28}{'texts/s':>9}{'× ST fp32':>11}{'cos mean':>10}{'cos min':>9}{'peak MB':>9}")
    for row in rows:
        print(f"{row['variant']:<28}{row['texts_per_s']:>9.1f}{row['ratio']:>11.2f}{row['cosine_mean']:>10.4f}"
              f"{row['cosine_min']:>9.4f}{row['peak_rss_mb']:>9.0f}")

    report: dict[str, Any] = {"corpus": {"texts": len(texts), "hh": args.hh, "alpaca": args.alpaca,
                                          "mean_tokens": float(lengths.mean())}, "rounds": args.rounds,
                              "throughput": rows}
    if not args.skip_downstream:
        lossy = [r["variant"] for r in rows if r["variant"] not in (BASELINE, "minilm") and r["cosine_min"] < 0.9999]
        print(f"\ndownstream: BT-MLP {args.folds}-fold held-out accuracy on HH-RLHF harmless (2,308 pairs), "
              f"{args.seeds} seeds pooled; fp32 vs {', '.join(lossy) or 'nothing lossy'}")
        report["downstream"] = downstream(lossy, args.folds, args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
