"""Objective labels for a multi-objective reward model: from `Rating` rows that name their objective to the (n_items, K)
array `MultiObjectiveHead.fit` takes, and a `RewardModel` trained with them.

A data set carries a per-objective label as a ``Rating(response_id, value, scale, meta={"objective": name})``: any
reader or JSONL file can hold them beside its comparisons (`rewardlab.data.objectives_qa` makes them for QA-Feedback).
The value is mapped onto [0, 1] by its scale ((value − low) / (high − low)); without a scale it must already lie in
[0, 1]. Several labels of one response for one objective are averaged (a soft label); a response with none is NaN, which
the head masks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder
from rewardlab.errors import DataError, ModelError
from rewardlab.rewards.features import MODE_PARTS, check_mode, featurize_dataset
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.multi_objective import MultiObjectiveHead
from rewardlab.rewards.training_set import build_training_set

if TYPE_CHECKING:
    import torch

OBJECTIVE_KEY = "objective"
KIND = "multi-objective"


def objective_names(dataset: FeedbackDataset) -> list[str]:
    """The objectives ``dataset``'s ratings name, in order of first appearance."""
    seen: dict[str, None] = {}
    for rating in dataset.ratings:
        name = rating.meta.get(OBJECTIVE_KEY)
        if name is not None:
            seen.setdefault(str(name), None)
    return list(seen)


def objective_matrix(dataset: FeedbackDataset, response_ids: Sequence[str], objectives: Sequence[str]) -> np.ndarray:
    """(len(response_ids), K) labels in [0, 1], NaN where a response has none for an objective.

    Ratings naming an objective outside ``objectives`` are a `DataError` (a typo would otherwise drop them silently);
    ratings without an objective are not objective labels and are left alone."""
    index = {rid: i for i, rid in enumerate(response_ids)}
    column = {name: k for k, name in enumerate(objectives)}
    total = np.zeros((len(response_ids), len(objectives)))
    count = np.zeros_like(total)
    for row, rating in enumerate(dataset.ratings, start=1):
        name = rating.meta.get(OBJECTIVE_KEY)
        if name is None:
            continue
        if str(name) not in column:
            raise DataError(f"objective {name!r} is not one of the model's: {', '.join(objectives)}",
                            source=dataset.name, row=row, field=f"ratings.meta.{OBJECTIVE_KEY}")
        value = rating.value
        if rating.scale is not None:
            low, high = rating.scale
            if not high > low:
                raise DataError(f"scale {rating.scale} is empty", source=dataset.name, row=row, field="ratings.scale")
            value = (value - low) / (high - low)
        if not 0.0 <= value <= 1.0:
            raise DataError(f"an objective label must lie in [0, 1] (or on its scale), got {rating.value!r}",
                            source=dataset.name, row=row, field="ratings.value")
        if rating.response_id in index:
            i = index[rating.response_id]
            total[i, column[str(name)]] += value
            count[i, column[str(name)]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def prompt_columns(mode: str, encoder_dim: int) -> tuple[int, int] | None:
    """Where the prompt's own vector sits in a feature row of ``mode`` (None: the mode has no prompt vector)."""
    check_mode(mode)
    parts = MODE_PARTS[mode]
    if "p" not in parts:
        return None
    start = parts.index("p") * encoder_dim
    return start, start + encoder_dim


def create_model(encoder: Encoder | str = DEFAULT_ENCODER, features: str = "interaction",
                 objectives: Sequence[str] = ("relevance", "factuality", "completeness"), scalarization: str = "gated",
                 seed: int = 0, cache_dir: str | Path | None = None, **params: Any) -> RewardModel:
    """An unfitted multi-objective `RewardModel`; gated weights read the prompt columns of ``features``."""
    model = RewardModel.create(KIND, encoder, features, seed=seed, cache_dir=cache_dir, objectives=list(objectives),
                               scalarization=scalarization, **params)
    if scalarization not in ("fixed", "gated"):
        raise ModelError(f"unknown scalarization {scalarization!r}; known: fixed, gated")
    if scalarization == "gated":
        columns = prompt_columns(features, model.encoder.dim)
        if columns is None:
            raise ModelError(f"gated weights read the prompt, and feature mode {features!r} has no prompt vector; use "
                             "prompt+response or interaction, or fixed weights")
        model.head.set_params(prompt_columns=list(columns))
    return model


def fit_model(model: RewardModel, dataset: FeedbackDataset, feature_rows: dict[str, np.ndarray] | None = None,
              on_progress: Callable[[int, int], None] | None = None, *,
              device: torch.device | str | None = None) -> RewardModel:
    """Train a multi-objective ``model`` on ``dataset``: its objective-naming ratings and its comparisons
    (``on_progress`` follows the embedding); the head fits on ``device`` (None: the CPU; `MultiObjectiveHead.fit`)."""
    head = model.head
    if not isinstance(head, MultiObjectiveHead):
        raise ModelError(f"fit_model trains a multi-objective head, not {type(head).__name__}")
    started = time.perf_counter()
    if feature_rows is None:
        feature_rows, _ = featurize_dataset(dataset, model.encoder, model.features, cache_dir=model.cache_dir,
                                            on_progress=on_progress)
    data = build_training_set(dataset, {rid: feature_rows[rid] for rid in dataset.responses})
    head.fit(data, labels=objective_matrix(dataset, data.response_ids, head.objective_names), device=device)
    model.train_info = {"data": dataset.name, "data_fingerprint": dataset.fingerprint(),
                        "data_summary": dataset.summary(), "fit_seconds": round(time.perf_counter() - started, 3)}
    return model


def train_on_dataset(dataset: FeedbackDataset, encoder: Encoder | str = DEFAULT_ENCODER, features: str = "interaction",
                     seed: int = 0, cache_dir: str | Path | None = None,
                     on_progress: Callable[[int, int], None] | None = None, *, device: torch.device | str | None = None,
                     **params: Any) -> RewardModel:
    """A multi-objective model on the objectives ``dataset``'s ratings name (gated weights where ``features`` has a
    prompt vector, else fixed; ``params`` override, e.g. ``scalarization="fixed"``), its head fitted on ``device``.
    No such rating is an error: the objectives would be unnamed factors, not what a user asked for."""
    names = objective_names(dataset)
    if not names:
        raise DataError("no rating names an objective (meta.objective); a multi-objective model learns each objective "
                        "from such ratings (e.g. the qa-feedback-objectives dataset)", source=dataset.name)
    check_mode(features)
    params.setdefault("scalarization", "gated" if "p" in MODE_PARTS[features] else "fixed")
    params.setdefault("objectives", names)
    model = create_model(encoder, features, seed=seed, cache_dir=cache_dir, **params)
    return fit_model(model, dataset, on_progress=on_progress, device=device)
