"""How long `rewardlab audit` takes, beside the held-out evaluation it builds on, in one run.

The quickstart's recipe (the default head, MiniLM int8, interaction features) is trained on 80% of the prompts of the
bundled HH-RLHF harmless data (`FeedbackDataset.split`, by prompt) and audited on the other 20% with every
perturbation probe (200 responses each) and EvalBiasBench. The baseline is `evaluate_model` on the same held-out pairs
(what `rewardlab evaluate --model` runs). Both are timed twice: cold (the probes' texts not yet embedded; the held-out
responses already are) and warm (every text cached), and the table prints their ratio.
The issue's target: an audit with all probes in ≤ 3 min on 2 cores with embeddings cached.

    python benchmarks/audit_speed.py [--out benchmarks/results/audit_speed.json] [--card docs/audit]

With ``--card`` the warm run's card is written there as well (the README's example).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from machine import describe_cpu

from rewardlab.audit import AuditSettings, build_card, run_audit
from rewardlab.data.registry import REGISTRY
from rewardlab.evaluate.holdout import evaluate_model
from rewardlab.report import write_report
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES, DEFAULT_HEAD
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/audit_speed.json"))
    parser.add_argument("--card", type=Path, default=None, help="Also write the warm run's card to this folder.")
    parser.add_argument("--cache-dir", type=Path, default=None, help="Embedding cache (default: a fresh temp dir).")
    args = parser.parse_args()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="audit-bench-cache-"))

    data = REGISTRY["hh-harmless-demo"].load()
    train, held_out = data.split(by="prompt", test_size=0.2, seed=0)
    fixed = REGISTRY["evalbiasbench"].load() if REGISTRY["evalbiasbench"].available() else None
    started = time.perf_counter()
    model = RewardModel.create(DEFAULT_HEAD, features=DEFAULT_FEATURES, cache_dir=cache).fit(train)
    train_seconds = time.perf_counter() - started
    featurize_dataset(held_out, model.encoder, model.features, cache_dir=cache)  # "cold" = only the probes' texts new
    settings = AuditSettings()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model.save(Path(tmp) / "model")
        rows = []
        for state in ("cold", "warm"):
            t0 = time.perf_counter()
            evaluate_model(model, held_out)
            evaluate_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            audit = run_audit(model_dir, model, held_out, settings, fixed_probe_set=fixed)
            audit_seconds = time.perf_counter() - t0
            rows.append({"state": state, "evaluate_seconds": round(evaluate_seconds, 2),
                         "audit_seconds": round(audit_seconds, 2), "ratio": round(audit_seconds / evaluate_seconds, 1)})
        if args.card is not None:
            args.card.mkdir(parents=True, exist_ok=True)
            (args.card / "audit.json").write_text(json.dumps(audit.record, indent=2, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
            write_report(build_card(audit.record), args.card, html=True)
    print(f"CPU: {describe_cpu()}; held-out: {len(held_out.comparisons)} pairs; probes: all, "
          f"{settings.probe_items} responses each; fixed probes: {'evalbiasbench' if fixed else 'none'}; "
          f"training (embeddings included): {train_seconds:.0f} s")
    print(f"{'state':<6} {'evaluate (s)':>13} {'audit (s)':>10} {'audit / evaluate':>17}")
    for row in rows:
        print(f"{row['state']:<6} {row['evaluate_seconds']:>13.2f} {row['audit_seconds']:>10.2f} {row['ratio']:>17.1f}")
    warm = rows[-1]["audit_seconds"]
    print(f"target: warm audit ≤ 180 s — {'met' if warm <= 180 else 'NOT met'} ({warm:.1f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": describe_cpu(), "held_out_pairs": len(held_out.comparisons), "rows": rows,
                                    "target_seconds": 180, "met": warm <= 180}, indent=2) + "\n", encoding="utf-8")
    print(f"record: {args.out}")


if __name__ == "__main__":
    main()
