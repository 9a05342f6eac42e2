"""Selection strategies: argmax, soft best-of-n (and its exact KL), conservative ensemble picks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardlab.optimize.selection import (
    conservative_scores,
    kl_to_uniform,
    sample_soft_best_of_n,
    select_index,
    soft_best_of_n_kl,
    soft_best_of_n_probs,
)


@pytest.mark.parametrize("temperature", [0.05, 0.3, 1.0, 5.0])
def test_soft_best_of_n_kl_matches_closed_form(temperature: float) -> None:
    scores = np.random.default_rng(1).normal(size=12)
    probs = soft_best_of_n_probs(scores, temperature)
    direct = kl_to_uniform(probs)
    assert soft_best_of_n_kl(scores, temperature) == pytest.approx(direct, abs=1e-10)
    # and straight from the definition Σ p log(p / (1/N))
    assert direct == pytest.approx(float(np.sum(probs * np.log(probs * len(scores)))), abs=1e-10)
    assert 0 <= direct <= math.log(len(scores))


def test_soft_best_of_n_limits() -> None:
    scores = np.array([0.1, 0.7, -0.3, 1.2])
    assert soft_best_of_n_kl(scores, 1e6) == pytest.approx(0.0, abs=1e-9)  # T → ∞: uniform
    assert soft_best_of_n_kl(scores, 1e-4) == pytest.approx(math.log(4), abs=1e-6)  # T → 0: argmax


def test_soft_best_of_n_samples_follow_their_probabilities() -> None:
    scores = np.array([0.0, 0.5, 1.0, 2.0])
    probs = soft_best_of_n_probs(scores, 0.7)
    rng = np.random.default_rng(0)
    draws = np.bincount([sample_soft_best_of_n(scores, 0.7, rng) for _ in range(20000)], minlength=4) / 20000
    # 4 binomial standard errors
    assert np.all(np.abs(draws - probs) < 4 * np.sqrt(probs * (1 - probs) / 20000))
    assert kl_to_uniform(draws) == pytest.approx(kl_to_uniform(probs), abs=0.03)  # a plug-in estimate from 20,000 draws


def test_conservative_selection_avoids_disputed_candidates() -> None:
    # candidate 0: members agree it is good; candidate 1: higher mean but one member hates it
    members = np.array([[1.0, 3.0, 0.0], [1.1, 3.0, 0.1], [0.9, -2.0, 0.0]])
    assert select_index(members, "argmax") == 1
    assert select_index(members, "conservative", how="min") == 0
    assert select_index(members, "conservative", how="lcb", lam=1.0) == 0
    lcb = conservative_scores(members, "lcb", 2.0)
    assert lcb == pytest.approx(members.mean(0) - 2.0 * members.std(0, ddof=1))
    with pytest.raises(ValueError, match="per-member"):
        select_index(members[0], "conservative")
    with pytest.raises(ValueError, match="unknown strategy"):
        select_index(members[0], "greedy")
