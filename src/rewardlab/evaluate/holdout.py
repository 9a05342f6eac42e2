"""Scoring a trained reward model on held-out comparisons, beside its length controls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
from rewardlab.rewards.features import FeatureRows, feature_rows_on_demand
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


#: rows scored per call: a 200k-pair set is scored without stacking all its feature rows at once
PREDICT_ROWS = 16384


def predict_rows(model: RewardModel, feature_rows: Mapping[str, np.ndarray], response_ids: Sequence[str]) -> np.ndarray:
    """The model's reward of each response, from its feature row, ``PREDICT_ROWS`` rows at a time (memory: one
    block of rows, not a second copy of every pair's features)."""
    def block(ids: Sequence[str]) -> np.ndarray:
        if isinstance(feature_rows, FeatureRows):
            return feature_rows.rows(ids)
        return np.stack([feature_rows[rid] for rid in ids])

    scores = [model.predict(block(response_ids[start : start + PREDICT_ROWS]))
              for start in range(0, len(response_ids), PREDICT_ROWS)]
    return np.concatenate(scores) if scores else np.zeros(0)


def pair_groups(dataset: FeedbackDataset) -> np.ndarray:
    """Each comparison's prompt group as an integer that sorts as the group's name does (so resamples and folds are
    those the names gave): an array of names is as wide as the longest prompt, 400 MB at 200k pairs."""
    groups = dataset.prompt_groups()
    names = [groups[c.prompt_id] for c in dataset.comparisons]
    rank = {name: i for i, name in enumerate(sorted(set(names)))}
    return np.fromiter((rank[name] for name in names), dtype=np.int64, count=len(names))


def evaluate_model(
    model: RewardModel,
    dataset: FeedbackDataset,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    feature_rows: dict[str, np.ndarray] | None = None,
    on_bootstrap_progress: Callable[[int, int], None] | None = None,
) -> HoldoutResult:
    """Pairwise accuracy and calibration of ``model`` on ``dataset``'s comparisons, with CIs by prompt, and the
    length controls. The model's training data is not at hand, so the length-only head is cross-fitted on these
    pairs with folds by prompt: every pair is scored by a one-weight fit on the other folds' pairs.
    ``on_progress`` follows the embedding, ``on_bootstrap_progress`` the resamples being drawn."""
    if not dataset.comparisons:
        raise DataError("no comparisons to evaluate on", source=dataset.name)
    feats: Mapping[str, np.ndarray] | None = feature_rows
    if feats is None:  # a caller that needs the rows too (the audit) passes them, so nothing is featurized twice
        # made a block at a time while scoring: the (responses × width) matrix is never held whole
        feats, _ = feature_rows_on_demand(dataset, model.encoder, model.features, cache_dir=model.cache_dir,
                                          on_progress=on_progress)
    comps = dataset.comparisons
    score_a = predict_rows(model, feats, [c.a for c in comps])
    score_b = predict_rows(model, feats, [c.b for c in comps])
    pair_group = pair_groups(dataset)
    bootstrap = GroupBootstrap(pair_group, n_resamples=n_resamples, seed=seed, on_progress=on_bootstrap_progress)
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
