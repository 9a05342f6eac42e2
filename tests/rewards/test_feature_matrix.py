"""Feature rows at scale: one float32 matrix, filled from the distinct texts' vectors, used by the training set as it
is (no copy) when it covers the same responses; the values are those of featurizing each view separately."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison
from rewardlab.embed import HashingEncoder, embed_texts
from rewardlab.rewards import features
from rewardlab.rewards.features import (
    combine,
    feature_rows_on_demand,
    featurize_dataset,
    featurize_texts,
    prompt_view,
)
from rewardlab.rewards.training_set import build_training_set, feature_matrix


def _dataset(n_prompts: int = 30) -> FeedbackDataset:
    data = FeedbackDataset("pairs")
    for i in range(n_prompts):
        pid = data.add_prompt(f"prompt {i} about {i % 4}")
        a = data.add_response(pid, f"a helpful answer {i}")
        b = data.add_response(pid, f"no {i % 3}")
        data.add(Comparison(pid, a, b, "a" if i % 5 else "b"))
    return data


@pytest.mark.parametrize("mode", ["response", "prompt+response", "interaction"])
def test_rows_equal_the_views_combined(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(features, "FILL_ROWS", 7)  # several fill steps
    encoder = HashingEncoder(dim=16)
    prompts = [f"prompt {i % 6}" for i in range(40)]
    responses = [f"answer {i} {'again' if i % 4 else ''}" for i in range(40)]
    x, _ = featurize_texts(prompts, responses, encoder, mode, use_cache=False)
    r, _ = embed_texts(responses, encoder, use_cache=False)
    p, _ = embed_texts([prompt_view(t) for t in prompts], encoder, use_cache=False)
    assert x.dtype == np.float32 and np.array_equal(x, combine(p, r, mode))


def test_training_set_uses_the_featurized_matrix_without_a_copy() -> None:
    data = _dataset()
    rows, _ = featurize_dataset(data, HashingEncoder(dim=16), "interaction", use_cache=False)
    training = build_training_set(data, {rid: rows[rid] for rid in data.responses})
    assert np.shares_memory(training.x, rows[training.response_ids[0]])
    assert np.array_equal(training.x, np.stack([rows[rid] for rid in training.response_ids]))


def test_a_subset_or_foreign_rows_are_copied() -> None:
    data = _dataset()
    rows, _ = featurize_dataset(data, HashingEncoder(dim=16), "response", use_cache=False)
    train, _ = data.split(seed=1)
    subset = build_training_set(train, {rid: rows[rid] for rid in train.responses})
    assert not np.shares_memory(subset.x, rows[subset.response_ids[0]])
    assert np.array_equal(subset.x, np.stack([rows[rid] for rid in subset.response_ids]))
    doubles = [np.arange(4, dtype=np.float64), np.ones(4)]
    assert feature_matrix(doubles).dtype == np.float32 and feature_matrix(doubles).tolist()[0] == [0, 1, 2, 3]
    reordered = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert not np.shares_memory(feature_matrix([reordered[1], reordered[0], reordered[2]]), reordered)


@pytest.mark.parametrize("mode", ["response", "interaction"])
def test_rows_on_demand_equal_the_featurized_rows(mode: str) -> None:
    data = _dataset()
    encoder = HashingEncoder(dim=16)
    rows, _ = featurize_dataset(data, encoder, mode, use_cache=False)
    lazy, _ = feature_rows_on_demand(data, encoder, mode, use_cache=False)
    ids = list(reversed(list(data.responses)))
    assert len(lazy) == len(rows) and set(lazy) == set(rows)
    assert np.array_equal(lazy.rows(ids), np.stack([rows[rid] for rid in ids]))
    assert np.array_equal(lazy[ids[3]], rows[ids[3]])
    with pytest.raises(KeyError):
        lazy.rows(["no such response"])


def test_holdout_scores_the_same_from_rows_on_demand_and_from_given_rows(tmp_path: Path) -> None:
    from rewardlab.evaluate.holdout import evaluate_model
    from rewardlab.rewards.model import RewardModel

    data = _dataset(60)
    model = RewardModel.create("bt-linear", encoder="hashing:16", features="interaction", cache_dir=tmp_path)
    model.fit(data)
    rows, _ = featurize_dataset(data, model.encoder, model.features, cache_dir=tmp_path)
    lazy = evaluate_model(model, data, n_resamples=200)
    given = evaluate_model(model, data, n_resamples=200, feature_rows=rows)
    assert np.array_equal(lazy.score_a, given.score_a) and np.array_equal(lazy.score_b, given.score_b)
    assert lazy.metrics == given.metrics
