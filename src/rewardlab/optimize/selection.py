"""Choosing among candidates with a reward: argmax best-of-n, soft best-of-n, conservative ensemble picks.

Soft best-of-n samples candidate i of a pool with probability p_i ∝ exp(r_i / T). Its KL to picking
uniformly (the base policy over the pool) is exact and cheap:
KL(p ‖ uniform) = Σ p_i log(N p_i) = E_p[r]/T − log Σ exp(r_i/T) + log N,
so T traces a smooth reward-vs-KL curve from 0 (T → ∞) to log N (T → 0, distinct scores).
"""

from __future__ import annotations

import numpy as np

from rewardlab.errors import InvalidValueError
from rewardlab.rewards.ensemble import AGGREGATES, aggregate_members

STRATEGIES = ("argmax", "soft", "conservative")


def best_of_n_index(scores: np.ndarray) -> int:
    """The candidate with the highest reward (first one among exact ties)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise InvalidValueError("no candidates to select from")
    return int(np.argmax(scores))


def soft_best_of_n_probs(scores: np.ndarray, temperature: float) -> np.ndarray:
    """p_i ∝ exp(r_i / T) over the pool."""
    if temperature <= 0:
        raise InvalidValueError("temperature must be > 0 (use best_of_n_index for T → 0)")
    from scipy.special import softmax  # imported when used: the command line imports this module at start-up

    return np.asarray(softmax(np.asarray(scores, dtype=np.float64) / temperature))


def kl_to_uniform(probs: np.ndarray) -> float:
    """KL(p ‖ uniform over the pool) = Σ p_i log(N p_i), with 0·log 0 = 0."""
    probs = np.asarray(probs, dtype=np.float64)
    nonzero = probs > 0
    return float(np.sum(probs[nonzero] * np.log(len(probs) * probs[nonzero])))


def soft_best_of_n_kl(scores: np.ndarray, temperature: float) -> float:
    """Closed form of soft best-of-n's KL: E_p[r]/T − logsumexp(r/T) + log N."""
    from scipy.special import logsumexp, softmax

    scaled = np.asarray(scores, dtype=np.float64) / temperature
    probs = softmax(scaled)
    return float(probs @ scaled - logsumexp(scaled) + np.log(len(scaled)))


def sample_soft_best_of_n(scores: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Draw one candidate index with probability ∝ exp(r/T)."""
    probs = soft_best_of_n_probs(scores, temperature)
    return int(rng.choice(len(probs), p=probs))


def conservative_scores(member_scores: np.ndarray, how: str = "lcb", lam: float = 1.0) -> np.ndarray:
    """One reward per candidate from (members, candidates) ensemble rewards: ``min`` or ``lcb`` = mean − λ·std
    (or ``mean``), so a candidate only wins if the members agree it is good (Coste et al., 2023)."""
    if how not in AGGREGATES:
        raise InvalidValueError(f"unknown aggregate {how!r}; known: {', '.join(AGGREGATES)}")
    return aggregate_members(member_scores, lam)[how]


def select_index(
    scores: np.ndarray,
    strategy: str = "argmax",
    *,
    temperature: float = 1.0,
    how: str = "lcb",
    lam: float = 1.0,
    rng: np.random.Generator | None = None,
) -> int:
    """One candidate index. ``scores`` is (candidates,), or (members, candidates) for ``conservative``."""
    if strategy == "argmax":
        return best_of_n_index(scores if np.ndim(scores) == 1 else np.mean(scores, axis=0))
    if strategy == "soft":
        flat = scores if np.ndim(scores) == 1 else np.mean(scores, axis=0)
        return sample_soft_best_of_n(flat, temperature, rng or np.random.default_rng(0))
    if strategy == "conservative":
        if np.ndim(scores) != 2:
            raise InvalidValueError("conservative selection needs per-member scores (an ensemble reward model)")
        return best_of_n_index(conservative_scores(scores, how, lam))
    raise InvalidValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
