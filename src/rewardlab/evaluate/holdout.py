"""Scoring a trained reward model on held-out comparisons, beside its length controls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import DataError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.length_controls import (
    CROSS_FIT_FOLDS,
    LengthAudit,
    LengthControls,
    PairLengths,
    cross_fit_length_head,
    length_audit,
    length_controls,
    response_lengths,
    reward_length_spearman,
)
from rewardlab.evaluate.pairwise import pairwise_metrics
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.training_set import OUTCOME_TARGET


@dataclass
class HoldoutResult:
    """A saved model's metrics on held-out pairs, the length controls on the same pairs, and the per-pair scores."""

    metrics: dict[str, Estimate]
    length: LengthControls
    length_audit: LengthAudit
    pair_ids: list[tuple[str, str, str]]  # (prompt id, response a, response b)
    score_a: np.ndarray
    score_b: np.ndarray
    pair_lengths: PairLengths
    pair_fold: np.ndarray  # the cross-fitting fold of each pair (for the length-only head)


def evaluate_model(
    model: RewardModel,
    dataset: FeedbackDataset,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    feature_rows: dict[str, np.ndarray] | None = None,
) -> HoldoutResult:
    """Pairwise accuracy and calibration of ``model`` on ``dataset``'s comparisons, with CIs by prompt, and the
    length controls. The model's training data is not at hand, so the length-only head is cross-fitted on these
    pairs with folds by prompt: every pair is scored by a one-weight fit on the other folds' pairs."""
    if not dataset.comparisons:
        raise DataError("no comparisons to evaluate on", source=dataset.name)
    feats = feature_rows
    if feats is None:  # a caller that needs the rows too (the audit) passes them, so nothing is featurized twice
        feats, _ = featurize_dataset(dataset, model.encoder, model.features, cache_dir=model.cache_dir,
                                     on_progress=on_progress)
    comps = dataset.comparisons
    score_a = model.predict(np.stack([feats[c.a] for c in comps]))
    score_b = model.predict(np.stack([feats[c.b] for c in comps]))
    groups = dataset.prompt_groups()
    pair_group = np.array([groups[c.prompt_id] for c in comps])
    bootstrap = GroupBootstrap(pair_group, n_resamples=n_resamples, seed=seed)
    target = np.array([OUTCOME_TARGET[c.outcome] for c in comps])
    # cross-fitting folds by prompt group (duplicated prompts share one), drawn from the groups already at hand
    unique_groups, group_of_pair = np.unique(pair_group, return_inverse=True)
    k = min(CROSS_FIT_FOLDS, len(unique_groups))
    fold_of_group = np.empty(len(unique_groups), dtype=np.int64)
    fold_of_group[np.random.default_rng(seed).permutation(len(unique_groups))] = np.arange(len(unique_groups)) % max(k, 1)
    pair_fold = fold_of_group[group_of_pair]
    length_a = response_lengths(dataset, [c.a for c in comps])
    length_b = response_lengths(dataset, [c.b for c in comps])
    if k >= 2:
        length_score_a, length_score_b, weights = cross_fit_length_head(length_a, length_b, target, pair_fold)
        fit = f"BT on the log-length difference, cross-fitted on these pairs ({k} folds by prompt)"
    else:
        length_score_a, length_score_b, weights = np.zeros(len(comps)), np.zeros(len(comps)), []
        fit = "not fitted: one prompt, nothing to cross-fit on (scores every pair as a tie)"
    pairs = PairLengths(length_a, length_b, target, length_score_a, length_score_b)
    ids = [(c.prompt_id, c.a, c.b) for c in comps]
    rho = reward_length_spearman([c.a for c in comps], [c.b for c in comps], score_a, score_b, length_a, length_b)
    return HoldoutResult(
        metrics=pairwise_metrics(score_a, score_b, target, bootstrap),
        length=length_controls(pairs, bootstrap, weights, fit),
        length_audit=length_audit(score_a, score_b, pairs, bootstrap, rho),
        pair_ids=ids,
        score_a=score_a,
        score_b=score_b,
        pair_lengths=pairs,
        pair_fold=pair_fold,
    )
