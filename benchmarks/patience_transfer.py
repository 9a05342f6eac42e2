"""Does a shorter early-stopping patience lose accuracy? Measured across the shipped sets, as the recipe study does.

The torch heads stop ``patience`` epochs after their best validation epoch and keep the best epoch's weights, so
every epoch after the best one is paid for and thrown away (on the quickstart data the best epoch is 1–2 of 6–7).
A shorter patience is a change of a recipe default: it may only be made if it transfers. This runs the recipe
study's sets and splits (`rewardlab.studies.rm_recipes`: each set split by prompt 70/30, seed 0; minilm:int8) and,
for each head and training seed, fits the same model with the baseline patience (5, the default before) and with
a shorter one, then scores both on the held-out part of every set (in-set and cross-set transfers; pairs whose
prompt was seen in training left out). Reported: accuracy (mean over the seeds) with a 95% bootstrap CI over prompt
groups, and the paired difference (short − baseline) on the same resamples, with fit CPU seconds and epochs.

    python benchmarks/patience_transfer.py [--baseline 5] [--patience 2] [--seeds 0,1,2] [--heads bt-mlp-debiased,bt-mlp]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.embed.base import make_encoder
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.torch_training import MLP_PATIENCE
from rewardlab.studies.rm_recipes import RmRecipesConfig, load_set, split_set

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_cpu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=int, default=5, help="the patience compared against (the default before 2)")
    parser.add_argument("--patience", type=int, default=MLP_PATIENCE, help="the shorter patience (the MLP default)")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (the splits keep seed 0)")
    parser.add_argument("--heads", default="bt-mlp-debiased,bt-mlp")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/patience_transfer.json"))
    args = parser.parse_args()
    from rewardlab.rewards.model import RewardModel

    config = RmRecipesConfig()
    encoder = make_encoder(config.encoder)
    baseline, short = args.baseline, args.patience
    seeds = [int(s) for s in args.seeds.split(",")]
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    splits, rows = {}, {}
    for source in config.sets:
        dataset = load_set(source, config)
        splits[dataset.name] = split_set(dataset, config)
        rows[dataset.name], _ = featurize_dataset(dataset, encoder, "interaction")
    tests = {name: s.test for name, s in splits.items()}
    x = {name: (np.stack([rows[name][a] for _, a, _ in p.ids]), np.stack([rows[name][b] for _, _, b in p.ids]))
         for name, p in tests.items()}
    cells: list[dict[str, Any]] = []
    seconds = {baseline: 0.0, short: 0.0}
    epochs: dict[int, list[int]] = {baseline: [], short: []}
    for train_name, split in splits.items():
        train_groups = set(split.train.prompt_groups().values())
        for head in heads:
            correct: dict[int, dict[str, list[np.ndarray]]] = {p: {n: [] for n in tests} for p in (baseline, short)}
            for seed in seeds:
                for patience in (baseline, short):
                    started = time.process_time()
                    model = RewardModel.create(head, encoder=encoder, seed=seed, patience=patience)
                    model.fit(split.train, feature_rows=rows[train_name])
                    seconds[patience] += time.process_time() - started
                    epochs[patience].append(int(model.head.fit_log["epochs"]))
                    for name, p in tests.items():
                        correct[patience][name].append(pairwise_correct(model.predict(x[name][0]),
                                                                        model.predict(x[name][1]), p.target))
            for name, p in tests.items():
                keep = p.unseen_by(train_groups) & (p.target != 0.5)
                boot = GroupBootstrap(p.group[keep], n_resamples=args.resamples, seed=0)
                acc = {pat: np.mean(correct[pat][name], axis=0)[keep] for pat in (baseline, short)}  # mean over seeds
                cells.append({"train": train_name, "test": name, "head": head, "cross": name != train_name,
                              "pairs": int(keep.sum()),
                              f"acc_p{baseline}": boot.mean(acc[baseline]).as_dict(),
                              f"acc_p{short}": boot.mean(acc[short]).as_dict(),
                              "delta": boot.mean(acc[short] - acc[baseline]).as_dict()})
                c = cells[-1]
                print(f"{train_name:>18} → {name:<18} {head:<16} n={c['pairs']:>5}  p{baseline} "
                      f"{c[f'acc_p{baseline}']['value']:.3f}  p{short} {c[f'acc_p{short}']['value']:.3f}  Δ "
                      f"{c['delta']['value']:+.3f} [{c['delta']['ci_low']:+.3f}, {c['delta']['ci_high']:+.3f}]", flush=True)
    cross = [c for c in cells if c["cross"]]
    below = [c for c in cross if c["delta"]["ci_high"] < 0]
    above = [c for c in cross if c["delta"]["ci_low"] > 0]
    summary = {
        "cpu": describe_cpu(), "seeds": seeds, "heads": heads, "patience": {"baseline": baseline, "short": short},
        "fit_cpu_seconds": {str(k): round(v, 1) for k, v in seconds.items()},
        "mean_epochs": {str(k): round(float(np.mean(v)), 2) for k, v in epochs.items()},
        "cross_transfers": len(cross),
        "mean_delta_cross": round(float(np.mean([c["delta"]["value"] for c in cross])), 4),
        "mean_delta_in_set": round(float(np.mean([c["delta"]["value"] for c in cells if not c["cross"]])), 4),
        "cross_ci_below_0": len(below), "cross_ci_above_0": len(above),
    }
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**summary, "cells": cells}, indent=2) + "\n")


if __name__ == "__main__":
    main()
