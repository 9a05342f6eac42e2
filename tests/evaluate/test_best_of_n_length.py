"""Best-of-n beside picking by length alone: a small case computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.data.candidates import CandidateSet
from rewardlab.evaluate.best_of_n import (
    best_of_n,
    length_rules,
    length_rules_record,
    summarize_length_rules,
)

# pools of 3; best-of-2 picks the top of 3 ascending ranks with weights (0, 1/3, 2/3)
SETS = [CandidateSet("p1", ("a", "bbb", "cc"), np.array([0.0, 1.0, 0.2])),
        CandidateSet("p2", ("x", "yy", "zzzz"), np.array([0.6, 0.0, 0.0]))]
SCORES = [np.array([0.1, 0.2, 0.3]), np.array([3.0, 2.0, 1.0])]


def test_length_rules_by_hand() -> None:
    result = best_of_n(SETS, SCORES, max_n=2)
    rules = length_rules(SETS, SCORES, 2)
    # p1 by length a < cc < bbb: longest-of-2 = (0.2 + 2·1)/3, shortest-of-2 = (0.2 + 2·0)/3; the model ranks
    # a < bbb < cc: (1 + 2·0.2)/3. p2 by length x < yy < zzzz: longest 0, shortest (0 + 2·0.6)/3; the model
    # ranks zzzz < yy < x: 0.4.
    assert rules.longest_curve[:, 1] == pytest.approx([2.2 / 3, 0.0])
    assert rules.shortest_curve[:, 1] == pytest.approx([0.2 / 3, 0.4])
    assert rules.longest_at_max == pytest.approx([1.0, 0.0]) and rules.shortest_at_max == pytest.approx([0.0, 0.6])
    assert rules.spearman == pytest.approx([0.5, -1.0])  # p1: ranks (1,2,3) vs (1,3,2); p2 reversed
    table, rho = summarize_length_rules(result, rules, [1, 2, "max"])
    one, two, top = table
    assert one.gold.value == one.longest.value == one.shortest.value == pytest.approx(0.3)  # best-of-1 is random
    assert one.minus_better_rule.value == pytest.approx(0.0) and one.better_rule == "either"
    # n = 2: model 13/30, longest 11/30, shortest 7/30 -> Δ vs longest = 1/15
    assert (two.gold.value, two.longest.value, two.shortest.value) == pytest.approx((13 / 30, 11 / 30, 7 / 30))
    assert two.better_rule == "longest" and two.minus_better_rule.value == pytest.approx(1 / 15)
    assert two.minus_better_rule.n == 2 and two.minus_better_rule.low <= 1 / 15 <= two.minus_better_rule.high
    # whole pool: model (0.2 + 0.6)/2, longest (1 + 0)/2, shortest (0 + 0.6)/2
    assert (top.gold.value, top.longest.value, top.shortest.value) == pytest.approx((0.4, 0.5, 0.3))
    assert top.better_rule == "longest" and top.minus_better_rule.value == pytest.approx(-0.1)
    assert rho.value == pytest.approx(-0.25) and rho.n == 2
    record = length_rules_record(table, rho)
    assert record["unit"] == "characters" and set(record["n"]) == {"1", "2", "max"}  # type: ignore[arg-type]


def test_equal_lengths_are_a_random_pick_and_a_constant_reward_has_no_rho() -> None:
    sets = [CandidateSet("p", ("aa", "bb", "c"), np.array([1.0, 0.0, 0.5]))]
    rules = length_rules(sets, [np.zeros(3)], 3)
    assert rules.longest_at_max == pytest.approx([0.5]) and rules.shortest_at_max == pytest.approx([0.5])
    assert np.isnan(rules.spearman).all()
    _, rho = summarize_length_rules(best_of_n(sets, [np.zeros(3)]), rules, ["max"])
    assert rho.n == 0
