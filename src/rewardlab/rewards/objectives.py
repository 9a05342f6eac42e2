"""What a head learns from: each objective picks its examples from a `TrainingSet` and scores them.

- ``bt``: Bradley-Terry, P(a beats b) = sigmoid(r(a) - r(b)); the loss only sees reward differences, so
  swapping a pair's order (and its target) gives the same loss — both orders are learned at once.
- ``clf``: order-consistent classification (Sun, Shen & Ton, 2025): winners labelled 1, losers 0,
  ties 0.5; the reward is the classifier's logit.
- ``outcome``: logistic regression on correctness labels (outcome reward model).
- ``rating``: regression on standardised ratings; predictions are mapped back to the rating scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.rewards.training_set import TrainingSet

OBJECTIVES = ("bt", "clf", "outcome", "rating")


@dataclass
class Examples:
    """Flat supervision for one objective: pairs (``left``/``right`` item rows) or single items."""

    left: np.ndarray
    right: np.ndarray | None  # None for pointwise objectives
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def examples_for(objective: str, data: TrainingSet) -> Examples:
    if objective == "bt":
        if not len(data.pair_a):
            raise ModelError("a Bradley-Terry head needs comparisons or rankings; this data has none")
        return Examples(data.pair_a, data.pair_b, data.pair_target)
    if objective == "clf":
        if not len(data.pair_a):
            raise ModelError("a classification head needs comparisons or rankings; this data has none")
        items, targets = data.item_labels()
        return Examples(items, None, targets.astype(np.float32))
    if objective == "outcome":
        if not len(data.label_item):
            raise ModelError("an outcome head needs correctness labels; this data has none")
        return Examples(data.label_item, None, data.label_value)
    if objective == "rating":
        if not len(data.rating_item):
            raise ModelError("a rating head needs ratings; this data has none")
        return Examples(data.rating_item, None, data.rating_value)
    raise ModelError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")



@dataclass
class EarlyStoppingSplit:
    """Training examples, and validation examples from held-out prompts when there are any."""

    train: TrainingSet
    train_examples: Examples
    val: TrainingSet | None
    val_examples: Examples | None


MIN_GROUPS_TO_VALIDATE = 10


def split_for_early_stopping(objective: str, data: TrainingSet, val_fraction: float, seed: int) -> EarlyStoppingSplit:
    """Hold out whole prompt groups for early stopping (when there are enough of them).

    Fails first, before any splitting, if ``data`` lacks the supervision ``objective`` needs.
    """
    examples_for(objective, data)
    if val_fraction <= 0 or len(np.unique(data.group)) < MIN_GROUPS_TO_VALIDATE:
        return EarlyStoppingSplit(data, examples_for(objective, data), None, None)
    train, val = data.split_by_group(val_fraction, seed)
    try:
        val_examples: Examples | None = examples_for(objective, val)
    except ModelError:  # the held-out prompts happen to carry none of this supervision
        val_examples = None
    return EarlyStoppingSplit(train, examples_for(objective, train), val, val_examples)
