"""The EM mixture of Bradley-Terry types recovers known mixing weights, utilities and annotator types."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.errors import ModelError
from rewardlab.rewards.base import load_head
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.mixture import MixtureBTHead
from rewardlab.rewards.training_set import TrainingSet


def mixture_problem(seed: int = 0, n_annotators: int = 40, per_annotator: int = 120, dim: int = 6,
                    share: float = 0.3) -> tuple[TrainingSet, np.ndarray, np.ndarray]:
    """Two types: w and a w' that reverses three of its six directions; ``share`` of the annotators are type 1."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=dim)
    w1 = w0.copy()
    w1[:3] *= -1
    true_w = 2.0 * np.stack([w0, w1]) / np.linalg.norm(w0)
    types = (np.arange(n_annotators) < round(share * n_annotators)).astype(int)
    n_pairs = n_annotators * per_annotator
    x = rng.normal(size=(2 * n_pairs, dim)).astype(np.float32)
    a, b = np.arange(0, 2 * n_pairs, 2), np.arange(1, 2 * n_pairs, 2)
    who = np.repeat(np.arange(n_annotators), per_annotator)
    margin = np.einsum("nd,nd->n", x[a] - x[b], true_w[types[who]])
    target = (rng.random(n_pairs) < 1 / (1 + np.exp(-margin))).astype(np.float32)
    data = TrainingSet(x=x, response_ids=[f"r{i}" for i in range(2 * n_pairs)], group=np.arange(2 * n_pairs) // 2,
                       pair_a=a, pair_b=b, pair_target=target, rating_item=np.zeros(0, np.int64),
                       rating_value=np.zeros(0, np.float32), label_item=np.zeros(0, np.int64),
                       label_value=np.zeros(0, np.float32), pair_annotator=np.array([f"a{i:02d}" for i in who]))
    return data, true_w, types


@pytest.fixture(scope="module")
def fitted() -> tuple[MixtureBTHead, np.ndarray, np.ndarray]:
    data, true_w, types = mixture_problem()
    head = make_head("bt-mixture", seed=0)
    assert isinstance(head, MixtureBTHead)
    return head.fit(data), true_w, types


def test_em_recovers_k_mixing_weights_utilities_and_types(fitted) -> None:
    head, true_w, types = fitted
    assert head.fit_log["k"] == 2
    cos = (head.weights_ @ true_w.T) / np.outer(np.linalg.norm(head.weights_, axis=1), np.linalg.norm(true_w, axis=1))
    match = [int(np.argmax(cos[j])) for j in range(2)]
    assert sorted(match) == [0, 1]
    assert min(cos[j, match[j]] for j in range(2)) > 0.95
    mix = {match[j]: head.mix_[j] for j in range(2)}
    assert abs(mix[1] - 0.3) < 0.08
    found_types = np.array([match[j] for j in head.resp_.argmax(1)])
    assert (found_types == types).mean() > 0.95


def test_preference_probability_is_the_mixture_of_types(fitted) -> None:
    head = fitted[0]
    rng = np.random.default_rng(3)
    xa, xb = rng.normal(size=(2, 20, 6))
    expected = sum(head.mix_[k] / (1 + np.exp(-(xa - xb) @ head.weights_[k])) for k in range(len(head.mix_)))
    np.testing.assert_allclose(head.prob_prefers(xa, xb), expected, rtol=1e-9)
    assert set(head.predict_distribution(xa)) == {"mean", "std", "q10", "q50", "q90"}


def test_save_load_and_unknown_annotator(fitted, tmp_path) -> None:
    head = fitted[0]
    x = np.random.default_rng(4).normal(size=(10, 6))
    head.save(tmp_path / "h")
    loaded = load_head(tmp_path / "h")
    assert isinstance(loaded, MixtureBTHead)
    np.testing.assert_allclose(loaded.predict(x), head.predict(x))
    np.testing.assert_allclose(loaded.predict_for(x, "a05"), head.predict_for(x, "a05"))
    with pytest.warns(UserWarning, match="population"):
        np.testing.assert_allclose(loaded.predict_for(x, "nobody"), head.predict(x))


def test_one_type_when_everyone_agrees() -> None:
    data, _, _ = mixture_problem(share=0.0, n_annotators=20, per_annotator=80)
    head = MixtureBTHead(k_max=3, seed=1).fit(data)
    assert head.fit_log["k"] == 1
    with pytest.raises(ModelError, match="k must be"):
        MixtureBTHead(k=-1).fit(data)
