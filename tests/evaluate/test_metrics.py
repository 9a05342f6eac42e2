"""Metrics with CIs: bootstrap, accuracy, calibration, paired differences and cross-validation by prompt."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.data import FeedbackDataset
from rewardlab.data.types import normalize_prompt
from rewardlab.embed import HashingEncoder
from rewardlab.evaluate import GroupBootstrap, LearnerSpec, cross_validate, pairwise_correct, pairwise_metrics
from synthetic import preference_dataset


def test_bootstrap_interval_covers_the_estimate_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    small = rng.random(100) < 0.7
    large = rng.random(10000) < 0.7
    e_small = GroupBootstrap(np.arange(100)).mean(small.astype(float))
    e_large = GroupBootstrap(np.arange(10000)).mean(large.astype(float))
    assert e_small.low <= e_small.value <= e_small.high and e_small.n == 100
    assert e_large.high - e_large.low < (e_small.high - e_small.low) / 5
    assert e_large.low < 0.7 < e_large.high


def test_cluster_bootstrap_is_wider_when_pairs_share_prompts() -> None:
    """20 prompts x 50 identical-outcome pairs carry far less information than 1000 independent pairs."""
    rng = np.random.default_rng(1)
    per_prompt = np.repeat(rng.random(20) < 0.6, 50).astype(float)
    clustered = GroupBootstrap(np.repeat(np.arange(20), 50)).mean(per_prompt)
    naive = GroupBootstrap(np.arange(1000)).mean(per_prompt)
    assert clustered.high - clustered.low > 3 * (naive.high - naive.low)


def test_pairwise_metrics_on_known_cases() -> None:
    target = np.array([1.0, 1.0, 0.0, 0.0, 0.5])
    score_a = np.array([2.0, 1.0, -1.0, 0.0, 3.0])
    score_b = np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    correct = pairwise_correct(score_a, score_b, target)
    assert correct[:4].tolist() == [1.0, 1.0, 1.0, 0.5]  # exact score tie counts half
    m = pairwise_metrics(score_a, score_b, target, GroupBootstrap(np.arange(5)))
    assert m["accuracy"].n == 4  # the labelled tie is not part of accuracy
    assert m["accuracy"].value == pytest.approx(3.5 / 4)
    p = 1 / (1 + np.exp(-np.array([2.0, 1.0, -1.0, 0.0])))
    y = np.array([1, 1, 0, 0])
    assert m["brier"].value == pytest.approx(np.mean((p - y) ** 2))
    assert m["nll"].value == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_ece_is_zero_for_calibrated_and_large_for_overconfident_predictions() -> None:
    rng = np.random.default_rng(2)
    n = 20000
    diff = rng.normal(scale=2.0, size=n)
    calibrated_target = (rng.random(n) < 1 / (1 + np.exp(-diff))).astype(float)
    boot = GroupBootstrap(np.arange(n), n_resamples=200)
    good = pairwise_metrics(diff, np.zeros(n), calibrated_target, boot)["ece"]
    over = pairwise_metrics(10 * diff, np.zeros(n), calibrated_target, boot)["ece"]
    assert good.value < 0.02 and over.value > 0.1
    assert over.low > good.high


def test_paired_difference_of_a_learner_with_itself_is_exactly_zero() -> None:
    boot = GroupBootstrap(np.arange(50))
    e = boot.mean(np.zeros(50))
    assert (e.value, e.low, e.high) == (0.0, 0.0, 0.0)


def _topic_dataset(n: int = 80) -> FeedbackDataset:
    rows = [
        (f"Tell me about item {i}", f"a detailed helpful accurate answer about item {i}", f"rude useless wrong reply item {i}")
        for i in range(n)
    ]
    # a duplicate prompt up to case/punctuation: must stay in one fold with its twin
    rows.append(("tell me about ITEM 3!", "a detailed helpful accurate answer", "rude useless wrong reply"))
    return preference_dataset("topics", rows)


def test_cross_validation_scores_every_pair_once_out_of_fold() -> None:
    ds = _topic_dataset()
    learners = [LearnerSpec("bt", "bt-linear"), LearnerSpec("clf", "clf-logistic")]
    result = cross_validate(ds, learners, HashingEncoder(64), k=4, seed=0, n_resamples=300)
    assert len(result.pair_fold) == len(ds.comparisons)
    assert sorted(set(result.pair_fold.tolist())) == [0, 1, 2, 3]
    twins = [i for i, c in enumerate(ds.comparisons) if normalize_prompt(ds.prompts[c.prompt_id].text) == "tell me about item 3"]
    assert len(twins) == 2 and len({result.pair_fold[i] for i in twins}) == 1
    for name in ("bt", "clf"):
        assert result.metrics[name]["accuracy"].value > 0.9
        assert len(result.fold_accuracy[name]) == 4
    assert "clf" in result.vs_reference and "bt" not in result.vs_reference
