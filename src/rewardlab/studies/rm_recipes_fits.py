"""The recipe study's fits: one per training set × recipe × head, each independent of the others.

Each fit trains on one set's training part (its cached features given) and scores every test block, with the
study's seed; nothing it does depends on another fit. So they can run in this process, one after the other, or as
Ray tasks (`rewardlab.evaluate.ray_tasks`, with ``ray=ADDRESS``): the data goes to the cluster once, the results
come back in the serial order, and the scores are the same bit for bit (tests/studies/test_rm_recipes_ray.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray, rebuilt_encoder

#: (training set, recipe, head kind)
Condition = tuple[str, str, str]


@dataclass(frozen=True)
class FitInputs:
    """What every fit of a run shares: the training parts, the cached feature rows and the test blocks' features."""

    recipes: Mapping[str, Any]  # recipe name -> rm_recipes.Recipe
    seed: int
    cache_dir: str | None
    encoder_spec: str
    encoder_fingerprint: str
    trains: Mapping[str, FeedbackDataset]
    rows: Mapping[tuple[str, str], Mapping[str, np.ndarray]]  # (set, feature mode) -> response id -> row
    tests: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]]  # (test block, feature mode) -> (x_a, x_b)
    test_names: Sequence[str]
    #: where the heads fit (a resolved name; None: the CPU, and always on Ray)
    device: str | None = None


@dataclass(frozen=True)
class FitOutcome:
    seconds: float
    augmented_pairs: dict[str, int] | None
    #: test block -> (scores of side a, scores of side b)
    scores: dict[str, tuple[np.ndarray, np.ndarray]]


def fit_condition(inputs: FitInputs, condition: Condition, encoder: Encoder | None = None) -> FitOutcome:
    """Train one model and score every test block. ``encoder`` None: rebuilt from its spec (in a Ray worker)."""
    from rewardlab.rewards.model import RewardModel  # torch loads only when a model is trained

    train_name, recipe_name, kind = condition
    recipe = inputs.recipes[recipe_name]
    if encoder is None:
        encoder = rebuilt_encoder(inputs.encoder_spec, inputs.encoder_fingerprint)
    started = time.perf_counter()
    model = RewardModel.create(kind, encoder=encoder, features=recipe.features, seed=inputs.seed,
                               cache_dir=inputs.cache_dir, **recipe.model_params())
    model.fit(inputs.trains[train_name], feature_rows=dict(inputs.rows[(train_name, recipe.features)]),
              device=inputs.device)
    seconds = time.perf_counter() - started
    scores = {}
    for name in inputs.test_names:
        x_a, x_b = inputs.tests[(name, recipe.features)]
        scores[name] = (np.asarray(model.predict(x_a), dtype=np.float64), np.asarray(model.predict(x_b), dtype=np.float64))
    return FitOutcome(seconds, model.train_info.get("augment", {}).get("added"), scores)


def _fit_unit(shared: tuple[FitInputs, EncoderHandle], condition: Condition) -> FitOutcome:
    inputs, handle = shared
    return fit_condition(inputs, condition, handle.encoder)


def fit_all(inputs: FitInputs, conditions: Sequence[Condition], encoder: Encoder, ray: str | None,
            on_result: Callable[[Condition, FitOutcome], None]) -> None:
    """Every condition, in order: here (``ray`` None) or as Ray tasks on the cluster at ``ray``; ``on_result`` sees
    each outcome in the order of ``conditions`` either way. Both paths fit on one torch thread
    (`map_here_or_on_ray`), so their numbers are equal bit for bit at any size."""
    map_here_or_on_ray(_fit_unit, (inputs, EncoderHandle(encoder)), conditions, ray, on_result=on_result)
