"""Simulated populations: groups that disagree on a controlled share of prompts, and careless annotators."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.collect.simulate import AnnotatorGroup, simulate_population
from rewardlab.data.candidates import CandidateSet
from rewardlab.errors import InvalidValueError


def pools(n: int = 80, per: int = 6, seed: int = 0) -> list[CandidateSet]:
    rng = np.random.default_rng(seed)
    return [CandidateSet(f"prompt {i}", [f"answer {i}.{j}" for j in range(per)], rng.normal(size=per))
            for i in range(n)]


def gold_agreement(dataset, sets, keep) -> float:
    gold = {rid: g for s in sets for rid, g in zip(s.response_ids(), s.require_gold())}
    rows = [(gold[c.a] > gold[c.b]) == (c.outcome == "a") for c in dataset.comparisons if keep(c)]
    return float(np.mean(rows))


def test_groups_disagree_where_told_and_careless_annotators_flip_coins() -> None:
    sets = pools()
    groups = [AnnotatorGroup("major", 6, beta=50.0), AnnotatorGroup("minor", 3, disagree=0.5, beta=50.0),
              AnnotatorGroup("careless", 2, flip_rate=0.5)]
    data = simulate_population(sets, 3000, groups, labels_per_pair=2, seed=1)
    assert len(data.comparisons) == 6000
    assert {c.annotator_id for c in data.comparisons} == {f"major{j}" for j in range(6)} | {
        f"minor{j}" for j in range(3)} | {"careless0", "careless1"}
    for c in data.comparisons:
        assert c.meta["group"] == c.annotator_id.rstrip("0123456789")
    minor_reversed = {c.prompt_id for c in data.comparisons if c.meta["group"] == "minor" and c.meta["reversed"]}
    assert 0.35 < len(minor_reversed) / len(sets) < 0.65
    assert gold_agreement(data, sets, lambda c: c.meta["group"] == "major") > 0.9
    assert gold_agreement(data, sets, lambda c: c.meta["group"] == "minor" and not c.meta["reversed"]) > 0.9
    assert gold_agreement(data, sets, lambda c: c.meta["group"] == "minor" and c.meta["reversed"]) < 0.1
    assert 0.4 < gold_agreement(data, sets, lambda c: c.meta["group"] == "careless") < 0.6
    # every pair gets two distinct annotators
    firsts, seconds = data.comparisons[0::2], data.comparisons[1::2]
    assert all(x.a == y.a and x.b == y.b and x.annotator_id != y.annotator_id for x, y in zip(firsts, seconds))


def test_a_given_disagreement_rule_is_used_and_checked() -> None:
    sets = pools(20)
    rule = np.arange(20) < 10
    data = simulate_population(sets, 400, [AnnotatorGroup("minor", 2)], disagree_on={"minor": rule}, seed=0)
    prompt_index = {pid: i for i, pid in enumerate(data.prompts)}
    assert all(c.meta["reversed"] == rule[prompt_index[c.prompt_id]] for c in data.comparisons)
    with pytest.raises(InvalidValueError, match="entries"):
        simulate_population(sets, 10, [AnnotatorGroup("minor", 2)], disagree_on={"minor": rule[:5]})
    with pytest.raises(InvalidValueError, match="labels per pair"):
        simulate_population(sets, 10, [AnnotatorGroup("minor", 2)], labels_per_pair=3)
