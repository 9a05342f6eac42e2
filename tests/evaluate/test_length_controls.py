"""Length controls: the length-only head against a hand computation, length-balanced accuracy, ρ(reward, length)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardlab.data import FeedbackDataset
from rewardlab.data.types import Comparison, Ranking
from rewardlab.embed import HashingEncoder
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate import GroupBootstrap, LearnerSpec, cross_validate, fit_length_head
from rewardlab.evaluate.length_controls import (
    PairLengths,
    cross_fit_length_head,
    fit_length_head_on,
    length_audit,
    length_controls,
    reward_length_spearman,
)

LONG, SHORT = "x" * 99, "y" * 9  # log(1 + 99) − log(1 + 9) = log 10


def _hand_dataset() -> FeedbackDataset:
    """4 comparisons won by the longer side, 1 by the shorter, and a ranking (longest first) that adds 1 more pair
    won by the longer: 5 of 6 training pairs with the same |log-length difference| = log 10."""
    ds = FeedbackDataset("hand")
    for i in range(5):
        p = ds.add_prompt(f"question {i}")
        long_id, short_id = ds.add_response(p, LONG), ds.add_response(p, SHORT)
        if i < 4:  # longer wins; the longer response sits on side a for even i, side b for odd i
            ds.add(Comparison(p, long_id, short_id, "a") if i % 2 == 0 else Comparison(p, short_id, long_id, "b"))
        else:
            ds.add(Comparison(p, long_id, short_id, "b"))
    p = ds.add_prompt("question 5")
    ds.add(Ranking(p, (ds.add_response(p, LONG), ds.add_response(p, SHORT))))
    return ds


def test_length_only_head_matches_a_hand_computation() -> None:
    # every pair has |d| = log 10, so the likelihood equation gives σ(w log 10) = (share won by the longer)
    d = math.log(10)
    head = fit_length_head(np.array([99.0, 9, 99, 99, 9]), np.array([9.0, 99, 9, 9, 99]),
                           np.array([1.0, 0, 1, 0, 0]), l2=0.0)  # the longer wins all but pair 4: 4 of 5
    assert head.weight == pytest.approx(math.log(4) / d, rel=1e-8)  # σ(w log 10) = .8 → w = logit(.8) / log 10
    on_dataset = fit_length_head_on(_hand_dataset(), l2=0.0)  # comparisons and the ranking's pair: 5 of 6
    assert on_dataset.weight == pytest.approx(math.log(5) / d, rel=1e-8)
    assert on_dataset.score(np.array([99.0]))[0] == pytest.approx(on_dataset.weight * math.log(100))
    # a ridge keeps the weight finite when length separates the pairs
    separated = fit_length_head(np.array([99.0, 9]), np.array([9.0, 99]), np.array([1.0, 0.0]))
    assert 2 < separated.weight < 100 and separated.score(np.array([99.0, 9])).argmax() == 0
    with pytest.raises(InvalidValueError):
        fit_length_head(np.array([1.0]), np.array([2.0]), np.array([1.0]), l2=-1)


def test_cross_fitting_never_scores_a_pair_with_a_fit_that_saw_it() -> None:
    la, lb = np.array([99.0, 99, 9, 99]), np.array([9.0, 9, 99, 9])
    target = np.array([1.0, 0.0, 1.0, 1.0])  # fold 0: pairs 0, 1; fold 1: pairs 2, 3
    fold = np.array([0, 0, 1, 1])
    score_a, score_b, weights = cross_fit_length_head(la, lb, target, fold, l2=0.0)
    # fold 0 is scored by the fit on pairs 2, 3: one longer win, one shorter win → weight 0 → ties
    # fold 1 is scored by the fit on pairs 0, 1: the same → weight 0
    assert weights == pytest.approx([0.0, 0.0], abs=1e-9)
    assert np.allclose(score_a, 0) and np.allclose(score_b, 0)
    target = np.array([1.0, 1.0, 0.0, 1.0])  # now fold 0 (pairs 2, 3) says longer wins 2 of 2 → w > 0 for fold 0
    _, _, weights = cross_fit_length_head(la, lb, target, fold)
    assert weights[0] > 0 and weights[1] > 0


def _synthetic_pairs(n: int = 400, seed: int = 0) -> tuple[PairLengths, np.ndarray]:
    rng = np.random.default_rng(seed)
    la = rng.integers(10, 500, n).astype(float)
    lb = rng.integers(10, 500, n).astype(float)
    lb[:7] = la[:7]  # equal lengths: left out of the balanced splits, and counted
    target = (rng.random(n) < 0.5).astype(float)
    target[7:10] = 0.5  # labelled ties: left out of every accuracy
    pairs = PairLengths(la, lb, target, np.log1p(la), np.log1p(lb))
    return pairs, np.arange(n) // 2


def test_a_model_that_knows_only_length_is_exactly_half_length_balanced() -> None:
    pairs, groups = _synthetic_pairs()
    boot = GroupBootstrap(groups, n_resamples=300)
    audit = length_audit(pairs.length_a, pairs.length_b, pairs, boot, (1.0, 10))
    assert audit.longer_wins.value == 1.0 and audit.shorter_wins.value == 0.0
    assert audit.balanced.value == 0.5
    assert audit.minus_length_only.value == 0.0  # the same rule as the length-only head (weight > 0)
    shorter_model = length_audit(-pairs.length_a, -pairs.length_b, pairs, boot, (-1.0, 10))
    assert shorter_model.balanced.value == 0.5
    controls = length_controls(pairs, boot, [1.0], "test")
    assert controls.equal_length == 7
    assert controls.longer_wins + controls.shorter_wins + controls.equal_length == int(pairs.decided.sum())
    assert controls.prefer_longer.value + controls.prefer_shorter.value == pytest.approx(1.0)
    assert controls.length_only.value == controls.prefer_longer.value
    assert audit.longer_wins.n == controls.longer_wins and audit.balanced.n == controls.longer_wins + controls.shorter_wins
    # a perfect model is 1 on both splits, with a CI
    perfect = length_audit(pairs.target, 1 - pairs.target, pairs, boot, (0.0, 10))
    assert perfect.balanced.value == 1.0 and perfect.balanced.low == 1.0


def test_reward_length_spearman_dedupes_responses_and_ranks_within_strata() -> None:
    ids_a, ids_b = ["r1", "r2", "r3", "r4"], ["r2", "r5", "r6", "r1"]
    la, lb = np.array([1.0, 2, 3, 4]), np.array([2.0, 5, 6, 1])
    rho, n = reward_length_spearman(ids_a, ids_b, la * 10, lb * 10, la, lb)
    assert n == 6 and rho == pytest.approx(1.0)
    rho, _ = reward_length_spearman(ids_a, ids_b, -la, -lb, la, lb)
    assert rho == pytest.approx(-1.0)
    # two folds whose models put rewards on different scales: within each fold reward rises with length
    ids_a, ids_b = ["a1", "a2", "b1", "b2"], ["a3", "a4", "b3", "b4"]
    la, lb = np.array([1.0, 2, 1, 2]), np.array([3.0, 4, 3, 4])
    score_a, score_b = np.array([100.0, 200, 1, 2]), np.array([300.0, 400, 3, 4])
    rho, n = reward_length_spearman(ids_a, ids_b, score_a, score_b, la, lb, np.array([0, 0, 1, 1]))
    assert n == 8 and rho == pytest.approx(1.0)


def test_cross_validation_carries_the_length_controls() -> None:
    ds = FeedbackDataset("lengthy")
    rng = np.random.default_rng(0)
    for i in range(60):
        p = ds.add_prompt(f"Tell me about item {i}")
        good = ds.add_response(p, f"a helpful accurate answer about item {i}" + " indeed" * int(rng.integers(0, 6)))
        bad = ds.add_response(p, f"rude wrong reply {i}" + " so" * int(rng.integers(0, 25)))
        ds.add(Comparison(p, good, bad, "a") if i % 2 else Comparison(p, bad, good, "b"))
    result = cross_validate(ds, [LearnerSpec("bt", "bt-linear")], HashingEncoder(64), k=3, seed=0, n_resamples=200)
    assert result.length is not None and len(result.length_weights) == 3
    assert result.pair_lengths is not None and len(result.pair_ids) == len(ds.comparisons)
    audit = result.length_audit["bt"]
    assert audit.spearman_n == 120 and -1 <= audit.spearman <= 1
    pairs = result.pair_lengths
    for fold, weight in enumerate(result.length_weights):  # each fold's head is the fit on the other folds' pairs
        train = result.pair_fold != fold
        expected = fit_length_head(pairs.length_a[train], pairs.length_b[train], pairs.target[train]).weight
        assert weight == pytest.approx(expected, rel=1e-6)
    acc = result.metrics["bt"]["accuracy"].value
    assert audit.minus_length_only.value == pytest.approx(acc - result.length.length_only.value)
