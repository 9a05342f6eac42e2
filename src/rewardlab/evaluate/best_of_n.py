"""Best-of-n against gold: the unbiased estimator, oracle, random and length references, Spearman, and KL(BoN).

For a pool of N candidates sorted by proxy score (ascending), the expected gold of the best-of-n pick
over all C(N, n) subsets is Σ_{i≥n} C(i−1, n−1)/C(N, n) · gold_(i): candidate i is the pick exactly when
it and n−1 of the i−1 below it are drawn. This is exact, so no repeated subsampling is needed. Candidates
with tied proxy scores are picked at random among themselves, which the estimator handles exactly by
giving each tied block its mean gold.

The length references run the same estimator with length (in characters, as in `length_controls`) as the proxy:
pick the longest of the n drawn, or the shortest. A reward model whose picks do no better than the better of the
two has, for best-of-n, learned no more than length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import spearmanr

from rewardlab.data.candidates import CandidateSet
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.length_controls import LENGTH_UNIT


def kl_best_of_n(n: int | float | np.ndarray) -> np.ndarray:
    """The usual KL(best-of-n ‖ base) = log n − (n−1)/n (an upper bound on the true KL)."""
    n = np.asarray(n, dtype=np.float64)
    return np.log(n) - (n - 1) / n


@lru_cache(maxsize=256)
def best_of_n_weights(pool_size: int, max_n: int) -> np.ndarray:
    """(max_n, pool_size) weights: row n−1 gives each ascending rank's chance of being the best-of-n pick."""
    weights = np.zeros((max_n, pool_size))
    for n in range(1, max_n + 1):
        total = math.comb(pool_size, n)
        for i in range(n, pool_size + 1):
            weights[n - 1, i - 1] = math.comb(i - 1, n - 1) / total
    weights.setflags(write=False)
    return weights


def gold_by_proxy_rank(proxy: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Gold sorted by ascending proxy score, each block of tied proxy scores replaced by its mean gold."""
    proxy = np.asarray(proxy, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    order = np.argsort(proxy, kind="stable")
    sorted_proxy, sorted_gold = proxy[order], gold[order]
    _, block, counts = np.unique(sorted_proxy, return_inverse=True, return_counts=True)
    return (np.bincount(block, weights=sorted_gold) / counts)[block]


def expected_best_of_n(proxy: np.ndarray, gold: np.ndarray, max_n: int) -> np.ndarray:
    """Expected gold of the best-of-n pick for n = 1..max_n (n larger than the pool acts as the whole pool)."""
    pool = len(gold)
    if pool == 0:
        raise InvalidValueError("empty candidate pool")
    curve = best_of_n_weights(pool, min(max_n, pool)) @ gold_by_proxy_rank(proxy, gold)
    if max_n > pool:
        curve = np.concatenate([curve, np.full(max_n - pool, curve[-1])])
    return curve


def spearman(proxy: np.ndarray, gold: np.ndarray) -> float:
    """Rank correlation of proxy and gold within one pool; NaN when either is constant."""
    if len(gold) < 2 or np.ptp(gold) == 0 or np.ptp(proxy) == 0:
        return float("nan")
    return float(spearmanr(proxy, gold).statistic)


@dataclass
class BestOfNResult:
    """Per-prompt best-of-n values for one proxy; rows are prompts, ``curve`` columns are n = 1..len."""

    curve: np.ndarray  # (prompts, max_n)
    at_max: np.ndarray  # (prompts,): best of the whole pool
    oracle_curve: np.ndarray
    oracle_at_max: np.ndarray
    random: np.ndarray  # (prompts,): mean gold = best-of-1
    spearman: np.ndarray  # (prompts,), NaN where undefined
    pool_size: np.ndarray  # (prompts,)

    @property
    def max_n(self) -> int:
        return int(self.curve.shape[1])

    def column(self, n: int | str) -> tuple[np.ndarray, np.ndarray]:
        """(proxy, oracle) per-prompt values at ``n`` (an int, or ``"max"`` for each prompt's whole pool)."""
        if n == "max":
            return self.at_max, self.oracle_at_max
        if not isinstance(n, int) or not 1 <= n <= self.max_n:
            raise InvalidValueError(f"n must be 'max' or in 1..{self.max_n}, got {n!r}")
        return self.curve[:, n - 1], self.oracle_curve[:, n - 1]

    def kl(self, n: int | str) -> float:
        """Mean KL(BoN) over prompts at ``n``."""
        return float(np.mean(kl_best_of_n(self.pool_size if n == "max" else np.minimum(n, self.pool_size))))


def best_of_n(sets: Sequence[CandidateSet], proxy_scores: Sequence[np.ndarray], max_n: int | None = None) -> BestOfNResult:
    """Best-of-n values for n = 1..max_n (default: the smallest pool) of ``proxy_scores[i]`` on ``sets[i]``."""
    if len(sets) != len(proxy_scores):
        raise InvalidValueError(f"{len(sets)} candidate sets but {len(proxy_scores)} score arrays")
    if not sets:
        raise InvalidValueError("no candidate sets to evaluate")
    max_n = max_n or min(len(s) for s in sets)
    rows = []
    for candidate_set, scores in zip(sets, proxy_scores):
        gold = candidate_set.require_gold()
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != gold.shape:
            raise InvalidValueError(f"{scores.size} scores for {gold.size} candidates of prompt {candidate_set.prompt[:60]!r}")
        curve = expected_best_of_n(scores, gold, max_n)
        oracle = expected_best_of_n(gold, gold, max_n)
        rows.append((curve, gold_by_proxy_rank(scores, gold)[-1], oracle, gold.max(), gold.mean(),
                     spearman(scores, gold), len(gold)))
    return BestOfNResult(
        curve=np.stack([r[0] for r in rows]),
        at_max=np.array([r[1] for r in rows]),
        oracle_curve=np.stack([r[2] for r in rows]),
        oracle_at_max=np.array([r[3] for r in rows]),
        random=np.array([r[4] for r in rows]),
        spearman=np.array([r[5] for r in rows]),
        pool_size=np.array([r[6] for r in rows]),
    )


def average_results(results: Sequence[BestOfNResult]) -> BestOfNResult:
    """Per-prompt mean over runs on the same prompts (e.g. seeds), so one bootstrap over prompts covers them."""
    def mean(name: str) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.nanmean(np.stack([getattr(r, name) for r in results]), axis=0)

    return BestOfNResult(mean("curve"), mean("at_max"), results[0].oracle_curve, results[0].oracle_at_max,
                         results[0].random, mean("spearman"), results[0].pool_size)


def summarize_best_of_n(result: BestOfNResult, ns: Sequence[int | str], bootstrap: GroupBootstrap | None = None,
                        ) -> dict[str, dict[str, Estimate]]:
    """For each n: gold of the pick, of the oracle, and the fraction of the oracle's gain over random recovered;
    plus mean per-prompt Spearman. All with bootstrap CIs over prompts."""
    bootstrap = bootstrap or GroupBootstrap(np.arange(len(result.random)))
    summary: dict[str, dict[str, Estimate]] = {}
    for n in ns:
        proxy, oracle = result.column(n)
        gain = bootstrap.ratio(proxy - result.random, oracle - result.random) if n != 1 else \
            Estimate(float("nan"), float("nan"), float("nan"), len(proxy))  # best-of-1 is random: 0 / 0
        summary[str(n)] = {"gold": bootstrap.mean(proxy), "oracle": bootstrap.mean(oracle), "oracle_gain_fraction": gain}
    defined = ~np.isnan(result.spearman)
    summary["all"] = {"random": bootstrap.mean(result.random),
                      "spearman": bootstrap.mean(np.nan_to_num(result.spearman), defined)}
    return summary


def candidate_lengths(candidate_set: CandidateSet) -> np.ndarray:
    """Each candidate's length in characters (the unit `length_controls` uses, the same whatever the encoder)."""
    return np.array([len(text) for text in candidate_set.responses], dtype=np.float64)


@dataclass
class LengthRules:
    """Per-prompt best-of-n values of the two length-only picks, and how the proxy's scores follow length."""

    longest_curve: np.ndarray  # (prompts, max_n): pick the longest of n drawn
    longest_at_max: np.ndarray  # (prompts,)
    shortest_curve: np.ndarray
    shortest_at_max: np.ndarray
    spearman: np.ndarray  # (prompts,): ρ(proxy score, length) within the pool, NaN where undefined

    def column(self, n: int | str) -> tuple[np.ndarray, np.ndarray]:
        """(longest, shortest) per-prompt values at ``n`` (an int, or ``"max"``), as `BestOfNResult.column`."""
        if n == "max":
            return self.longest_at_max, self.shortest_at_max
        if not isinstance(n, int) or not 1 <= n <= self.longest_curve.shape[1]:
            raise InvalidValueError(f"n must be 'max' or in 1..{self.longest_curve.shape[1]}, got {n!r}")
        return self.longest_curve[:, n - 1], self.shortest_curve[:, n - 1]


def length_rules(sets: Sequence[CandidateSet], proxy_scores: Sequence[np.ndarray], max_n: int) -> LengthRules:
    """Best-of-n of "pick the longest" and "pick the shortest" on the proxy's own pools (ties in length are
    broken at random, exactly, like tied proxy scores), and per-prompt ρ(proxy score, length)."""
    if len(sets) != len(proxy_scores):
        raise InvalidValueError(f"{len(sets)} candidate sets but {len(proxy_scores)} score arrays")
    rows = []
    for candidate_set, scores in zip(sets, proxy_scores):
        gold, length = candidate_set.require_gold(), candidate_lengths(candidate_set)
        rows.append((expected_best_of_n(length, gold, max_n), gold_by_proxy_rank(length, gold)[-1],
                     expected_best_of_n(-length, gold, max_n), gold_by_proxy_rank(-length, gold)[-1],
                     spearman(np.asarray(scores, dtype=np.float64), length)))
    return LengthRules(np.stack([r[0] for r in rows]), np.array([r[1] for r in rows]), np.stack([r[2] for r in rows]),
                       np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))


@dataclass(frozen=True)
class LengthRuleRow:
    """At one n: gold of the proxy's pick and of each length rule, and the proxy minus the better rule (paired)."""

    n: str
    gold: Estimate
    longest: Estimate
    shortest: Estimate
    better_rule: str  # "longest" or "shortest": the one with more mean gold at this n; "either" when equal
    minus_better_rule: Estimate

    def as_dict(self) -> dict[str, object]:
        return {"gold": self.gold.as_dict(), "longest": self.longest.as_dict(), "shortest": self.shortest.as_dict(),
                "better_rule": self.better_rule, "gold_minus_better_rule": self.minus_better_rule.as_dict()}


def summarize_length_rules(result: BestOfNResult, rules: LengthRules, ns: Sequence[int | str],
                           bootstrap: GroupBootstrap | None = None) -> tuple[list[LengthRuleRow], Estimate]:
    """Per n, the proxy beside both length rules with Δ vs the better one, all on the same resamples of prompts (so
    Δ is paired); and the mean per-prompt ρ(proxy score, length). The better rule is chosen on these same prompts,
    which favours it a little: a proxy that beats it anyway beats length."""
    bootstrap = bootstrap or GroupBootstrap(np.arange(len(result.random)))
    table = []
    for n in ns:
        proxy, _ = result.column(n)
        longest, shortest = rules.column(n)
        better, values = ("longest", longest) if longest.mean() > shortest.mean() else ("shortest", shortest)
        if np.isclose(longest.mean(), shortest.mean(), rtol=0, atol=1e-12):
            better = "either"  # e.g. best-of-1: both rules are a random pick
        table.append(LengthRuleRow(str(n), bootstrap.mean(proxy), bootstrap.mean(longest), bootstrap.mean(shortest),
                                   better, bootstrap.mean(proxy - values)))
    defined = ~np.isnan(rules.spearman)
    return table, bootstrap.mean(np.nan_to_num(rules.spearman), defined)


def length_rules_record(table: Sequence[LengthRuleRow], rho: Estimate) -> dict[str, object]:
    """The length references for a JSON record, with the unit length is counted in."""
    return {"unit": LENGTH_UNIT, "n": {row.n: row.as_dict() for row in table},
            "spearman_reward_length": rho.as_dict()}


@dataclass(frozen=True)
class OveroptimizationFit:
    """Gao et al.'s best-of-n form R(d) = d(α − βd), d = √KL, fitted to gold gain over best-of-1."""

    alpha: float
    beta: float

    def __call__(self, kl: np.ndarray) -> np.ndarray:
        d = np.sqrt(np.asarray(kl, dtype=np.float64))
        return d * (self.alpha - self.beta * d)

    @property
    def peak_kl(self) -> float:
        """KL where the fitted gain peaks (∞ if it never turns down)."""
        return (self.alpha / (2 * self.beta)) ** 2 if self.beta > 0 and self.alpha > 0 else math.inf

    def turns_down_before(self, kl: float) -> bool:
        """True when the fitted gain peaks below ``kl``, i.e. the fit predicts over-optimization within that KL."""
        return self.peak_kl < kl

    def as_dict(self) -> dict[str, float]:
        """α, β and the peak KL, for JSON records."""
        return {"alpha": self.alpha, "beta": self.beta, "peak_kl": self.peak_kl}


def fit_overoptimization(kl: np.ndarray, gain: np.ndarray) -> OveroptimizationFit:
    """Least squares of gain = α·d − β·d² (linear in α, β; the curve passes through the origin)."""
    d = np.sqrt(np.asarray(kl, dtype=np.float64))
    design = np.stack([d, -(d**2)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, np.asarray(gain, dtype=np.float64), rcond=None)
    return OveroptimizationFit(float(alpha), float(beta))
