"""Scoring a trained reward model on held-out comparisons."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import DataError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.pairwise import pairwise_metrics
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.training_set import OUTCOME_TARGET


def evaluate_model(
    model: RewardModel,
    dataset: FeedbackDataset,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Estimate]:
    """Pairwise accuracy and calibration of ``model`` on ``dataset``'s comparisons, with CIs by prompt."""
    if not dataset.comparisons:
        raise DataError("no comparisons to evaluate on", source=dataset.name)
    feats, _ = featurize_dataset(dataset, model.encoder, model.features, cache_dir=model.cache_dir,
                                 on_progress=on_progress)
    comps = dataset.comparisons
    score_a = model.predict(np.stack([feats[c.a] for c in comps]))
    score_b = model.predict(np.stack([feats[c.b] for c in comps]))
    groups = dataset.prompt_groups()
    bootstrap = GroupBootstrap(np.array([groups[c.prompt_id] for c in comps]), n_resamples=n_resamples, seed=seed)
    target = np.array([OUTCOME_TARGET[c.outcome] for c in comps])
    return pairwise_metrics(score_a, score_b, target, bootstrap)
