"""Embedding with and without the cache, side by side in one run: the cost a second quickstart avoids.

Baseline: the encoder embeds every unique text of the bundled HH-RLHF demo (prompt tails + responses).
rewardlab: the same texts through `embed_texts` after the cache is filled (cold pass also reported).
Prints a table with texts/s and the speed-up ratio, checks the vectors are identical, writes JSON.

    python benchmarks/embedding_cache.py [--encoder minilm] [--limit 600] [--out benchmarks/results/cache.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from rewardlab.data import load_named
from rewardlab.embed import embed_texts, make_encoder
from rewardlab.rewards.features import dataset_texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--limit", type=int, default=600, help="demo rows to use (2 responses + 1 prompt each)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embedding_cache.json"))
    args = parser.parse_args()

    dataset = load_named("hh-harmless-demo", args.limit)
    texts = list(dict.fromkeys(dataset_texts(dataset)))
    encoder = make_encoder(args.encoder)
    encoder.encode(texts[:4])  # load weights outside the timings

    started = time.perf_counter()
    baseline = encoder.encode(texts)
    baseline_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as cache_dir:
        cold, cold_stats = embed_texts(texts, encoder, cache_dir=cache_dir)
        warm, warm_stats = embed_texts(texts, encoder, cache_dir=cache_dir)

    rows = [
        ("encoder only (baseline)", baseline_s, 1.0),
        ("rewardlab, cold cache", cold_stats.seconds, baseline_s / cold_stats.seconds),
        ("rewardlab, warm cache", warm_stats.seconds, baseline_s / warm_stats.seconds),
    ]
    print(f"{len(texts)} unique texts, encoder {args.encoder}")
    print(f"{'variant':<26}{'seconds':>10}{'texts/s':>12}{'× baseline':>12}")
    for name, seconds, ratio in rows:
        print(f"{name:<26}{seconds:>10.2f}{len(texts) / seconds:>12.1f}{ratio:>12.1f}")
    identical = bool(np.array_equal(cold, warm))
    max_diff = float(np.abs(cold - baseline).max())
    print(f"warm == cold vectors: {identical}; max |cold - baseline| = {max_diff:.2e}; "
          f"warm hit rate {warm_stats.hit_rate:.0%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "encoder": args.encoder, "texts": len(texts),
        "results": [{"variant": n, "seconds": s, "texts_per_s": len(texts) / s, "speedup": r} for n, s, r in rows],
        "warm_equals_cold": identical, "max_abs_diff_vs_baseline": max_diff,
    }, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
