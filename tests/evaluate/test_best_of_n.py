"""The unbiased best-of-n estimator against brute-force enumeration, and the references built on it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rewardlab.data.candidates import CandidateSet
from rewardlab.evaluate.best_of_n import (
    best_of_n,
    expected_best_of_n,
    fit_overoptimization,
    kl_best_of_n,
    summarize_best_of_n,
)


def brute_force(proxy: np.ndarray, gold: np.ndarray, n: int) -> float:
    """Mean over all n-subsets of the gold of the max-proxy member, ties broken uniformly at random."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(gold)), n))
    for subset in subsets:
        best = max(proxy[i] for i in subset)
        winners = [i for i in subset if proxy[i] == best]
        total += float(np.mean([gold[i] for i in winners]))
    return total / len(subsets)


@pytest.mark.parametrize("seed", range(6))
def test_estimator_equals_enumeration_over_all_subsets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = int(rng.integers(2, 10))
    proxy = rng.normal(size=pool)
    if seed % 2:  # ties in the proxy, as a coarse reward model would give
        proxy = np.round(proxy)
    gold = rng.normal(size=pool)
    curve = expected_best_of_n(proxy, gold, pool)
    for n in range(1, pool + 1):
        assert curve[n - 1] == pytest.approx(brute_force(proxy, gold, n), abs=1e-12)


def test_estimator_endpoints_and_clipping() -> None:
    proxy, gold = np.array([0.3, 0.1, 0.9, 0.5]), np.array([1.0, 2.0, 3.0, 4.0])
    curve = expected_best_of_n(proxy, gold, 6)
    assert curve[0] == pytest.approx(gold.mean())  # best-of-1 = a random pick
    assert curve[3] == pytest.approx(3.0)  # best of the whole pool = the argmax's gold
    assert curve[4] == curve[5] == curve[3]  # n beyond the pool acts as the whole pool
    oracle = expected_best_of_n(gold, gold, 4)
    assert np.all(np.diff(oracle) >= 0)


def test_kl_of_best_of_n() -> None:
    assert kl_best_of_n(1) == 0.0
    assert kl_best_of_n(16) == pytest.approx(math.log(16) - 15 / 16)


def test_best_of_n_references_and_summary() -> None:
    rng = np.random.default_rng(0)
    sets = [CandidateSet(f"p{i}", tuple(f"r{j}" for j in range(8)), rng.normal(size=8)) for i in range(30)]
    gold_scores = [s.gold for s in sets]
    oracle = best_of_n(sets, gold_scores)
    summary = summarize_best_of_n(oracle, [1, 4, "max"])
    assert summary["max"]["oracle_gain_fraction"].value == pytest.approx(1.0)
    assert summary["all"]["spearman"].value == pytest.approx(1.0)
    anti = best_of_n(sets, [-g for g in gold_scores])
    anti_summary = summarize_best_of_n(anti, [4])
    assert anti_summary["4"]["oracle_gain_fraction"].value < 0
    assert anti_summary["all"]["spearman"].value == pytest.approx(-1.0)
    assert summary["1"]["gold"].value == pytest.approx(summary["all"]["random"].value)
    low, high = summary["4"]["gold"].low, summary["4"]["gold"].high
    assert low < summary["4"]["gold"].value < high


def test_best_of_n_rejects_mismatched_scores() -> None:
    s = CandidateSet("p", ("a", "b"), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="2 candidates"):
        best_of_n([s], [np.array([1.0, 2.0, 3.0])])


def test_overoptimization_fit_recovers_known_curve() -> None:
    n = np.arange(1, 60)
    kl = kl_best_of_n(n)
    d = np.sqrt(kl)
    gain = d * (0.8 - 0.3 * d)
    fit = fit_overoptimization(kl, gain)
    assert fit.alpha == pytest.approx(0.8) and fit.beta == pytest.approx(0.3)
    assert fit.peak_kl == pytest.approx((0.8 / 0.6) ** 2)
    assert fit.turns_down_before(kl.max())
    rising = fit_overoptimization(kl, 0.5 * d)
    assert not rising.turns_down_before(kl.max())
