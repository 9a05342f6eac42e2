"""Scoring texts with an annotator-aware reward model: one annotator's reward, or the spread over annotators.

`annotator_stats` is what ``rewardlab score --annotator ID`` and ``--distribution`` print. `AnnotatorScoring` wraps a
model so the ordinary record-file scorer (`rewardlab.rewards.scoring.score_record_file`) writes these numbers as
``reward`` plus ``reward_mean``, ``reward_std``, ``reward_q10`` ... without a second reader of record files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.rewards.model import RewardModel


def is_annotator_aware(head: Any) -> bool:
    """Whether ``head`` scores per annotator (``predict_for``) and as a distribution (``predict_distribution``); an
    ensemble does when its members do (its ``annotator_aware``)."""
    return getattr(head, "annotator_aware", True) and all(
        callable(getattr(head, name, None)) for name in ("predict_for", "predict_distribution"))


def require_annotator_aware(model: RewardModel, what: str) -> None:
    """A `ModelError` naming the model's kind when its head cannot score per annotator."""
    if not is_annotator_aware(model.head):
        raise ModelError(f"{what} needs an annotator-aware reward model (head kind bt-mlp-annotator or bt-mixture); "
                         f"this one is {model.kind or type(model.head).__name__!r}")


def annotator_stats(model: RewardModel, prompts: Sequence[str], responses: Sequence[str], *,
                    annotator: str | None = None, distribution: bool = False) -> dict[str, np.ndarray]:
    """``score``: annotator ``annotator``'s reward (None: the population's); with ``distribution``, also the mean,
    std and 10/50/90% quantiles of the known annotators' rewards. An unknown annotator gets the population reward
    and an `UnknownAnnotatorWarning` (from the head)."""
    require_annotator_aware(model, "--annotator" if annotator is not None else "--distribution")
    head: Any = model.head
    x = model.featurize(prompts, responses)
    stats = {"score": np.asarray(head.predict(x) if annotator is None else head.predict_for(x, annotator))}
    if distribution:
        stats |= {k: np.asarray(v) for k, v in head.predict_distribution(x).items()}
    return stats


class AnnotatorScoring:
    """A stand-in for a `RewardModel` in `score_record_file`: its ``score_stats`` are `annotator_stats`, and it
    reports every statistic (as an ensemble's are reported)."""

    is_ensemble = True

    def __init__(self, model: RewardModel, annotator: str | None, distribution: bool) -> None:
        require_annotator_aware(model, "--annotator" if annotator is not None else "--distribution")
        self.model = model
        #: the annotator was not in training: scored as the population (the caller says so once, up front)
        self.unknown = annotator is not None and annotator not in getattr(model.head, "annotators", [])
        self.annotator = None if self.unknown else annotator
        self.distribution = distribution

    def score_stats(self, prompts: Sequence[str], responses: Sequence[str],
                    lam: float | None = None) -> dict[str, np.ndarray]:
        return annotator_stats(self.model, prompts, responses, annotator=self.annotator,
                               distribution=self.distribution)
