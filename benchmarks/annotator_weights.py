"""Annotator-quality weights against careless annotators, measured on AlpacaEval candidate pools.

Pairs of candidates to the same prompt (training prompts: 70% of the pools) are each labelled by 3 of 10 simulated
annotators (`SimulatedAnnotator`, Bradley-Terry on the judge's log-odds). Two of the ten (20%) are careless:
flip_rate 0.5, i.e. coin flips. A BT-MLP is trained on

- ``clean``: the same pairs and annotator assignments, every annotator careful (the reference: nothing lost);
- ``none``: with the careless annotators, unweighted (what is lost to them);
- ``agreement`` and ``dawid-skene``: with the careless annotators, each comparison weighted by its annotator's
  estimated reliability (`rewardlab.rewards.annotator_quality`, estimated from the training labels alone).

Reported per condition: accuracy vs gold on every within-prompt pair of the held-out pools (pairs whose utilities
differ), with a 95% CI by prompt, the paired difference to ``none``, and the share of the accuracy lost to the careless
annotators that the weights recover, (acc − acc_none) / (acc_clean − acc_none), pooled over seeds. The careless
annotators' estimated reliability and weight are reported too. One embedding of every candidate serves all fits.

    python benchmarks/annotator_weights.py [--prompts 300] [--per-prompt 8] [--items 500] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.collect.simulate import Pool, SimulatedAnnotator, draw_pairs
from rewardlab.data.candidates import CandidateSet, candidates_dataset, load_candidates, subsample_pools
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison
from rewardlab.embed import make_encoder
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel
from rewardlab.studies.bon_noise import label_utilities

CONDITIONS = ("clean", "none", "agreement", "dawid-skene")


def annotate(sets: list[CandidateSet], team: list[SimulatedAnnotator], n_items: int, per_item: int,
             seed: int) -> FeedbackDataset:
    """``n_items`` same-prompt pairs, each labelled by ``per_item`` distinct annotators of ``team``."""
    rng = np.random.default_rng(seed)
    pool = Pool.of(sets)
    first, second = draw_pairs(pool, n_items, "same-prompt", rng)
    dataset = FeedbackDataset("annotated")
    prompt_ids = [dataset.add_prompt(s.prompt) for s in sets]
    flat = [(i, text) for i, s in enumerate(sets) for text in s.responses]
    for index in np.unique(np.concatenate([first, second])):
        dataset.add_response(prompt_ids[flat[index][0]], flat[index][1])
    for a, b in zip(first, second):
        for k in rng.choice(len(team), size=per_item, replace=False):
            p = team[k].prob_first_wins(np.array([pool.gold_z[a] - pool.gold_z[b]]),
                                        np.array([pool.log_length_z[a] - pool.log_length_z[b]]))[0]
            dataset.add(Comparison(prompt_ids[pool.set_index[a]], pool.response_ids[a], pool.response_ids[b],
                                   "a" if rng.random() < p else "b", annotator_id=team[k].annotator_id))
    return dataset


def gold_pairs(sets: list[CandidateSet], rows: dict[str, np.ndarray], dataset: FeedbackDataset
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every within-prompt pair of the test pools with distinct utilities: (x_a, x_b, a better?, prompt index)."""
    x_a, x_b, better, group = [], [], [], []
    for g, s in enumerate(sets):
        pid = next(p for p, prompt in dataset.prompts.items() if prompt.text == s.prompt)
        ids = [rid for rid in dataset.responses if dataset.responses[rid].prompt_id == pid]
        by_text = {dataset.responses[rid].text: rid for rid in ids}
        gold = s.require_gold()
        for i in range(len(s)):
            for j in range(i + 1, len(s)):
                if gold[i] != gold[j] and s.responses[i] != s.responses[j]:
                    x_a.append(rows[by_text[s.responses[i]]])
                    x_b.append(rows[by_text[s.responses[j]]])
                    better.append(gold[i] > gold[j])
                    group.append(g)
    return np.stack(x_a), np.stack(x_b), np.array(better), np.array(group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", default="alpaca-eval")
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--per-prompt", type=int, default=8)
    parser.add_argument("--items", type=int, default=500, help="pairs annotated (each by --per-item annotators)")
    parser.add_argument("--per-item", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=10)
    parser.add_argument("--careless", type=float, default=0.2, help="share of annotators flipping at random")
    parser.add_argument("--beta", type=float, default=3.0, help="rationality of the careful annotators")
    parser.add_argument("--head", default="bt-mlp")
    parser.add_argument("--encoder", default="minilm:int8")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/annotator_weights.json"))
    args = parser.parse_args()
    started = time.perf_counter()

    sets = subsample_pools(label_utilities(load_candidates(args.candidates, args.prompts), "judge-logit"), args.per_prompt, 0)
    order = np.random.default_rng(0).permutation(len(sets))
    n_test = int(round(0.3 * len(sets)))
    test, train = [sets[i] for i in order[:n_test]], [sets[i] for i in order[n_test:]]
    encoder = make_encoder(args.encoder)
    everything = candidates_dataset(sets)
    rows, _ = featurize_dataset(everything, encoder, "interaction")
    x_a, x_b, better, group = gold_pairs(test, rows, everything)
    print(f"{len(sets)} pools ({len(train)} train, {len(test)} test), {len(better)} gold test pairs; "
          f"embedded in {time.perf_counter() - started:.0f}s", flush=True)

    n_careless = int(round(args.careless * args.annotators))
    careful = [SimulatedAnnotator(f"careful{j}", beta=args.beta) for j in range(args.annotators - n_careless)]
    careless = [SimulatedAnnotator(f"careless{j}", beta=args.beta, flip_rate=0.5) for j in range(n_careless)]
    bootstrap = GroupBootstrap(group, n_resamples=2000, seed=0)
    correct: dict[str, list[np.ndarray]] = {c: [] for c in CONDITIONS}
    quality: dict[str, list[dict[str, Any]]] = {"agreement": [], "dawid-skene": []}
    for seed in range(args.seeds):
        noisy = annotate(train, careful + careless, args.items, args.per_item, seed)
        # the same draws with every annotator careful: the careless annotators' rows replaced by careful twins
        clean = annotate(train, careful + [SimulatedAnnotator(a.annotator_id, beta=args.beta) for a in careless],
                         args.items, args.per_item, seed)
        for condition in CONDITIONS:
            fit_started = time.perf_counter()
            model = RewardModel.create(args.head, encoder=encoder, features="interaction", seed=seed,
                                       annotator_weights="none" if condition in ("clean", "none") else condition)
            model.fit(clean if condition == "clean" else noisy, feature_rows=rows)
            hit = (model.predict(x_a) > model.predict(x_b)) == better
            correct[condition].append(hit.astype(np.float64))
            if condition in quality:
                info = model.train_info["annotator_quality"]["annotators"]
                quality[condition].append({name: {"reliability": round(v["reliability"]["value"], 3),
                                                  "weight": round(v["weight"], 3)} for name, v in info.items()})
            print(f"  seed {seed} {condition}: accuracy {hit.mean():.4f} ({time.perf_counter() - fit_started:.0f}s)",
                  flush=True)

    mean = {c: np.mean(correct[c], axis=0) for c in CONDITIONS}  # per gold pair, averaged over seeds
    lost = float(mean["clean"].mean() - mean["none"].mean())
    results: dict[str, Any] = {}
    print(f"\n{'condition':<12} {'accuracy vs gold [95% CI]':<28} {'vs none [95% CI]':<28} recovered")
    for c in CONDITIONS:
        acc = bootstrap.mean(mean[c])
        diff = bootstrap.mean(mean[c] - mean["none"])
        recovered = (acc.value - mean["none"].mean()) / lost if lost > 0 and c not in ("clean", "none") else None
        results[c] = {"accuracy": acc.as_dict(), "vs_none": diff.as_dict(), "recovered_share": recovered,
                      "per_seed": [float(x.mean()) for x in correct[c]]}
        print(f"{c:<12} {acc!s:<28} {diff!s:<28} {'' if recovered is None else f'{recovered:.0%}'}")
    for method, per_seed in quality.items():
        weights = [[v["weight"] for k, v in q.items() if k.startswith("careless")] for q in per_seed]
        print(f"{method}: careless annotators' weights {weights} (mean weight over labels is 1)")
    record = {"config": vars(args) | {"out": str(args.out)}, "lost_to_careless": lost, "results": results,
              "estimated_quality": quality, "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"total {time.perf_counter() - started:.0f}s → {args.out}")


if __name__ == "__main__":
    main()
