"""The bootstrap's resample counts are stored small and multiplied a block at a time: the same draws as one
multinomial call, and the same estimates, whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.evaluate import bootstrap
from rewardlab.evaluate.bootstrap import GroupBootstrap


def _data(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(1500) % 400), rng.random(1500)


def test_counts_are_the_draws_of_one_multinomial_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "BLOCK_VALUES", 400 * 64)  # blocks of 64 resamples
    groups, _ = _data()
    boot = GroupBootstrap(groups, n_resamples=500, seed=9)
    whole = np.random.default_rng(9).multinomial(boot.n_groups, np.full(boot.n_groups, 1 / boot.n_groups), size=500)
    assert boot.weights.block == 64 and boot.weights.counts.dtype == np.uint8
    assert np.array_equal(np.asarray(boot.weights), whole) and boot.weights.shape == whole.shape


def test_estimates_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    groups, values = _data()
    mask = values > 0.3
    one = GroupBootstrap(groups, seed=4)
    assert one.weights.block >= 2000  # small data: a single block, the products of the whole matrix
    expected = (one.mean(values, mask), one.ratio(values, np.ones_like(values)))
    monkeypatch.setattr(bootstrap, "BLOCK_VALUES", 400 * 37)
    blocked = GroupBootstrap(groups, seed=4)
    got = (blocked.mean(values, mask), blocked.ratio(values, np.ones_like(values)))
    for a, b in zip(expected, got):
        assert a.value == b.value and a.n == b.n
        assert a.low == pytest.approx(b.low, abs=1e-12) and a.high == pytest.approx(b.high, abs=1e-12)
    per_group = np.stack([np.bincount(blocked.group_index, weights=values), np.ones(blocked.n_groups)], axis=1)
    assert np.allclose(blocked.weights @ per_group, np.asarray(blocked.weights).astype(np.float64) @ per_group)
