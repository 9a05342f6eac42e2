"""Choosing a solution by its steps: aggregate step rewards, pick best-of-n, and the majority-vote baseline.

A process reward model gives P(step k good) for each step; a solution's score folds them into one number:

- ``min``: as good as its worst step (a chain of reasoning breaks at its weakest link);
- ``product``: P(every step good) if steps were independent (Lightman et al. 2023 score solutions this way);
  it also penalises length, since every extra step multiplies by a number below 1;
- ``last``: the last step's probability, which has read the whole solution (closest to an outcome model);
- ``mean``: the average step, forgiving one bad step among many.

A solution with no steps (an empty output) scores 0 under each: there is nothing to credit.

Majority vote (self-consistency) needs no reward at all: take the most common final answer. It is the baseline a
verifier must beat. `expected_pick_gold` scores a rule by its *expected* gold when it picks uniformly among tied
candidates, so no seed decides a tie.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardlab.data.candidates import CandidateSet
from rewardlab.errors import InvalidValueError

_AGGREGATORS: dict[str, Callable[[np.ndarray], float]] = {
    "min": lambda p: float(np.min(p)),
    "product": lambda p: float(np.prod(p)),
    "last": lambda p: float(p[-1]),
    "mean": lambda p: float(np.mean(p)),
}
#: the ways step probabilities fold into a solution score
STEP_AGGREGATIONS = tuple(_AGGREGATORS)

_ANSWER_MARK = re.compile(r"(?:^|\n)\s*(?:A:|####|The answer is:?|Answer:)\s*(?P<rest>[^\n]*)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\$?\s*\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")


def check_aggregation(how: str) -> None:
    if how not in _AGGREGATORS:
        raise InvalidValueError(f"unknown step aggregation {how!r}; known: {', '.join(STEP_AGGREGATIONS)}")


def aggregate_steps(step_probs: np.ndarray | Sequence[float], how: str = "min") -> float:
    """One score from a solution's step probabilities (0 for a solution with no steps)."""
    check_aggregation(how)
    probs = np.asarray(step_probs, dtype=np.float64)
    if probs.ndim != 1:
        raise InvalidValueError(f"expected one probability per step, got an array of shape {probs.shape}")
    if np.any((probs < 0) | (probs > 1) | ~np.isfinite(probs)):
        raise InvalidValueError("step probabilities must lie in [0, 1]")
    return 0.0 if probs.size == 0 else _AGGREGATORS[how](probs)


def aggregate_solutions(step_probs: Sequence[np.ndarray], how: str = "min") -> np.ndarray:
    """`aggregate_steps` of each solution."""
    return np.array([aggregate_steps(p, how) for p in step_probs], dtype=np.float64)


def extract_final_answer(text: str) -> float | None:
    """The final number of a GSM8K-style solution: after its last ``A:``/``####``/"The answer is" mark, else the
    last number in the text; None when there is no number at all."""
    marks = list(_ANSWER_MARK.finditer(text))
    marked = _NUMBER.findall(marks[-1].group("rest")) if marks else []
    numbers = marked[:1] or _NUMBER.findall(text)[-1:]
    return float(numbers[0].replace("$", "").replace(",", "").replace(" ", "")) if numbers else None


def expected_pick_gold(scores: np.ndarray, gold: np.ndarray) -> float:
    """Expected gold of picking the highest score, uniformly among exact ties (all tied: a random pick)."""
    scores, gold = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    if scores.shape != gold.shape or scores.size == 0:
        raise InvalidValueError(f"scores {scores.shape} and gold {gold.shape} must be the same non-empty shape")
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return float(gold[scores == scores.max()].mean())


def majority_scores(answers: Sequence[float | None]) -> np.ndarray:
    """Each candidate's vote count: how many candidates share its final answer (0 for one with no answer)."""
    keys = [None if a is None else round(a, 6) for a in answers]
    counts = Counter(k for k in keys if k is not None)
    return np.array([0.0 if k is None else float(counts[k]) for k in keys])


def majority_vote_gold(answers: Sequence[float | None], gold: np.ndarray) -> float:
    """Expected gold of majority vote: a most common answer, ties between answers broken uniformly (then a
    candidate holding it, uniformly); no answer anywhere: a random pick."""
    votes = majority_scores(answers)
    gold = np.asarray(gold, dtype=np.float64)
    if votes.max() == 0:
        return float(gold.mean())
    keys = [None if a is None else round(a, 6) for a in answers]
    top = {k for k, v in zip(keys, votes) if v == votes.max()}
    return float(np.mean([gold[[k == t for k in keys]].mean() for t in top]))


def prm_pick(step_probs: Sequence[np.ndarray], how: str = "min") -> int:
    """The index of the solution with the highest aggregated step score (the first among exact ties)."""
    if not step_probs:
        raise InvalidValueError("no candidates to select from")
    return int(np.argmax(aggregate_solutions(step_probs, how)))


def pick_by_steps(sets: Sequence[CandidateSet], step_probs: Sequence[Sequence[np.ndarray]],
                  how: str = "min") -> list[dict[str, Any]]:
    """Per pool, the solution with the best aggregated step score, as JSON-ready rows like `rewardlab select`
    writes (plus every step's probability and the aggregation used)."""
    check_aggregation(how)
    if len(sets) != len(step_probs):
        raise InvalidValueError(f"{len(sets)} pools but step probabilities for {len(step_probs)}")
    picks = []
    for pool, probs in zip(sets, step_probs):
        scores = aggregate_solutions(probs, how)
        index = int(np.argmax(scores))
        row: dict[str, Any] = {"prompt": pool.prompt, "response": pool.responses[index], "index": index,
                               "reward": float(scores[index]), "step_rewards": [float(p) for p in probs[index]],
                               "strategy": f"steps:{how}"}
        if pool.sources:
            row["source"] = pool.sources[index]
        if pool.gold is not None:
            row["gold"] = float(pool.gold[index])
        picks.append(row)
    return picks
