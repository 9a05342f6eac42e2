"""Cluster bootstrap over prompt groups: every number gets n and a 95% CI.

Resampling whole prompts (not pairs) keeps pairs of one prompt together, so CIs are not too narrow
when a prompt has many pairs. One `GroupBootstrap` draws its resamples once; computing two learners'
metrics on the same draws makes their comparison paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        """The estimate for JSON records, its CI bounds named ``ci_low`` and ``ci_high``."""
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


#: about how many float64 values one block of resamples holds while it is multiplied (64 MB)
BLOCK_VALUES = 8 << 20


class ResampleWeights:
    """How often each group appears in each resample, an (n_resamples, n_groups) matrix used as ``weights @ values``.

    A count is a small integer (about Poisson(1)), so the matrix is kept as uint8 where every count fits, and a
    product is taken a block of resamples at a time: with 100k prompt groups, 2,000 resamples as int64 took 1.6 GB
    and the float64 copy numpy makes for ``@`` as much again. The draws are those of one
    ``rng.multinomial(n_groups, uniform, size=n_resamples)`` call (drawn a block at a time from the same generator,
    which yields the same numbers), so results do not change.
    """

    def __init__(self, rng: np.random.Generator, n_resamples: int, n_groups: int,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.block = max(1, BLOCK_VALUES // max(n_groups, 1))
        counts = np.empty((n_resamples, n_groups), dtype=np.uint8)
        p = np.full(n_groups, 1.0 / n_groups) if n_groups else np.zeros(0)
        for start in range(0, n_resamples, self.block):
            drawn = rng.multinomial(n_groups, p, size=min(self.block, n_resamples - start))
            if drawn.size and drawn.max() > np.iinfo(counts.dtype).max:
                counts = counts.astype(np.int64)  # a count past 255: only with absurdly uneven draws, kept exact
            counts[start : start + len(drawn)] = drawn
            if on_progress:
                on_progress(start + len(drawn), n_resamples)  # 2,000 draws over 100k groups take tens of seconds
        self.counts = counts

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape

    def __len__(self) -> int:
        return len(self.counts)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        """The full int64 matrix (as the draws came), for code that wants it whole."""
        return self.counts.astype(np.int64 if dtype is None else dtype)

    def __matmul__(self, values: np.ndarray) -> np.ndarray:
        """``counts @ values``, a block of resamples at a time (each block as int64, as the whole matrix was)."""
        values = np.asarray(values)
        first = self.counts[: self.block].astype(np.int64) @ values
        out = np.empty((len(self.counts), *first.shape[1:]), dtype=first.dtype)
        out[: len(first)] = first
        for start in range(self.block, len(self.counts), self.block):
            out[start : start + self.block] = self.counts[start : start + self.block].astype(np.int64) @ values
        return out


class GroupBootstrap:
    def __init__(self, groups: np.ndarray, n_resamples: int = 2000, seed: int = 0, level: float = 0.95,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        labels, self.group_index = np.unique(np.asarray(groups), return_inverse=True)
        self.n_groups = len(labels)
        self.n_rows = len(groups)
        self.level = level
        #: how often each group appears in each resample: (n_resamples, n_groups), used as ``weights @ per_group``
        self.weights = ResampleWeights(np.random.default_rng(seed), n_resamples, self.n_groups, on_progress)

    def _per_group(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.group_index, weights=values, minlength=self.n_groups)

    def _interval(self, samples: np.ndarray) -> tuple[float, float]:
        samples = np.where(np.isfinite(samples), samples, np.nan)
        if np.isnan(samples).all():
            return float("nan"), float("nan")
        tail = (1 - self.level) / 2 * 100
        low, high = np.nanpercentile(samples, [tail, 100 - tail])
        return float(low), float(high)

    def mean(self, values: np.ndarray, mask: np.ndarray | None = None) -> Estimate:
        """Mean of per-row ``values`` over the rows in ``mask``, with a percentile CI."""
        values = np.asarray(values, dtype=np.float64)
        keep = np.ones(self.n_rows, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if not keep.any():
            return Estimate(float("nan"), float("nan"), float("nan"), 0)
        num = self._per_group(np.where(keep, values, 0.0))
        den = self._per_group(keep.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            samples = (self.weights @ num) / (self.weights @ den)
        low, high = self._interval(samples)
        return Estimate(float(num.sum() / den.sum()), low, high, int(keep.sum()))

    def mean_difference(self, values: np.ndarray, mask_1: np.ndarray, mask_2: np.ndarray) -> Estimate:
        """Mean of ``values`` over the rows in ``mask_1`` minus their mean over ``mask_2``, both on the same
        resamples (so the CI of the difference is paired by group); n counts the rows in either mask."""
        values = np.asarray(values, dtype=np.float64)
        means = []
        for mask in (np.asarray(mask_1, dtype=bool), np.asarray(mask_2, dtype=bool)):
            if not mask.any():
                return Estimate(float("nan"), float("nan"), float("nan"), 0)
            num, den = self._per_group(np.where(mask, values, 0.0)), self._per_group(mask.astype(np.float64))
            with np.errstate(invalid="ignore", divide="ignore"):
                means.append((float(num.sum() / den.sum()), (self.weights @ num) / (self.weights @ den)))
        low, high = self._interval(means[0][1] - means[1][1])
        return Estimate(means[0][0] - means[1][0], low, high, int((np.asarray(mask_1, bool) | np.asarray(mask_2, bool)).sum()))

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
        """Σ numerator / Σ denominator over all rows (a ratio of means), resampled by group."""
        num = self._per_group(np.asarray(numerator, dtype=np.float64))
        den = self._per_group(np.asarray(denominator, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            samples = (self.weights @ num) / (self.weights @ den)
            value = float(num.sum() / den.sum()) if den.sum() != 0 else float("nan")
        low, high = self._interval(samples)
        return Estimate(value, low, high, self.n_rows)

    def binned_gap(self, bins: np.ndarray, gaps: np.ndarray, n_bins: int, mask: np.ndarray) -> Estimate:
        """Σ_bins |Σ gap| / n over rows in ``mask`` — the expected calibration error when
        ``gaps`` = correct − confidence."""
        mask = np.asarray(mask, dtype=bool)
        per_group_bin = np.zeros((self.n_groups, n_bins))
        np.add.at(per_group_bin, (self.group_index[mask], bins[mask]), gaps[mask])
        counts = self._per_group(mask.astype(np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            samples = np.abs(self.weights @ per_group_bin).sum(1) / (self.weights @ counts)
        low, high = self._interval(samples)
        n = int(mask.sum())
        return Estimate(float(np.abs(per_group_bin.sum(0)).sum() / n) if n else float("nan"), low, high, n)
