"""Slices: per-slice accuracies on a synthetic held-out set whose every slice's accuracy is known by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison, Outcome
from rewardlab.errors import DataError
from rewardlab.evaluate.slices import SMALL_SLICE, SliceTable, slice_accuracy


def text(tag: str, length: int) -> str:
    return (tag + "-" + "x" * length)[:length]


def build(with_extras: bool = True) -> tuple[FeedbackDataset, np.ndarray, np.ndarray]:
    """60 decided pairs and 3 labelled ties.

    math (source m1 vs m2, alice, lengths 100 vs 50, two pairs per prompt): 20 won by a and 20 by b, 15 of each
    scored right -> 30/40. chat (m1 vs m3, bob, 400 vs 800): 20 won by b, 4 right, 2 score ties, 14 wrong -> 5/20;
    plus 3 pairs labelled a tie (left out everywhere)."""
    data = FeedbackDataset("synthetic")
    score_a: list[float] = []
    score_b: list[float] = []

    def add(prompt: str, tag: str, lengths: tuple[int, int], outcome: Outcome, verdict: str, extras: dict[str, str]) -> None:
        pid = data.add_prompt(prompt)
        sources = (extras["source_a"], extras["source_b"]) if with_extras else (None, None)
        a = data.add_response(pid, text(tag + "a", lengths[0]), sources[0])
        b = data.add_response(pid, text(tag + "b", lengths[1]), sources[1])
        meta = {"category": extras["category"]} if with_extras else {}
        data.add(Comparison(pid, a, b, outcome, annotator_id=extras["annotator"] if with_extras else None, meta=meta))
        a_wins = outcome == "a"
        high = 1.0 if verdict == "right" else 0.0
        sa = 0.5 if verdict == "tie" else (high if a_wins else 1 - high)
        score_a.append(sa)
        score_b.append(0.5 if verdict == "tie" else 1 - sa)

    math = {"source_a": "m1", "source_b": "m2", "annotator": "alice", "category": "math"}
    chat = {"source_a": "m1", "source_b": "m3", "annotator": "bob", "category": "chat"}
    for i in range(40):
        outcome: Outcome = "a" if i < 20 else "b"
        add(f"math prompt {i // 2}", f"m{i}", (100, 50), outcome, "right" if i % 20 < 15 else "wrong", math)
    for i in range(20):
        add(f"chat prompt {i}", f"c{i}", (400, 800), "b", "right" if i < 4 else "tie" if i < 6 else "wrong", chat)
    for i in range(3):
        add(f"tie prompt {i}", f"t{i}", (400, 800), "tie", "right", chat)
    return data, np.array(score_a), np.array(score_b)


def rows(tables: list[SliceTable], name: str) -> dict[str, tuple[int, int, float, bool]]:
    (table,) = [t for t in tables if t.name == name]
    return {r.label: (r.n_pairs, r.n_prompts, r.accuracy.value, r.small) for r in table.rows}


def test_every_slicing_gives_the_accuracies_built_in() -> None:
    tables = slice_accuracy(*build())
    assert [t.name for t in tables] == ["length", "longer side", "source", "category", "annotator"]
    assert rows(tables, "category") == {"math": (40, 20, 0.75, False), "chat": (20, 20, 0.25, True)}
    assert rows(tables, "annotator") == {"alice": (40, 20, 0.75, False), "bob": (20, 20, 0.25, True)}
    assert rows(tables, "length") == {"75–75 chars": (40, 20, 0.75, False), "600–600 chars": (20, 20, 0.25, True)}
    # longer better: math won by a (15/20 right) + chat (5/20); shorter better: math won by b; no equal lengths
    assert rows(tables, "longer side") == {"longer better": (40, 30, 0.5, False),
                                           "shorter better": (20, 10, 0.75, True)}
    assert rows(tables, "source") == {"m1": (60, 40, 35 / 60, False), "m2": (40, 20, 0.75, False),
                                      "m3": (20, 20, 0.25, True)}


def test_rows_carry_bootstrap_intervals_and_serialise() -> None:
    tables = slice_accuracy(*build(), n_resamples=500, seed=1)
    for table in tables:
        for row in table.rows:
            assert row.accuracy.low <= row.accuracy.value <= row.accuracy.high and row.accuracy.n == row.n_pairs
            assert row.small == (row.n_pairs < SMALL_SLICE)
    (math,) = [r for r in tables[3].rows if r.label == "math"]
    assert 0.5 < math.accuracy.low < 0.75 < math.accuracy.high < 1.0
    record = json.loads(json.dumps([t.as_dict() for t in tables]))
    assert record[3]["rows"][0]["accuracy"]["n"] == 40 and record[3]["rows"][1]["small"] is True
    assert [t.as_dict() for t in tables] == [t.as_dict() for t in slice_accuracy(*build(), n_resamples=500, seed=1)]


def test_label_ties_are_left_out_and_an_explicit_target_agrees() -> None:
    data, score_a, score_b = build()
    target = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[c.outcome] for c in data.comparisons])
    assert sum(r.n_pairs for r in slice_accuracy(data, score_a, score_b)[3].rows) == 60  # 63 comparisons
    assert ([t.as_dict() for t in slice_accuracy(data, score_a, score_b, target)]
            == [t.as_dict() for t in slice_accuracy(data, score_a, score_b)])


def test_slicings_without_data_or_with_one_slice_are_left_out() -> None:
    tables = slice_accuracy(*build(with_extras=False))
    assert [t.name for t in tables] == ["length", "longer side"]
    data, score_a, score_b = build(with_extras=False)
    one = FeedbackDataset("one")
    for c in data.comparisons[:40]:  # math only: one length, a single category
        pid = one.add_prompt(data.prompts[c.prompt_id].text)
        a = one.add_response(pid, data.responses[c.a].text)
        b = one.add_response(pid, data.responses[c.b].text)
        one.add(Comparison(pid, a, b, c.outcome, meta={"category": "math"}))
    assert [t.name for t in slice_accuracy(one, score_a[:40], score_b[:40])] == ["longer side"]


def test_the_first_category_key_on_most_rows_is_used() -> None:
    data, score_a, score_b = build(with_extras=False)
    for i, c in enumerate(data.comparisons):
        c.meta["type"] = "even" if i % 2 == 0 else "odd"
        if i < 10:
            c.meta["category"] = "rare"  # on 10 of 63 rows: not the majority key
    (category,) = [t for t in slice_accuracy(data, score_a, score_b) if t.name == "category"]
    assert "'type'" in category.description and {r.label for r in category.rows} == {"even", "odd"}


def test_misaligned_scores_are_a_data_error() -> None:
    data, score_a, score_b = build()
    with pytest.raises(DataError, match="63 comparisons"):
        slice_accuracy(data, score_a[:-1], score_b)
    with pytest.raises(DataError, match="no comparisons"):
        slice_accuracy(FeedbackDataset("empty"), np.zeros(0), np.zeros(0))
