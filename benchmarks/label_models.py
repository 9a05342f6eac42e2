"""Label models against their flattened stand-ins: ties (Davidson vs ½-target BT) and rankings (Plackett-Luce vs
the pairwise expansion).

1. **Ties, QA-Feedback** (human pairwise preferences, about a third of them ties): k-fold cross-validation by prompt,
   BT-MLP (ties as a ½ target) beside Davidson-MLP on the same folds and the same embeddings. Per held-out pair:
   - accuracy on the decided pairs (ties left out, as `rewardlab evaluate` counts it);
   - NLL of the decided pairs under σ(Δ) (Davidson's P(a | not a tie) is exactly σ(Δ), so both are read alike);
   - log-likelihood of every pair, ties included, under Davidson's three-outcome model: Davidson-MLP with its own
     ν, BT-MLP with the ν that fits its rewards best on the training pairs (fitted after training: BT has none);
   - mean predicted P(tie) beside the observed tie share.
   Each with n and a 95% CI by prompt; Davidson − BT paired on the same pairs and resamples.
2. **Rankings, synthetic** (no shipped set has full rankings): items with a known linear reward ranked by
   Plackett-Luce draws; PL-linear (listwise) vs BT-linear on every ordered pair of each ranking, trained on the same
   rankings; held-out PL log-likelihood per ranking and Spearman ρ(predicted, true reward) on new items.

    python benchmarks/label_models.py [--folds 5] [--encoder minilm:int8] [--rank-prompts 60,200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.registry import load_named
from rewardlab.embed import make_encoder
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.pairwise import pairwise_correct, preference_probability
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.likelihoods import davidson_log_likelihood, davidson_probabilities, fit_davidson_nu
from rewardlab.rewards.training_set import build_training_set

TIE_LEARNERS = {"BT-MLP (½ target)": "bt-mlp", "Davidson-MLP": "davidson-mlp"}


def _outcome(target: np.ndarray) -> np.ndarray:
    return np.rint(2 * np.asarray(target)).astype(np.int64)  # 0 b won, 1 tie, 2 a won


def ties_study(folds: int, encoder_spec: str, seed: int) -> dict[str, Any]:
    """Cross-validated Davidson vs ½-target BT on QA-Feedback (see the module docstring)."""
    dataset = load_named("qa-feedback")
    features, _ = featurize_dataset(dataset, make_encoder(encoder_spec), "interaction")
    comparisons = dataset.comparisons
    target = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[c.outcome] for c in comparisons])
    groups = dataset.prompt_groups()
    group = np.array([groups[c.prompt_id] for c in comparisons])
    fold_of = dataset.fold_of_prompt(folds, seed)
    pair_fold = np.array([fold_of[c.prompt_id] for c in comparisons])
    per_pair: dict[str, dict[str, np.ndarray]] = {
        name: {k: np.zeros(len(comparisons)) for k in ("diff", "nu")} for name in TIE_LEARNERS}
    fit_seconds = dict.fromkeys(TIE_LEARNERS, 0.0)
    nus: dict[str, list[float]] = {name: [] for name in TIE_LEARNERS}
    for fold in range(folds):
        train = dataset.subset({pid for pid, f in fold_of.items() if f != fold})
        data = build_training_set(train, {rid: features[rid] for rid in train.responses})
        test = pair_fold == fold
        x_a = np.stack([features[c.a] for c, t in zip(comparisons, test) if t])
        x_b = np.stack([features[c.b] for c, t in zip(comparisons, test) if t])
        for name, kind in TIE_LEARNERS.items():
            started = time.perf_counter()
            head = make_head(kind, seed=seed).fit(data)
            fit_seconds[name] += time.perf_counter() - started
            if kind.startswith("davidson"):
                nu = head.label_model_params()["nu"]  # type: ignore[attr-defined]
            else:
                reward = head.predict(data.x)
                nu = fit_davidson_nu(reward[data.pair_a] - reward[data.pair_b], _outcome(data.pair_target))
            nus[name].append(nu)
            per_pair[name]["diff"][test] = head.predict(x_a) - head.predict(x_b)
            per_pair[name]["nu"][test] = nu
    bootstrap = GroupBootstrap(group, seed=seed)
    decided = target != 0.5
    rows: dict[str, dict[str, np.ndarray]] = {}
    for name, values in per_pair.items():
        diff, nu = values["diff"], values["nu"]
        p = np.clip(preference_probability(diff, np.zeros_like(diff)), 1e-12, 1 - 1e-12)
        loglik = np.array([davidson_log_likelihood(d[None], _outcome(t)[None], v)[0]
                           for d, t, v in zip(diff, target, nu)])
        p_tie = np.array([davidson_probabilities(d[None], v)[0, 1] for d, v in zip(diff, nu)])
        rows[name] = {"accuracy (decided)": pairwise_correct(diff, np.zeros_like(diff), target),
                      "NLL decided σ(Δ)": -(target * np.log(p) + (1 - target) * np.log(1 - p)),
                      "log-lik with ties (Davidson)": loglik, "mean P(tie)": p_tie}
    masks = {"accuracy (decided)": decided, "NLL decided σ(Δ)": decided, "log-lik with ties (Davidson)": None,
             "mean P(tie)": None}
    metrics = {name: {m: bootstrap.mean(v, masks[m]) for m, v in values.items()} for name, values in rows.items()}
    first, second = list(TIE_LEARNERS)
    paired = {m: bootstrap.mean(rows[second][m] - rows[first][m], masks[m]) for m in masks}
    return {"dataset": "qa-feedback", "pairs": len(comparisons), "ties": int((~decided).sum()),
            "prompts": int(len(np.unique(group))), "folds": folds, "encoder": encoder_spec, "seed": seed,
            "observed_tie_share": bootstrap.mean((~decided).astype(float)), "metrics": metrics,
            "davidson_minus_bt": paired, "nu_per_fold": nus,
            "fit_seconds": {k: round(v, 1) for k, v in fit_seconds.items()}}


def pl_rankings(n_prompts: int, per_prompt: int, w: np.ndarray, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Items x, their reward x·w, and one Plackett-Luce ranking per prompt (sort by reward + Gumbel noise)."""
    x = rng.normal(size=(n_prompts * per_prompt, len(w))).astype(np.float32)
    reward = x @ w
    items = np.arange(len(x)).reshape(n_prompts, per_prompt)
    return x, reward, [row[np.argsort(-(reward[row] + rng.gumbel(size=per_prompt)))] for row in items]


def _pl_log_likelihood(reward: np.ndarray, ranking: np.ndarray) -> float:
    r = reward[ranking]
    rest = np.logaddexp.accumulate(r[::-1])[::-1]
    return float((r - rest).sum())


#: head settings for the ranking runs: the defaults, and a fit to convergence (the maximum-likelihood estimate; with
#: the defaults a listwise head takes one optimiser step per epoch where the expansion takes n(n−1)/2 times as many)
FITS: dict[str, dict[str, Any]] = {"defaults": {},
                                   "converged": {"weight_decay": 0.0, "lr": 2e-2, "val_fraction": 0.0, "max_epochs": 150}}


def rankings_study(prompt_counts: list[int], seeds: int, fit: dict[str, Any], per_prompt: int = 5,
                   dim: int = 16) -> dict[str, Any]:
    """PL-linear vs BT-linear on the pairwise expansion of the same synthetic rankings (see the module docstring)."""
    from scipy.stats import spearmanr

    from rewardlab.rewards.training_set import TrainingSet
    results: dict[str, Any] = {}
    for n_prompts in prompt_counts:
        loglik: dict[str, list[float]] = {"PL-linear": [], "BT-linear (pairs)": []}
        rho: dict[str, list[float]] = {"PL-linear": [], "BT-linear (pairs)": []}
        groups: list[int] = []
        seed_of_rho: list[int] = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            w = rng.normal(size=dim)
            w *= 2.0 / np.linalg.norm(w)
            x, _, rankings = pl_rankings(n_prompts, per_prompt, w, rng)
            x_test, reward_test, test_rankings = pl_rankings(500, per_prompt, w, rng)
            i, j = np.triu_indices(per_prompt, 1)
            empty = np.zeros(0, dtype=np.int64)
            data = TrainingSet(x=x, response_ids=[f"r{k}" for k in range(len(x))],
                               group=np.arange(len(x)) // per_prompt,
                               pair_a=np.concatenate([r[i] for r in rankings]),
                               pair_b=np.concatenate([r[j] for r in rankings]),
                               pair_target=np.ones(len(rankings) * len(i), np.float32), rating_item=empty,
                               rating_value=np.zeros(0, np.float32), label_item=empty,
                               label_value=np.zeros(0, np.float32),
                               pair_from_ranking=np.ones(len(rankings) * len(i), bool), rankings=rankings)
            for name, kind in (("PL-linear", "pl-linear"), ("BT-linear (pairs)", "bt-linear")):
                head = make_head(kind, seed=seed, **fit).fit(data)
                predicted = head.predict(x_test)
                loglik[name] += [_pl_log_likelihood(predicted, r) for r in test_rankings]
                rho[name].append(float(spearmanr(predicted, reward_test).statistic))
            groups += [seed * 10_000 + k for k in range(len(test_rankings))]
            seed_of_rho.append(seed)
        bootstrap = GroupBootstrap(np.array(groups), seed=0)
        first, second = list(loglik)
        results[str(n_prompts)] = {
            "train_rankings": n_prompts, "items_per_ranking": per_prompt, "seeds": seeds,
            "held_out_pl_loglik": {k: bootstrap.mean(np.array(v)) for k, v in loglik.items()},
            "pl_minus_bt_loglik": bootstrap.mean(np.array(loglik[first]) - np.array(loglik[second])),
            "spearman_per_seed": rho,
        }
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, Estimate):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--encoder", default="minilm:int8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rank-prompts", default="60,200", help="training rankings per run, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="synthetic ranking runs per size")
    parser.add_argument("--skip-ties", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/label_models.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    record: dict[str, Any] = {"cpu": platform.processor() or platform.machine()}
    if not args.skip_ties:
        ties = ties_study(args.folds, args.encoder, args.seed)
        record["ties"] = ties
        print(f"\nQA-Feedback, {ties['folds']}-fold CV by prompt: {ties['pairs']} pairs ({ties['ties']} ties) on "
              f"{ties['prompts']} prompts; observed tie share {ties['observed_tie_share']}")
        print(f"{'metric':32s} " + " ".join(f"{n:>28s}" for n in TIE_LEARNERS) + f" {'Davidson − BT':>28s}")
        for metric in ties["davidson_minus_bt"]:
            cells = [str(ties["metrics"][n][metric]) for n in TIE_LEARNERS]
            print(f"{metric:32s} " + " ".join(f"{c:>28s}" for c in cells)
                  + f" {ties['davidson_minus_bt'][metric]!s:>28s}")
        print(f"n: {ties['metrics'][list(TIE_LEARNERS)[0]]['accuracy (decided)'].n} decided pairs, {ties['pairs']} "
              f"in all; ν per fold: { {k: [round(v, 3) for v in vs] for k, vs in ties['nu_per_fold'].items()} }")
    record["rankings"] = {}
    print("\nSynthetic Plackett-Luce rankings (5 items, 16-dim linear reward): held-out PL log-likelihood per ranking "
          "(500 test rankings per seed)")
    for fit_name, fit in FITS.items():
        ranks = rankings_study([int(n) for n in args.rank_prompts.split(",")], args.seeds, fit)
        record["rankings"][fit_name] = {"params": fit, "results": ranks}
        for n, res in ranks.items():
            ll = res["held_out_pl_loglik"]
            rho = {k: round(float(np.mean(v)), 4) for k, v in res["spearman_per_seed"].items()}
            print(f"[{fit_name}] {n:>4s} training rankings × {res['seeds']} seeds: "
                  + ", ".join(f"{k} {v}" for k, v in ll.items())
                  + f"; PL − BT {res['pl_minus_bt_loglik']}; mean Spearman ρ {rho}")
    record["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(record), indent=2), encoding="utf-8")
    print(f"\nwrote {args.out} ({record['seconds']} s)")


if __name__ == "__main__":
    main()
