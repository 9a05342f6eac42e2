"""Accuracy over people (pooled, macro, worst, per group), paired against a baseline."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.data import Comparison, FeedbackDataset
from rewardlab.errors import DataError
from rewardlab.evaluate.per_annotator import annotator_groups, paired_people_accuracy


def test_group_accuracy_and_paired_differences() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    annotators = np.array([f"a{k}" for k in rng.integers(10, size=n)])
    minority = np.isin(annotators, ["a0", "a1", "a2"])
    prompts = rng.integers(400, size=n)
    # the model is right 80% of the time for everyone; the baseline 80% for the majority, 50% for the minority
    model = (rng.random(n) < 0.8).astype(float)
    baseline = (rng.random(n) < np.where(minority, 0.5, 0.8)).astype(float)
    groups = {f"a{k}": "minority" if k < 3 else "majority" for k in range(10)}
    result = paired_people_accuracy(model, baseline, list(annotators), prompts, groups, n_resamples=500)
    assert set(result) == {"pooled", "macro", "worst", "group:majority", "group:minority"}
    minority_row = result["group:minority"]
    assert abs(minority_row.model.value - 0.8) < 0.03 and abs(minority_row.baseline.value - 0.5) < 0.03
    assert minority_row.difference.low > 0.2 and minority_row.difference.n == int(minority.sum())
    assert minority_row.model.low < minority_row.model.value < minority_row.model.high
    assert result["group:majority"].difference.low < 0 < result["group:majority"].difference.high
    assert result["worst"].baseline.value < 0.55 and result["worst"].difference.value > 0.2
    assert result["macro"].difference.value == pytest.approx(
        np.mean([model[annotators == a].mean() - baseline[annotators == a].mean() for a in np.unique(annotators)]))


def test_annotator_groups_from_meta() -> None:
    ds = FeedbackDataset("g")
    pid = ds.add_prompt("p")
    a, b = ds.add_response(pid, "x"), ds.add_response(pid, "y")
    ds.add(Comparison(pid, a, b, "a", annotator_id="u1", meta={"group": "minority"}))
    ds.add(Comparison(pid, a, b, "b", annotator_id="u2", meta={"group": "majority"}))
    ds.add(Comparison(pid, a, b, "b", annotator_id="u3"))
    assert annotator_groups(ds) == {"u1": "minority", "u2": "majority"}
    ds.add(Comparison(pid, a, b, "b", annotator_id="u1", meta={"group": "majority"}))
    with pytest.raises(DataError, match="u1"):
        annotator_groups(ds)


def test_split_calibration_prefers_the_model_that_matches_how_people_split() -> None:
    from rewardlab.evaluate.per_annotator import split_calibration

    rng = np.random.default_rng(1)
    observed = rng.choice([0.3, 0.7], size=600)  # people split 30/70 on every item
    prompts = np.arange(600) // 3
    matched = observed + rng.normal(scale=0.02, size=600)
    one_winner = np.where(observed > 0.5, 0.95, 0.05)  # confident single preference
    result = split_calibration(matched, one_winner, observed, prompts, n_resamples=300)
    assert result.model.value < 0.03 and abs(result.baseline.value - 0.25) < 1e-9
    assert result.difference.high < -0.2
    with pytest.raises(DataError, match="one prediction"):
        split_calibration(matched[:5], one_winner, observed, prompts)
