"""Scoring texts with a multi-objective reward model: one column per objective, and the scalar under other weights.

What ``rewardlab score --objectives`` and ``--weights relevance=1,factuality=2`` print. `ObjectiveScoring` wraps a
model so the ordinary record-file scorer (`rewardlab.rewards.scoring.score_record_file`) writes these numbers as
``reward`` plus ``reward_<objective>`` without a second reader of record files.

Re-scalarizing: with user weights the reward is Σ_k weight_k · o_k(x), o_k the objective logits; an objective the
weights leave out weighs 0. The model's own reward (no ``--weights``) is its learned β·Σ w_k(prompt) o_k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.errors import ModelError, RewardlabError
from rewardlab.rewards.model import RewardModel


def require_multi_objective(model: RewardModel, what: str) -> Any:
    """The model's head if it has objective outputs, else a `ModelError` naming the model's kind."""
    head = model.head
    if not (callable(getattr(head, "predict_objectives", None)) and hasattr(head, "objective_names")):
        raise ModelError(f"{what} needs a multi-objective reward model (head kind multi-objective); this one is "
                         f"{model.kind or type(head).__name__!r}")
    return head


def parse_weights(text: str, objectives: Sequence[str]) -> dict[str, float]:
    """``relevance=1,factuality=2`` as {objective: weight}; an unknown objective, a repeated one, a missing ``=`` or a
    non-finite number is one error that names it and the model's objectives."""
    known = ", ".join(objectives)
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RewardlabError(f"--weights takes name=number pairs, comma-separated (objectives: {known}); got "
                                 f"{part!r}")
        if name not in objectives:
            raise RewardlabError(f"unknown objective {name!r} in --weights; this model's objectives: {known}")
        if name in weights:
            raise RewardlabError(f"objective {name!r} is weighted twice in --weights")
        try:
            weight = float(value)
        except ValueError:
            raise RewardlabError(f"--weights {name}={value!r}: not a number") from None
        if not math.isfinite(weight):
            raise RewardlabError(f"--weights {name}={value!r}: the weight must be a finite number")
        weights[name] = weight
    return weights


def objective_stats(model: RewardModel, prompts: Sequence[str], responses: Sequence[str], *, objectives: bool = True,
                    weights: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """``score`` (the model's reward, or Σ weight_k·o_k under ``weights``) and, with ``objectives``, each objective's
    logit under its name."""
    head = require_multi_objective(model, "--objectives" if weights is None else "--weights")
    names = list(head.objective_names)
    x = model.featurize(prompts, responses)
    logits = np.asarray(head.predict_objectives(x))
    if weights is None:
        score = np.asarray(head.predict(x))
    else:
        score = logits @ np.array([weights.get(name, 0.0) for name in names])
    stats = {"score": score}
    if objectives:
        stats |= {name: logits[:, k] for k, name in enumerate(names)}
    return stats


class ObjectiveScoring:
    """A stand-in for a `RewardModel` in `score_record_file`: its ``score_stats`` are `objective_stats`, and every
    statistic is reported (as an ensemble's are)."""

    is_ensemble = True

    def __init__(self, model: RewardModel, objectives: bool, weights: str | None) -> None:
        head = require_multi_objective(model, "--objectives" if weights is None else "--weights")
        self.model = model
        self.objectives = objectives
        self.weights = None if weights is None else parse_weights(weights, list(head.objective_names))

    def score_stats(self, prompts: Sequence[str], responses: Sequence[str],
                    lam: float | None = None) -> dict[str, np.ndarray]:
        return objective_stats(self.model, prompts, responses, objectives=self.objectives, weights=self.weights)
