"""Over-optimization risk read off the reward alone: ensemble spread along the reward scale, and the top tail."""

from __future__ import annotations

import numpy as np

from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.reward_risk import disagreement_along_scale, tail_shape


def test_spread_that_grows_with_the_reward_is_flagged_at_the_top() -> None:
    rng = np.random.default_rng(0)
    n = 600
    truth = rng.normal(size=n)
    spread = np.where(truth > np.quantile(truth, 0.9), 1.5, 0.1)  # members disagree only on the top decile
    members = truth + rng.normal(size=(5, n)) * spread
    result = disagreement_along_scale(members, np.arange(n) // 2, seed=0)
    assert result is not None and result.members == 5 and len(result.bins) == 10
    assert sum(b.n for b in result.bins) == n
    assert result.rises_at_top and result.top_minus_middle.value > 0.5
    assert result.bins[-1].member_std.value > 3 * result.bins[4].member_std.value


def test_even_spread_is_not_flagged_and_single_models_have_none() -> None:
    rng = np.random.default_rng(1)
    n = 600
    members = rng.normal(size=n) + rng.normal(size=(4, n)) * 0.3
    result = disagreement_along_scale(members, np.arange(n), seed=0)
    assert result is not None and not result.rises_at_top
    assert disagreement_along_scale(members[:1], np.arange(n)) is None


def test_tail_shape_tells_a_far_out_top_from_a_normal_one() -> None:
    rng = np.random.default_rng(2)
    normal = rng.normal(size=5000)
    shape = tail_shape(normal)
    assert shape is not None and not shape.heavy
    assert abs(shape.quantiles_sd["p99"] - 2.326) < 0.15 and abs(shape.excess_kurtosis) < 0.3
    spiked = np.concatenate([normal, [25.0, 30.0]])
    heavy = tail_shape(spiked)
    assert heavy is not None and heavy.heavy and heavy.top_gap_sd > 2
    assert tail_shape(np.ones(100)) is None and tail_shape(normal[:5]) is None


def test_mean_difference_is_paired_and_exact_on_the_point_estimate() -> None:
    values = np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    first, second = np.array([0, 0, 0, 1, 1, 1], bool), np.array([1, 1, 1, 0, 0, 0], bool)
    est = GroupBootstrap(np.array([0, 1, 2, 0, 1, 2]), seed=0).mean_difference(values, first, second)
    assert est.value == 9.0 and est.n == 6
    # every group holds one row of each side, 9 apart: every resample gives exactly 9
    assert est.low == est.high == 9.0
