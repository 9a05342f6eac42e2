"""What a head learns from: each objective picks its examples from a `TrainingSet` and says how to fit them.

- ``bt``: Bradley-Terry, P(a beats b) = sigmoid(r(a) - r(b)); the loss only sees reward differences, so
  swapping a pair's order (and its target) gives the same loss — both orders are learned at once.
- ``clf``: order-consistent classification (Sun, Shen & Ton, 2025): winners labelled 1, losers 0,
  ties 0.5; the reward is the classifier's logit.
- ``outcome``: logistic regression on correctness labels (outcome reward model).
- ``rating``: regression on standardised ratings; predictions are mapped back to the rating scale.

Objectives live in the `OBJECTIVES` registry; a new one is a function from `TrainingSet` to `Examples`
registered with `@register_objective(...)`. Heads read only its flags (``pairwise``, ``regression``),
never its name, so every head that supports those flags can train on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.registry import Registry
from rewardlab.rewards.training_set import TrainingSet


@dataclass
class Examples:
    """Flat supervision for one objective: pairs (``left``/``right`` item rows) or single items."""

    left: np.ndarray
    right: np.ndarray | None  # None for pointwise objectives
    target: np.ndarray
    #: for examples built from comparisons, the pair each one comes from (so per-pair weights reach them)
    source_pair: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)


#: the examples of one objective in a training set; raises `ModelError` if the data lacks its supervision
ExampleBuilder = Callable[[TrainingSet], Examples]


@dataclass(frozen=True)
class Objective:
    """How a head is fitted: which examples, and which loss family.

    ``pairwise``: the targets are P(left beats right) and the loss sees r(left) − r(right) (logistic).
    ``regression``: pointwise real targets, squared loss on standardised targets. Neither: pointwise
    probabilities with a logistic loss, the reward being the logit.
    """

    name: str
    examples: ExampleBuilder
    feedback: str  # what it learns from, as listed to users: comparisons, labels, ratings, ...
    pairwise: bool = False
    regression: bool = False


OBJECTIVES: Registry[Objective] = Registry("objective", ModelError)


def register_objective(name: str, feedback: str, *, pairwise: bool = False,
                       regression: bool = False) -> Callable[[ExampleBuilder], ExampleBuilder]:
    """Decorator: register an example builder as objective ``name``."""
    if pairwise and regression:
        raise ModelError(f"objective {name!r}: pairwise objectives are logistic, not regression")

    def add(builder: ExampleBuilder) -> ExampleBuilder:
        OBJECTIVES.register(name, Objective(name, builder, feedback, pairwise, regression))
        return builder

    return add


def get_objective(name: str) -> Objective:
    """The registered objective ``name``, or a `ModelError` listing the known ones."""
    return OBJECTIVES.lookup(name)


@register_objective("bt", "comparisons", pairwise=True)
def _bradley_terry(data: TrainingSet) -> Examples:
    if not len(data.pair_a):
        raise ModelError("a Bradley-Terry head needs comparisons or rankings; this data has none")
    return Examples(data.pair_a, data.pair_b, data.pair_target, np.arange(len(data.pair_a)))


@register_objective("clf", "comparisons")
def _classification(data: TrainingSet) -> Examples:
    if not len(data.pair_a):
        raise ModelError("a classification head needs comparisons or rankings; this data has none")
    items, targets = data.item_labels()
    pairs = np.arange(len(data.pair_a))
    return Examples(items, None, targets.astype(np.float32), np.concatenate([pairs, pairs]))


@register_objective("outcome", "labels")
def _outcome(data: TrainingSet) -> Examples:
    if not len(data.label_item):
        raise ModelError("an outcome head needs correctness labels; this data has none")
    return Examples(data.label_item, None, data.label_value)


@register_objective("rating", "ratings", regression=True)
def _rating(data: TrainingSet) -> Examples:
    if not len(data.rating_item):
        raise ModelError("a rating head needs ratings; this data has none")
    return Examples(data.rating_item, None, data.rating_value)


def examples_for(objective: str, data: TrainingSet) -> Examples:
    """The examples objective ``objective`` trains on, built from ``data`` (a `ModelError` if the data lacks its feedback)."""
    return get_objective(objective).examples(data)


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
