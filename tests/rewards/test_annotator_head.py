"""The annotator-conditioned head: per-annotator rewards, the population fallback, saving with its vocabulary."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from rewardlab.errors import ModelError
from rewardlab.rewards.annotator_aware import UnknownAnnotatorWarning
from rewardlab.rewards.annotator_head import AnnotatorHead
from rewardlab.rewards.base import load_head
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.torch_head import TorchHead
from rewardlab.rewards.training_set import TrainingSet


def two_group_problem(n_prompts: int = 1200, dim: int = 8, seed: int = 0, minority_share: float = 0.3,
                      n_annotators: int = 10) -> tuple[TrainingSet, np.ndarray, np.ndarray, list[str]]:
    """Two responses per prompt; the majority's reward is r*, the minority's is −r* wherever x[:, 0] > 0 (half the
    items: a 'topic' the features reveal). Returns the data, both true rewards and the minority's ids."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n_prompts, dim)).astype(np.float32)
    w = np.random.default_rng(100).normal(size=dim)  # the same utilities for every seed (train and test sets)
    w[0] = 0.0
    majority = x @ w / np.linalg.norm(w)
    minority = np.where(x[:, 0] > 0, -majority, majority)
    ids = [f"ann{i}" for i in range(n_annotators)]
    minority_ids = ids[: int(round(minority_share * n_annotators))]
    a = np.arange(0, 2 * n_prompts, 2)
    b = a + 1
    who = rng.integers(n_annotators, size=n_prompts)
    in_minority = who < len(minority_ids)
    true = np.where(in_minority, minority[a] - minority[b], majority[a] - majority[b])
    target = (rng.random(n_prompts) < 1 / (1 + np.exp(-8 * true))).astype(np.float32)
    data = TrainingSet(x=x, response_ids=[f"r{i}" for i in range(2 * n_prompts)], group=np.arange(2 * n_prompts) // 2,
                       pair_a=a, pair_b=b, pair_target=target, rating_item=np.zeros(0, np.int64),
                       rating_value=np.zeros(0, np.float32), label_item=np.zeros(0, np.int64),
                       label_value=np.zeros(0, np.float32), pair_annotator=np.array([ids[k] for k in who]))
    return data, majority, minority, minority_ids


def agreement(pred: np.ndarray, true: np.ndarray) -> float:
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, len(true), size=(2, 4000))
    keep = i != j
    return float((np.sign(pred[i] - pred[j]) == np.sign(true[i] - true[j]))[keep].mean())


@pytest.fixture(scope="module")
def fitted() -> tuple[AnnotatorHead, TrainingSet, np.ndarray, np.ndarray, list[str]]:
    data, majority, minority, minority_ids = two_group_problem()
    head = make_head("bt-mlp-annotator", seed=0, hidden=32, max_epochs=60)
    assert isinstance(head, AnnotatorHead)
    return head.fit(data), data, majority, minority, minority_ids


def test_conditioned_head_beats_unimodal_bt_on_the_minority(fitted) -> None:
    head, data, majority, minority, minority_ids = fitted
    unimodal = TorchHead(objective="bt", hidden=32, seed=0, max_epochs=60).fit(data)
    test, test_majority, test_minority, _ = two_group_problem(n_prompts=600, seed=5)
    pooled = unimodal.predict(test.x)
    conditioned = head.predict_for(test.x, minority_ids[0])
    assert agreement(conditioned, test_minority) > agreement(pooled, test_minority) + 0.1
    majority_id = next(a for a in head.annotators if a not in minority_ids)
    assert agreement(head.predict_for(test.x, majority_id), test_majority) > agreement(pooled, test_majority) - 0.02


def test_unknown_annotator_falls_back_to_the_population_with_a_warning(fitted) -> None:
    head = fitted[0]
    x = fitted[1].x[:50]
    with pytest.warns(UnknownAnnotatorWarning, match="nobody"):
        fallback = head.predict_for(x, "nobody")
    np.testing.assert_array_equal(fallback, head.predict(x))
    # the population is the unknown token itself (index 0 of the net)
    import torch
    with torch.no_grad():
        token0 = head.net_(torch.from_numpy(x), torch.zeros(len(x), dtype=torch.long)).numpy()
    np.testing.assert_allclose(fallback, token0, rtol=1e-5, atol=1e-6)


def test_distribution_and_preference_probability(fitted) -> None:
    head, data = fitted[0], fitted[1]
    x = data.x[:40]
    stats = head.predict_distribution(x)
    assert set(stats) == {"mean", "std", "q10", "q50", "q90"}
    assert np.all(stats["q10"] <= stats["q50"]) and np.all(stats["q50"] <= stats["q90"])
    assert np.all(stats["std"] > 0)  # the groups disagree
    p = head.prob_prefers(data.x[data.pair_a[:40]], data.x[data.pair_b[:40]])
    assert np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(p + head.prob_prefers(data.x[data.pair_b[:40]], data.x[data.pair_a[:40]]), 1.0,
                               atol=1e-9)


def test_save_load_same_predictions_for_known_and_unknown(fitted, tmp_path) -> None:
    head = fitted[0]
    x = fitted[1].x[:30]
    head.save(tmp_path / "head")
    assert json.loads((tmp_path / "head" / "annotators.json").read_text())["annotators"] == head.annotators
    loaded = load_head(tmp_path / "head")
    assert isinstance(loaded, AnnotatorHead)
    np.testing.assert_allclose(loaded.predict(x), head.predict(x), rtol=1e-6)
    for annotator in head.annotators[:3]:
        np.testing.assert_allclose(loaded.predict_for(x, annotator), head.predict_for(x, annotator), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownAnnotatorWarning)
        np.testing.assert_allclose(loaded.predict_for(x, "stranger"), head.predict(x), rtol=1e-6)


def test_a_damaged_vocabulary_is_a_model_error(fitted, tmp_path) -> None:
    head = fitted[0]
    head.save(tmp_path / "head")
    (tmp_path / "head" / "annotators.json").write_text(json.dumps({"annotators": ["only-one"]}))
    with pytest.raises(ModelError, match="annotators"):
        load_head(tmp_path / "head")


def test_without_annotator_ids_it_is_a_population_model() -> None:
    data, *_ = two_group_problem(n_prompts=200)
    data.pair_annotator = np.zeros(0, dtype=str)
    head = AnnotatorHead(hidden=8, max_epochs=5).fit(data)
    assert head.annotators == [] and head.predict(data.x[:5]).shape == (5,)
    with pytest.raises(ModelError, match="without annotator ids"):
        head.predict_distribution(data.x[:5])

