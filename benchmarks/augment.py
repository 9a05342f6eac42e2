"""Training augmentation, measured: k-fold CV by prompt of BT-MLP and CLF-MLP on the bundled HH-RLHF harmless pairs
without augmentation (the baseline, same run) and with each kind (off-topic, truncated, padded), then a transfer check
on EvalBiasBench (80 pairs, each tagged with the bias it probes) of models trained on the whole demo with and without
off-topic pairs.

Per condition and learner: accuracy [95% CI], the paired Δ to the same learner without augmentation (same folds and
pairs, bootstrap by prompt), Δ vs the length-only control, length-balanced accuracy, and fit seconds
(summed over folds; includes making the synthetic pairs and embedding their new responses) with the ratio to the
baseline's. Augmentation happens inside each training fold only (test pairs are never augmented).

    python benchmarks/augment.py [--encoder minilm:int8] [--folds 5] [--kinds off-topic,truncated,padded]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.registry import REGISTRY
from rewardlab.embed import make_encoder
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.crossval import LearnerSpec, cross_validate
from rewardlab.evaluate.holdout import evaluate_model
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.rewards.augment import DEFAULT_RATIO, parse_augment
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel

LEARNERS = [LearnerSpec("bt-mlp", "bt-mlp"), LearnerSpec("clf-mlp", "clf-mlp")]


def estimate(e: Any) -> dict[str, float]:
    return {"value": round(e.value, 4), "low": round(e.low, 4), "high": round(e.high, 4), "n": e.n}


def crossval_rows(dataset: Any, encoder: Any, conditions: list[str | None], folds: int, seed: int) -> list[dict[str, Any]]:
    """One row per condition and learner; ``vs_none`` is the paired difference in accuracy to the same learner without
    augmentation (same folds, same pairs; bootstrap by prompt group)."""
    rows = []
    baseline: dict[str, np.ndarray] = {}
    for condition in conditions:
        started = time.perf_counter()
        result = cross_validate(dataset, LEARNERS, encoder, k=folds, seed=seed, augment=condition)
        print(f"  cv {condition or 'none'}: {time.perf_counter() - started:.0f}s", flush=True)
        bootstrap = GroupBootstrap(result.pair_group, n_resamples=2000, seed=seed)
        decided = result.pair_target != 0.5
        for spec in LEARNERS:
            audit = result.length_audit[spec.name]
            correct = pairwise_correct(*result.scores[spec.name], result.pair_target)
            baseline.setdefault(spec.name, correct)
            rows.append({"augment": condition or "none", "learner": spec.name,
                         "accuracy": estimate(result.metrics[spec.name]["accuracy"]),
                         "vs_none": estimate(bootstrap.mean(correct - baseline[spec.name], decided)),
                         "minus_length_only": estimate(audit.minus_length_only),
                         "length_balanced": estimate(audit.balanced),
                         "fit_seconds": round(result.fit_seconds[spec.name], 2)})
        if result.length is not None and condition is None:
            rows.append({"augment": "none", "learner": "length-only", "accuracy": estimate(result.length.length_only),
                         "vs_none": None, "minus_length_only": None, "length_balanced": None, "fit_seconds": None})
    return rows


def bias_rows(demo: Any, bench: Any, encoder: Any, conditions: list[str | None], seed: int) -> list[dict[str, Any]]:
    """Train on all of the demo, score EvalBiasBench: accuracy overall and by bias type."""
    rows = []
    feats, _ = featurize_dataset(demo, encoder, "interaction")
    bias = np.array([str(c.meta.get("bias", "?")) for c in bench.comparisons])
    for condition in conditions:
        for spec in LEARNERS:
            model = RewardModel.create(spec.kind, encoder=encoder, seed=seed, augment=condition).fit(demo, feats)
            held = evaluate_model(model, bench, seed=seed)
            correct = pairwise_correct(held.score_a, held.score_b, held.pair_lengths.target)
            by_bias = {str(b): [round(float(correct[bias == b].mean()), 3), int((bias == b).sum())] for b in sorted(set(bias))}
            rows.append({"augment": condition or "none", "learner": spec.name,
                         "accuracy": estimate(held.metrics["accuracy"]),
                         "length_balanced": estimate(held.length_audit.balanced), "by_bias": by_bias})
    return rows


def fmt(e: dict[str, float] | None, signed: bool = False) -> str:
    if e is None:
        return "—"
    sign = "+" if signed else ""
    return f"{e['value']:{sign}.3f} [{e['low']:{sign}.3f}, {e['high']:{sign}.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm:int8")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="off-topic,truncated,padded", help=f"each alone, at ratio {DEFAULT_RATIO}")
    parser.add_argument("--skip-bias", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/augment.json"))
    args = parser.parse_args()
    encoder = make_encoder(args.encoder)
    demo = REGISTRY["hh-harmless-demo"].load()
    conditions: list[str | None] = [None, *(str(s) for s in parse_augment(args.kinds))]
    print(f"{demo!r}; encoder {args.encoder}; {args.folds}-fold CV by prompt; conditions {conditions}", flush=True)
    rows = crossval_rows(demo, encoder, conditions, args.folds, args.seed)
    base_fit = {r["learner"]: r["fit_seconds"] for r in rows if r["augment"] == "none"}
    print(f"\n{'augment':<16}{'learner':<12}{'accuracy [95% CI]':<26}{'Δ vs none (paired)':<28}{'Δ vs length-only':<28}"
          f"{'length-balanced':<26}{'fit s (× none)'}")
    for r in rows:
        fit = "—" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f} (×{r['fit_seconds'] / base_fit[r['learner']]:.2f})"
        print(f"{r['augment']:<16}{r['learner']:<12}{fmt(r['accuracy']):<26}{fmt(r['vs_none'], True):<28}"
              f"{fmt(r['minus_length_only'], True):<28}"
              f"{fmt(r['length_balanced']):<26}{fit}")
    record: dict[str, Any] = {"encoder": args.encoder, "folds": args.folds, "seed": args.seed, "data": repr(demo),
                              "crossval": rows}
    if not args.skip_bias:
        bench = REGISTRY["evalbiasbench"].load()
        bias = bias_rows(demo, bench, encoder, [None, "off-topic"], args.seed)
        kinds = sorted(bias[0]["by_bias"])
        print(f"\nEvalBiasBench ({len(bench.comparisons)} pairs), trained on all of the demo")
        print(f"{'augment':<12}{'learner':<10}{'accuracy [95% CI]':<26}" + "".join(f"{k[:18]:<20}" for k in kinds))
        for r in bias:
            print(f"{r['augment']:<12}{r['learner']:<10}{fmt(r['accuracy']):<26}"
                  + "".join(f"{r['by_bias'][k][0]:.3f} (n={r['by_bias'][k][1]}){'':<6}" for k in kinds))
        record["evalbiasbench"] = bias
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"\n→ {args.out}")


if __name__ == "__main__":
    main()
