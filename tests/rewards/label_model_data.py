"""Synthetic feedback drawn from each label model's own likelihood, with a known linear reward, for recovery tests."""

from __future__ import annotations

import numpy as np

from rewardlab.rewards.likelihoods import davidson_probabilities
from rewardlab.rewards.training_set import TrainingSet


def known_reward(n_items: int, dim: int, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Features and their true reward x·w, |w| = ``scale`` (so rewards spread over about ±``scale``)."""
    x = rng.normal(size=(n_items, dim)).astype(np.float32)
    w = rng.normal(size=dim)
    return x, x @ (scale * w / np.linalg.norm(w))


def _base(x: np.ndarray, group: np.ndarray) -> dict[str, object]:
    empty = np.zeros(0, dtype=np.int64)
    return {"x": x, "response_ids": [f"r{i}" for i in range(len(x))], "group": group, "pair_a": empty,
            "pair_b": empty, "pair_target": np.zeros(0, np.float32), "rating_item": empty,
            "rating_value": np.zeros(0, np.float32), "label_item": empty, "label_value": np.zeros(0, np.float32)}


def davidson_pairs(n_pairs: int, nu: float, seed: int, dim: int = 5, scale: float = 2.0) -> tuple[TrainingSet, np.ndarray]:
    """One pair per prompt; outcome b / tie / a drawn from Davidson's model with tie parameter ``nu``."""
    rng = np.random.default_rng(seed)
    x, true = known_reward(2 * n_pairs, dim, scale, rng)
    a, b = np.arange(0, 2 * n_pairs, 2), np.arange(1, 2 * n_pairs, 2)
    p = davidson_probabilities(true[a] - true[b], nu)
    outcome = (rng.random(n_pairs)[:, None] > np.cumsum(p, axis=1)).sum(1)  # 0 b, 1 tie, 2 a
    data = TrainingSet(**_base(x, np.arange(2 * n_pairs) // 2) | {  # type: ignore[arg-type]
        "pair_a": a, "pair_b": b, "pair_target": (outcome / 2).astype(np.float32), "pair_tie": outcome == 1})
    return data, true


def graded_pairs(n_pairs: int, tie_halfwidth: float, cutpoints: list[float], strengths: list[float], seed: int,
                 missing: float = 0.2, dim: int = 5, scale: float = 2.0) -> tuple[TrainingSet, np.ndarray]:
    """Δ + logistic noise cut at ±tie_halfwidth (a tie) and at ±cutpoints (stronger levels: ``strengths``); a share
    ``missing`` of the decided pairs lose their strength."""
    rng = np.random.default_rng(seed)
    x, true = known_reward(2 * n_pairs, dim, scale, rng)
    a, b = np.arange(0, 2 * n_pairs, 2), np.arange(1, 2 * n_pairs, 2)
    latent = true[a] - true[b] + rng.logistic(size=n_pairs)
    tie = np.abs(latent) <= tie_halfwidth
    level = np.searchsorted(np.array(cutpoints), np.abs(latent))  # 0: the weakest strength
    strength = np.where(tie | (rng.random(n_pairs) < missing), np.nan, np.array(strengths)[level])
    target = np.where(tie, 0.5, (latent > 0).astype(np.float64)).astype(np.float32)
    data = TrainingSet(**_base(x, np.arange(2 * n_pairs) // 2) | {  # type: ignore[arg-type]
        "pair_a": a, "pair_b": b, "pair_target": target, "pair_tie": tie, "pair_strength": strength})
    return data, true


def pl_rankings(n_prompts: int, per_prompt: int, seed: int, dim: int = 5, scale: float = 2.0,
                expand_pairs: bool = True) -> tuple[TrainingSet, np.ndarray]:
    """``per_prompt`` items per prompt ranked by a Plackett-Luce draw (Gumbel-max: sort r + Gumbel noise); the
    rankings' pairwise expansion is there too, as `build_training_set` makes it."""
    rng = np.random.default_rng(seed)
    x, true = known_reward(n_prompts * per_prompt, dim, scale, rng)
    items = np.arange(n_prompts * per_prompt).reshape(n_prompts, per_prompt)
    noisy = true[items] + rng.gumbel(size=items.shape)
    rankings = [row[np.argsort(-noise)] for row, noise in zip(items, noisy)]
    i, j = np.triu_indices(per_prompt, 1)
    pa = np.concatenate([r[i] for r in rankings]) if expand_pairs else np.zeros(0, np.int64)
    pb = np.concatenate([r[j] for r in rankings]) if expand_pairs else np.zeros(0, np.int64)
    data = TrainingSet(**_base(x, np.arange(len(x)) // per_prompt) | {  # type: ignore[arg-type]
        "pair_a": pa, "pair_b": pb, "pair_target": np.ones(len(pa), np.float32),
        "pair_from_ranking": np.ones(len(pa), bool), "rankings": rankings})
    return data, true


def ordinal_ratings(n_items: int, thresholds: list[float], seed: int, low: float = 1.0, dim: int = 5,
                    scale: float = 2.0) -> tuple[TrainingSet, np.ndarray]:
    """Ratings low, low + 1, ...: level k when r + logistic noise falls between thresholds k−1 and k."""
    rng = np.random.default_rng(seed)
    x, true = known_reward(n_items, dim, scale, rng)
    level = np.searchsorted(np.array(thresholds), true + rng.logistic(size=n_items))
    high = low + len(thresholds)
    data = TrainingSet(**_base(x, np.arange(n_items) // 2) | {  # type: ignore[arg-type]
        "rating_item": np.arange(n_items), "rating_value": (low + level).astype(np.float32),
        "rating_scale": np.tile([low, high], (n_items, 1))})
    return data, true
