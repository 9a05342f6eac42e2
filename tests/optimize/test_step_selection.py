"""Step aggregations, PRM picks, final-answer extraction and the majority-vote baseline."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.errors import InvalidValueError
from rewardlab.optimize.step_selection import (
    STEP_AGGREGATIONS,
    aggregate_solutions,
    aggregate_steps,
    expected_pick_gold,
    extract_final_answer,
    majority_scores,
    majority_vote_gold,
    prm_pick,
)


def test_each_aggregation() -> None:
    probs = np.array([0.9, 0.5, 0.8])
    assert aggregate_steps(probs, "min") == 0.5
    assert aggregate_steps(probs, "product") == pytest.approx(0.36)
    assert aggregate_steps(probs, "last") == 0.8
    assert aggregate_steps(probs, "mean") == pytest.approx(2.2 / 3)
    assert all(aggregate_steps([], how) == 0.0 for how in STEP_AGGREGATIONS)


def test_bad_aggregation_and_probabilities_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="unknown step aggregation"):
        aggregate_steps([0.5], "max")
    with pytest.raises(InvalidValueError, match=r"\[0, 1\]"):
        aggregate_steps([1.5], "min")


def test_aggregations_pick_differently() -> None:
    # one weak step vs uniformly middling steps: min and product prefer the second, last and mean the first
    solutions = [np.array([0.99, 0.2, 0.99, 0.99]), np.array([0.6, 0.6, 0.6])]
    assert prm_pick(solutions, "min") == 1
    assert prm_pick(solutions, "product") == 1
    assert prm_pick(solutions, "last") == 0
    assert prm_pick(solutions, "mean") == 0
    assert aggregate_solutions(solutions, "min").tolist() == [0.2, 0.6]


@pytest.mark.parametrize(("text", "answer"), [
    ("3 + 4 = 7\nA: $1,200", 1200.0), ("so 5 then 7", 7.0), ("no numbers", None), ("x\n#### -3.5", -3.5),
    ("The answer is 42.", 42.0), ("A: 18\nand later 3", 18.0),
])
def test_final_answers(text: str, answer: float | None) -> None:
    assert extract_final_answer(text) == answer


def test_majority_vote_expects_over_tied_answers() -> None:
    assert majority_scores([18.0, 18.0, 4.0, None]).tolist() == [2, 2, 1, 0]
    assert majority_vote_gold([18.0, 18.0, 4.0, None], np.array([1, 1, 0, 0])) == 1.0
    assert majority_vote_gold([1.0, 2.0, None, None], np.array([1, 0, 0, 0])) == 0.5
    assert majority_vote_gold([None, None], np.array([1, 0])) == 0.5


def test_expected_pick_gold_spreads_ties() -> None:
    assert expected_pick_gold(np.array([1.0, 3.0, 3.0]), np.array([1, 1, 0])) == 0.5
    assert expected_pick_gold(np.zeros(4), np.array([1, 0, 0, 0])) == 0.25
    assert expected_pick_gold(np.array([np.nan, 0.1]), np.array([1, 0])) == 0.0
