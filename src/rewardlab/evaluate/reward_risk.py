"""Where a policy optimizing a reward would go hunting, read off the reward model alone (no gold needed).

Two signals of over-optimization risk that every saved model can show:

- **Disagreement along the reward scale** (ensembles): responses are binned by their mean reward, and the members'
  spread (std) is averaged per bin. Members agree where training data pinned the reward down; a top bin where they
  disagree more than in the middle is a high-reward, high-uncertainty region, which is what an optimizer finds first
  (Coste et al. 2024 and Eisenstein et al. 2023 use the same reading to motivate conservative aggregates).
- **The shape of the top tail**: how far the highest rewards sit above the bulk, in standard deviations, against what
  a normal distribution would give. A reward whose top is a few far-out responses rewards something rare, and the
  texts there are worth reading (the card lists them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap

N_SCALE_BINS = 10
#: upper-tail quantiles reported, with the standard normal's value at each (the yardstick for "heavy")
TAIL_QUANTILES = {"p90": (0.90, 1.2816), "p99": (0.99, 2.3263), "p99.9": (0.999, 3.0902)}


@dataclass(frozen=True)
class ScaleBin:
    """Responses whose mean reward falls in ``[low, high]``, and the ensemble members' mean spread over them."""

    low: float
    high: float
    n: int
    member_std: Estimate

    def as_dict(self) -> dict[str, object]:
        return {"reward_low": self.low, "reward_high": self.high, "n": self.n, "member_std": self.member_std.as_dict()}


@dataclass(frozen=True)
class Disagreement:
    """Member spread per reward bin, and the top bin's spread minus the middle bins' (paired by prompt)."""

    members: int
    bins: list[ScaleBin]
    top_minus_middle: Estimate

    @property
    def rises_at_top(self) -> bool:
        """The members disagree significantly more on the highest-reward responses than in the middle of the scale."""
        return self.top_minus_middle.low > 0

    def as_dict(self) -> dict[str, object]:
        return {"members": self.members, "bins": [b.as_dict() for b in self.bins],
                "top_minus_middle_std": self.top_minus_middle.as_dict(), "rises_at_top": self.rises_at_top}


def disagreement_along_scale(member_rewards: np.ndarray, groups: np.ndarray, *, n_bins: int = N_SCALE_BINS,
                             n_resamples: int = 2000, seed: int = 0) -> Disagreement | None:
    """``member_rewards`` is (members, responses); ``groups`` the prompt group of each response. None for a single
    model (one member has no spread to read)."""
    rewards = np.asarray(member_rewards, dtype=np.float64)
    if rewards.ndim != 2 or rewards.shape[0] < 2 or rewards.shape[1] < n_bins:
        return None
    mean, std = rewards.mean(0), rewards.std(0, ddof=1)
    edges = np.quantile(mean, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, n_bins - 1)
    bootstrap = GroupBootstrap(np.asarray(groups), n_resamples=n_resamples, seed=seed)
    bins = [ScaleBin(float(edges[b]), float(edges[b + 1]), int((which == b).sum()), bootstrap.mean(std, which == b))
            for b in range(n_bins)]
    middle = (which >= n_bins // 2 - 1) & (which <= n_bins // 2)
    return Disagreement(int(rewards.shape[0]), bins, bootstrap.mean_difference(std, which == n_bins - 1, middle))


@dataclass(frozen=True)
class TailShape:
    """Upper quantiles of the rewards in standard deviations above the mean, beside the normal's, and the gap from the
    99th percentile to the maximum."""

    n: int
    quantiles_sd: dict[str, float]
    normal_sd: dict[str, float]
    max_sd: float
    top_gap_sd: float  # (max − p99) / std: a lone far-out top
    excess_kurtosis: float

    @property
    def heavy(self) -> bool:
        """The p99 sits more than half a standard deviation beyond the normal's, or the maximum is isolated far above it."""
        p99 = self.quantiles_sd.get("p99", math.nan)
        return bool(p99 > self.normal_sd["p99"] + 0.5 or self.top_gap_sd > 2.0)

    def as_dict(self) -> dict[str, object]:
        return {"n": self.n, "quantiles_sd": self.quantiles_sd, "normal_sd": self.normal_sd, "max_sd": self.max_sd,
                "top_gap_sd": self.top_gap_sd, "excess_kurtosis": self.excess_kurtosis, "heavy": self.heavy}


def tail_shape(rewards: np.ndarray) -> TailShape | None:
    """The tail of ``rewards`` (one per response); None when fewer than 20 responses or no spread."""
    r = np.asarray(rewards, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) < 20 or r.std() == 0:
        return None
    z = (r - r.mean()) / r.std()
    quantiles = {name: float(np.quantile(z, q)) for name, (q, _) in TAIL_QUANTILES.items() if len(r) * (1 - q) >= 1}
    return TailShape(
        n=len(r),
        quantiles_sd=quantiles,
        normal_sd={name: normal for name, (_, normal) in TAIL_QUANTILES.items()},
        max_sd=float(z.max()),
        top_gap_sd=float(z.max() - np.quantile(z, 0.99)),
        excess_kurtosis=float(np.mean(z**4) - 3.0),
    )
