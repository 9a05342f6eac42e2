"""What a head learns from: each objective picks its examples from a `TrainingSet` and says how to fit them.

- ``bt``: Bradley-Terry, P(a beats b) = sigmoid(r(a) - r(b)); the loss only sees reward differences, so
  swapping a pair's order (and its target) gives the same loss — both orders are learned at once.
- ``clf``: order-consistent classification (Sun, Shen & Ton, 2025): winners labelled 1, losers 0,
  ties 0.5; the reward is the classifier's logit.
- ``outcome``: logistic regression on correctness labels (outcome reward model).
- ``rating``: regression on standardised ratings; predictions are mapped back to the rating scale.
- label models with their own likelihood and learned parameters (`rewardlab.rewards.likelihoods`): ``davidson``
  (ties modelled, one tie parameter), ``bt-strength`` (comparison strengths as an ordered outcome, ties as a band),
  ``plackett-luce`` (rankings listwise; a decided comparison is a ranking of two) and ``ordinal`` (ratings through
  learned thresholds).

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
    #: per pair, the comparison's strength (NaN: none), for the ``graded`` label model
    strength: np.ndarray | None = None
    #: (n, longest) rankings as item indices best first, padded with −1, for ``plackett-luce``; ``left`` is the winner
    lists: np.ndarray | None = None
    #: the (low, high) scale the targets were divided onto [0, 1] from, for ``ordinal`` (None: raw values)
    scale: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.target)


#: the examples of one objective in a training set; raises `ModelError` if the data lacks its supervision
ExampleBuilder = Callable[[TrainingSet], Examples]


@dataclass(frozen=True)
class Objective:
    """How a head is fitted: which examples, and which loss family.

    ``pairwise``: the targets are P(left beats right) and the loss sees r(left) − r(right) (logistic).
    ``regression``: pointwise real targets, squared loss on standardised targets. Neither: pointwise
    probabilities with a logistic loss, the reward being the logit. ``label_model``: the loss is that registered
    likelihood's (`rewardlab.rewards.likelihoods`), with its own parameters; only `TorchHead` fits those.
    """

    name: str
    examples: ExampleBuilder
    feedback: str  # what it learns from, as listed to users: comparisons, labels, ratings, ...
    pairwise: bool = False
    regression: bool = False
    label_model: str | None = None


OBJECTIVES: Registry[Objective] = Registry("objective", ModelError)


def register_objective(name: str, feedback: str, *, pairwise: bool = False, regression: bool = False,
                       label_model: str | None = None) -> Callable[[ExampleBuilder], ExampleBuilder]:
    """Decorator: register an example builder as objective ``name``."""
    if pairwise and regression:
        raise ModelError(f"objective {name!r}: pairwise objectives are logistic, not regression")
    if label_model is not None and (pairwise or regression):
        raise ModelError(f"objective {name!r}: a label model brings its own loss; it is neither pairwise nor regression")

    def add(builder: ExampleBuilder) -> ExampleBuilder:
        OBJECTIVES.register(name, Objective(name, builder, feedback, pairwise, regression, label_model))
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


@register_objective("davidson", "comparisons", label_model="davidson")
def _davidson(data: TrainingSet) -> Examples:
    if not len(data.pair_a):
        raise ModelError("a Davidson head needs comparisons or rankings; this data has none")
    target = np.where(data.ties(), 0.5, data.pair_target).astype(np.float32)
    return Examples(data.pair_a, data.pair_b, target, np.arange(len(data.pair_a)))


@register_objective("bt-strength", "comparisons", label_model="graded")
def _graded(data: TrainingSet) -> Examples:
    if not len(data.pair_a):
        raise ModelError("a strength-graded head needs comparisons or rankings; this data has none")
    target = np.where(data.ties(), 0.5, data.pair_target).astype(np.float32)
    return Examples(data.pair_a, data.pair_b, target, np.arange(len(data.pair_a)), strength=data.strengths())


@register_objective("plackett-luce", "rankings", label_model="plackett-luce")
def _plackett_luce(data: TrainingSet) -> Examples:
    """Each ranking is one list; each decided comparison (not the pairs rankings expand into) a list of two.
    Ties carry no order, so they are left out of this objective (`davidson` models them)."""
    decided = ~data.ties() & ~data.from_rankings()
    winner = np.where(data.pair_target >= 0.5, data.pair_a, data.pair_b)[decided]
    loser = np.where(data.pair_target >= 0.5, data.pair_b, data.pair_a)[decided]
    lists = [*data.rankings, *np.stack([winner, loser], axis=1)]
    if not lists:
        raise ModelError("a Plackett-Luce head needs rankings or decided comparisons; this data has none")
    longest = max(len(r) for r in lists)
    padded = np.full((len(lists), longest), -1, dtype=np.int64)
    for i, ranking in enumerate(lists):
        padded[i, : len(ranking)] = ranking
    return Examples(padded[:, 0], None, np.zeros(len(lists), dtype=np.float32), lists=padded)


@register_objective("ordinal", "ratings", label_model="ordinal")
def _ordinal(data: TrainingSet) -> Examples:
    if not len(data.rating_item):
        raise ModelError("an ordinal head needs ratings; this data has none")
    scales = data.rating_scales()
    has_scale = ~np.isnan(scales).any(axis=1)
    if not has_scale.any():
        return Examples(data.rating_item, None, data.rating_value.astype(np.float32))
    if not has_scale.all():
        raise ModelError(f"an ordinal head needs every rating on a known scale or none: {int((~has_scale).sum())} of "
                         f"{len(has_scale)} ratings have no scale")
    distinct = np.unique(scales, axis=0)
    if (distinct[:, 1] <= distinct[:, 0]).any():
        raise ModelError(f"a rating scale must run from low to high, not {distinct[distinct[:, 1] <= distinct[:, 0]][0]}")
    share = (data.rating_value - scales[:, 0]) / (scales[:, 1] - scales[:, 0])  # on [0, 1], so scales can mix
    scale = (float(distinct[0, 0]), float(distinct[0, 1])) if len(distinct) == 1 else (0.0, 1.0)
    return Examples(data.rating_item, None, share.astype(np.float32), scale=scale)


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
