"""Per-annotator held-out accuracy, checked by hand on a tiny set."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison
from rewardlab.errors import DataError
from rewardlab.evaluate.per_annotator import per_annotator_accuracy, per_annotator_of_scores, per_annotator_table


def test_by_hand() -> None:
    # annotator u: 3 of 4 right; v: 1 of 2 right; w: 1 of 1 right; one tie (left out)
    correct = np.array([1, 1, 1, 0, 1, 0, 1, 1], dtype=float)
    target = np.array([1, 0, 1, 1, 0, 1, 1, 0.5])
    who = ["u", "u", "u", "u", "v", "v", "w", "w"]
    groups = np.arange(8)
    result = per_annotator_accuracy(correct, target, who, groups, n_resamples=500)
    assert result.per_annotator["u"].value == pytest.approx(0.75) and result.per_annotator["u"].n == 4
    assert result.per_annotator["v"].value == pytest.approx(0.5) and result.per_annotator["v"].n == 2
    assert result.per_annotator["w"].value == pytest.approx(1.0) and result.per_annotator["w"].n == 1
    assert result.pooled.value == pytest.approx(5 / 7) and result.pooled.n == 7
    assert result.macro.value == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert result.macro_vs_pooled.value == pytest.approx((0.75 + 0.5 + 1.0) / 3 - 5 / 7)
    assert result.worst == "v"
    assert result.worst_vs_pooled.value == pytest.approx(0.5 - 5 / 7)
    assert result.pooled.low <= result.pooled.value <= result.pooled.high
    assert set(result.as_dict()["annotators"]) == {"u", "v", "w"}
    assert per_annotator_table(result, "t").row_count == 3 + 3


def test_from_dataset_scores_and_missing_ids() -> None:
    ds = FeedbackDataset("tiny")
    for i, (who, outcome) in enumerate([("u", "a"), ("u", "b"), (None, "a"), (None, "a")]):
        pid = ds.add_prompt(f"p{i}")
        a, b = ds.add_response(pid, f"a{i}"), ds.add_response(pid, f"b{i}")
        ds.add(Comparison(pid, a, b, outcome, annotator_id=who))  # type: ignore[arg-type]
    result = per_annotator_of_scores(ds, np.array([1.0, 1.0, 1.0, 0.0]), np.zeros(4), n_resamples=100)
    assert result.per_annotator["u"].value == pytest.approx(0.5)
    assert result.per_annotator["(none)"].value == pytest.approx(0.75)  # 1, 1, and a score tie counts 0.5
    with pytest.raises(DataError):
        per_annotator_of_scores(ds, np.zeros(3), np.zeros(3))
    with pytest.raises(DataError, match="decided"):
        per_annotator_accuracy(np.ones(2), np.full(2, 0.5), ["u", "v"], np.arange(2))
