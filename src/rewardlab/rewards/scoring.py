"""Scoring many texts with a reward model: rows of a record file, or candidate pools (best-of-n).

A scored row keeps every input field and adds ``reward`` (plus ``reward_mean`` ... for ensembles); a candidate
pool (``{"prompt", "responses": [...]}``, what `rewardlab generate run` writes) gets a ``rewards`` list instead.

A reward that is not a finite number (NaN or inf: a diverged model) is written as ``null``, never as a bare ``NaN``,
which is not JSON; `count_missing` counts them so a command can warn. (Loading already refuses non-finite weights.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.candidates import CandidateSet, split_by_pool
from rewardlab.data.records import get_field, iter_records, require_text
from rewardlab.errors import DataError, ModelError
from rewardlab.rewards.model import RewardModel


def json_number(value: Any) -> float | None:
    """A float for JSON output: None (``null``) for NaN or inf, which JSON cannot hold."""
    number = float(value)
    return number if math.isfinite(number) else None


def json_numbers(stats: dict[str, np.ndarray], row: int = 0) -> dict[str, float | None]:
    """One row of ``stats`` as JSON-safe numbers (rounded to 6 places)."""
    return {k: None if (x := json_number(v[row])) is None else round(x, 6) for k, v in stats.items()}


def count_missing(row: dict[str, Any]) -> int:
    """How many rewards of a scored row are null (not finite)."""
    values = [v for k, v in row.items() if k == "reward" or k == "rewards"]
    flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
    return sum(x is None for x in flat)


def _reward_fields(stats: dict[str, np.ndarray], start: int, end: int, pool: bool) -> dict[str, Any]:
    """The fields a scored row gains: ``reward`` and ``reward_<stat>``, or for a candidate pool lists named
    ``rewards`` and ``rewards_<stat>``; a non-finite value is None."""
    name = "rewards" if pool else "reward"
    return {(name if k == "score" else f"{name}_{k}"): ([json_number(x) for x in v[start:end]] if pool
                                                       else json_number(v[start]))
            for k, v in stats.items()}


def reported_stats(model: RewardModel, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
    """What a user is shown: the reward, plus mean/std/min/lcb for an ensemble (for a single model they would only
    repeat the reward with a std of 0)."""
    stats = model.score_stats(prompts, responses)
    return stats if model.is_ensemble else {"score": stats["score"]}


def score_record_file(model: RewardModel, path: str | Path, prompt_field: str = "prompt",
                      response_field: str = "response") -> Iterator[dict[str, Any]]:
    """Every row of a JSONL/CSV/Parquet file, scored. Rows with a ``responses`` list are candidate pools."""
    rows: list[dict[str, Any]] = []
    prompts: list[str] = []
    responses: list[str] = []
    spans: list[tuple[int, int, bool]] = []  # (start, end, is_pool) into prompts/responses
    for row, record in iter_records(path):
        prompt = require_text(get_field(record, prompt_field, source=path, row=row), source=path, row=row,
                              field=prompt_field)
        start = len(responses)
        if response_field not in record and isinstance(record.get("responses"), list):
            for j, item in enumerate(record["responses"]):
                text = item.get("text") if isinstance(item, dict) else item
                responses.append(require_text(text, source=path, row=row, field=f"responses[{j}]"))
                prompts.append(prompt)
            if len(responses) == start:
                raise DataError("expected a non-empty list of responses", source=path, row=row, field="responses")
            spans.append((start, len(responses), True))
        else:
            responses.append(require_text(get_field(record, response_field, source=path, row=row), source=path,
                                          row=row, field=response_field))
            prompts.append(prompt)
            spans.append((start, start + 1, False))
        rows.append(record)
    stats = reported_stats(model, prompts, responses)
    for record, (start, end, is_pool) in zip(rows, spans):
        yield dict(record, **_reward_fields(stats, start, end, is_pool))


def score_candidate_sets(model: RewardModel, sets: Sequence[CandidateSet], aggregate: str | None = None,
                         lam: float | None = None, on_progress: Callable[[int, int], None] | None = None
                         ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Each pool's rewards, and for ensembles each pool's (members, candidates) rewards behind them."""
    prompts = [s.prompt for s in sets for _ in s.responses]
    responses = [r for s in sets for r in s.responses]
    x = model.featurize(prompts, responses, on_progress=on_progress)
    if aggregate is not None and not model.is_ensemble:
        raise ModelError(f"aggregate {aggregate!r} needs an ensemble reward model (train with --ensemble N)")
    flat = model.predict(x, aggregate, lam)
    members = split_by_pool(model.predict_members(x), sets) if model.is_ensemble else None
    return split_by_pool(flat, sets), members
