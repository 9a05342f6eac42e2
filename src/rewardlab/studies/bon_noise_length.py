"""The best-of-n noise study's length rules: the gold of picking the longest or the shortest of n test candidates.

The rules need no model, so they run on the study's test pools with the learners' estimator and bootstrap (see
`rewardlab.evaluate.best_of_n.length_rules`); each learner's picks are then read against the better rule, paired by
prompt, and its scores against length (Spearman within each pool). Apart from `rewardlab.studies.bon_noise` so that
module stays one concern: running the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rewardlab.data.candidates import CandidateSet
from rewardlab.evaluate.best_of_n import (
    BestOfNResult,
    LengthRules,
    candidate_lengths,
    kl_best_of_n,
    length_rules,
    spearman,
    summarize_length_rules,
)
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.length_controls import LENGTH_UNIT


def rounded_estimate(e: Estimate) -> dict[str, float | int]:
    """An estimate for the study's record, rounded to 5 places."""
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in e.as_dict().items()}


def pool_length_spearman(sets: Sequence[CandidateSet], scores: Sequence[np.ndarray]) -> np.ndarray:
    """Per pool, Spearman ρ between a model's scores and the candidates' lengths in characters."""
    return np.array([spearman(np.asarray(r, dtype=np.float64), candidate_lengths(s)) for s, r in zip(sets, scores)])


def study_length_rules(test: Sequence[CandidateSet], max_n: int) -> LengthRules:
    """Best-of-n gold of picking the longest and of picking the shortest candidate of the test pools: no model is
    involved (its ρ(score, length) column is NaN; each learner's comes from its own scores, see `length_rules_cell`)."""
    return length_rules(test, [np.zeros(len(s)) for s in test], max_n)


def length_rules_reference(rules: LengthRules, bootstrap: GroupBootstrap, ns: Sequence[int | str], paired: bool
                           ) -> dict[str, Any]:
    """The rules' gold at each of ``ns`` on the learners' bootstrap, the better rule at each n, their mean curves, and
    whether the grid carries each learner's Δ vs the better rule paired by prompt (``paired``)."""
    # summarize_length_rules reads a proxy's picks too: "pick the longest" stands in, only the rules' columns are kept
    stand_in = BestOfNResult(rules.longest_curve, rules.longest_at_max, rules.longest_curve, rules.longest_at_max,
                             rules.longest_curve[:, 0], rules.spearman, np.zeros(len(rules.spearman)))
    table, _ = summarize_length_rules(stand_in, rules, ns, bootstrap)
    n = np.arange(1, rules.longest_curve.shape[1] + 1)
    return {"unit": LENGTH_UNIT, "paired": paired,
            "n": {row.n: {"longest": rounded_estimate(row.longest), "shortest": rounded_estimate(row.shortest),
                          "better_rule": row.better_rule} for row in table},
            "curve": {"n": n.tolist(), "kl": np.round(kl_best_of_n(n), 5).tolist(),
                      "longest": np.round(rules.longest_curve.mean(0), 5).tolist(),
                      "shortest": np.round(rules.shortest_curve.mean(0), 5).tolist()}}


def length_rules_cell(result: BestOfNResult, rules: LengthRules, seed_spearman: Sequence[np.ndarray | None],
                      bootstrap: GroupBootstrap, ns: Sequence[int | str]) -> dict[str, Any]:
    """One condition's seed-averaged picks (``result``) minus the better length rule at each of ``ns``, paired by
    prompt (same resamples), and the mean per-pool ρ(score, length), each pool's ρ averaged over the seeds first
    (``seed_spearman``: one `pool_length_spearman` per seed; None where a run has none)."""
    per_seed = [rho if rho is not None else np.full(len(result.random), np.nan) for rho in seed_spearman]
    with np.errstate(all="ignore"):
        rho = np.nanmean(np.stack(per_seed), axis=0) if per_seed else np.full(len(result.random), np.nan)
    table, mean_rho = summarize_length_rules(result, replace(rules, spearman=rho), ns, bootstrap)
    return {"n": {row.n: {"gold_minus_better_rule": rounded_estimate(row.minus_better_rule)} for row in table},
            "spearman_reward_length": rounded_estimate(mean_rho)}
