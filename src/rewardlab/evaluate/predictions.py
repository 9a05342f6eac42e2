"""Per-pair rows of an evaluation (`evaluate --predictions`): so a reader can recompute any metric or control."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.evaluate.crossval import CrossValResult
from rewardlab.evaluate.holdout import HoldoutResult
from rewardlab.evaluate.length_controls import LENGTH_UNIT, PairLengths

#: the learner name of the length-only head's rows
LENGTH_ONLY = "length-only"


def _rows(learner: str, ids: list[tuple[str, str, str]], score_a: np.ndarray, score_b: np.ndarray,
          pairs: PairLengths, fold: np.ndarray | None) -> list[dict[str, Any]]:
    rows = []
    for i, (prompt_id, a, b) in enumerate(ids):
        row: dict[str, Any] = {
            "learner": learner, "prompt_id": prompt_id, "a": a, "b": b,
            "score_a": float(score_a[i]), "score_b": float(score_b[i]), "target": float(pairs.target[i]),
            "length_a": int(pairs.length_a[i]), "length_b": int(pairs.length_b[i]), "length_unit": LENGTH_UNIT,
        }
        if fold is not None:
            row["fold"] = int(fold[i])
        rows.append(row)
    return rows


def prediction_rows(result: CrossValResult | HoldoutResult, model_name: str = "model") -> list[dict[str, Any]]:
    """One row per (learner, pair): ids, both scores, the label as P(a wins) (1, 0 or .5 for a tie), both lengths,
    and the fold for CV; the length-only head's rows come last (its fold is the cross-fitting fold for a holdout)."""
    if isinstance(result, HoldoutResult):
        pairs = result.pair_lengths
        return (_rows(model_name, result.pair_ids, result.score_a, result.score_b, pairs, None)
                + _rows(LENGTH_ONLY, result.pair_ids, pairs.length_score_a, pairs.length_score_b, pairs,
                        result.pair_fold))
    if result.pair_lengths is None:
        return []
    pairs = result.pair_lengths
    rows = []
    for spec in result.learners:
        score_a, score_b = result.scores[spec.name]
        rows += _rows(spec.name, result.pair_ids, score_a, score_b, pairs, result.pair_fold)
    return rows + _rows(LENGTH_ONLY, result.pair_ids, pairs.length_score_a, pairs.length_score_b, pairs,
                        result.pair_fold)


def write_predictions(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """JSONL, written aside and renamed into place so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    os.replace(tmp, path)
    return path
