"""Annotator quality: one-coin Dawid–Skene and leave-one-out agreement recover known reliabilities, careless
annotators get weight ≈ 0, and the weights reach the heads' loss."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison
from rewardlab.errors import ModelError
from rewardlab.rewards.annotator_quality import (
    NO_ANNOTATOR,
    dawid_skene,
    estimate_annotator_quality,
    pair_labels,
    reliability_weights,
)
from rewardlab.rewards.training_set import build_training_set

ACCURACY = [0.9, 0.85, 0.9, 0.8, 0.95, 0.9, 0.85, 0.5, 0.5, 0.5]  # the last three flip at random


def labelled_dataset(n_items: int = 400, per_item: int = 3, accuracy: list[float] = ACCURACY,
                     seed: int = 0) -> FeedbackDataset:
    """``n_items`` pairs (one prompt each), each labelled by ``per_item`` distinct annotators of known accuracy."""
    rng = np.random.default_rng(seed)
    ds = FeedbackDataset("synthetic")
    for i in range(n_items):
        pid = ds.add_prompt(f"prompt {i}")
        a = ds.add_response(pid, f"response {i} one")
        b = ds.add_response(pid, f"response {i} two")
        a_wins = rng.random() < 0.5
        for j in rng.choice(len(accuracy), size=per_item, replace=False):
            right = rng.random() < accuracy[j]
            ds.add(Comparison(pid, a, b, "a" if a_wins == right else "b", annotator_id=f"ann{j}"))
    return ds


def test_dawid_skene_recovers_known_reliabilities() -> None:
    quality = estimate_annotator_quality(labelled_dataset(), "dawid-skene", n_resamples=50)
    for j, truth in enumerate(ACCURACY):
        est = quality.reliability[f"ann{j}"]
        assert abs(est.value - truth) < 0.08, (j, est, truth)
        assert est.low <= est.value <= est.high
    careless = [quality.weights[f"ann{j}"] for j in (7, 8, 9)]
    careful = [quality.weights[f"ann{j}"] for j in range(7)]
    assert max(careless) < 0.25 * min(careful)
    assert quality.n_items == 400


def test_agreement_ranks_careless_annotators_last() -> None:
    quality = estimate_annotator_quality(labelled_dataset(), "agreement", n_resamples=20)
    values = {a: e.value for a, e in quality.reliability.items()}
    assert max(values[f"ann{j}"] for j in (7, 8, 9)) < min(values[f"ann{j}"] for j in range(7))
    assert max(quality.weights[f"ann{j}"] for j in (7, 8, 9)) < 0.35 * min(quality.weights[f"ann{j}"] for j in range(7))


def test_em_is_order_free_and_pairs_are_unordered() -> None:
    ds = FeedbackDataset("order")
    pid = ds.add_prompt("p")
    a, b = ds.add_response(pid, "x"), ds.add_response(pid, "y")
    ds.add(Comparison(pid, a, b, "a", annotator_id="u"))
    ds.add(Comparison(pid, b, a, "b", annotator_id="v"))  # the same verdict, shown the other way round
    ds.add(Comparison(pid, a, b, "tie", annotator_id="w"))
    labels = pair_labels(ds)
    assert len(labels.items) == 1 and labels.value.tolist() == [labels.value[0]] * 2  # ties left out
    assert labels.overlapping().all()


def test_single_labels_and_loners_get_population() -> None:
    ds = labelled_dataset(n_items=200)
    pid = ds.add_prompt("lonely")
    a, b = ds.add_response(pid, "l1"), ds.add_response(pid, "l2")
    ds.add(Comparison(pid, a, b, "a", annotator_id="loner"))
    ds.add(Comparison(pid, a, b, "b"))  # no annotator id, on the same item: overlaps the loner
    ds.add(Comparison(pid, a, b, "a", annotator_id="ann0"))
    pid2 = ds.add_prompt("only once")
    c, d = ds.add_response(pid2, "o1"), ds.add_response(pid2, "o2")
    ds.add(Comparison(pid2, c, d, "a", annotator_id="solo"))
    quality = estimate_annotator_quality(ds, "dawid-skene", n_resamples=10)
    assert np.isnan(quality.reliability["solo"].value)
    assert quality.weights["solo"] == pytest.approx(float(reliability_weights(np.array([quality.population]))[0]
                                                         * quality.weights["ann0"]
                                                         / reliability_weights(np.array([quality.reliability["ann0"].value]))[0]),
                                                   rel=1e-6)
    assert NO_ANNOTATOR in quality.weights and "loner" in quality.weights
    assert any("population" in note for note in quality.notes)


def test_no_overlap_is_a_clear_error() -> None:
    ds = labelled_dataset(n_items=20, per_item=1)
    with pytest.raises(ModelError, match="two different annotators"):
        estimate_annotator_quality(ds, "dawid-skene")
    with pytest.raises(ModelError, match="unknown"):
        estimate_annotator_quality(ds, "majority")


def test_dawid_skene_em_on_arrays() -> None:
    # three annotators agree on every item: accuracies near 1 (smoothed), posteriors follow the labels
    item = np.array([0, 0, 0, 1, 1, 1])
    annotator = np.array([0, 1, 2, 0, 1, 2])
    value = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    accuracy, posterior = dawid_skene(item, annotator, value, 4)
    assert np.all(accuracy[:3] > 0.7) and np.isnan(accuracy[3])
    assert posterior[0] > 0.9 and posterior[1] < 0.1


def test_weights_are_mean_one_and_reach_the_training_set() -> None:
    ds = labelled_dataset(n_items=100)
    quality = estimate_annotator_quality(ds, "dawid-skene", n_resamples=0)
    per_label = [quality.weights[c.annotator_id] for c in ds.comparisons]
    assert np.mean(per_label) == pytest.approx(1.0)
    feats = {rid: np.ones(4, np.float32) * k for k, rid in enumerate(ds.responses)}
    data = build_training_set(ds, feats, quality.weights)
    assert data.pair_weight.tolist() == pytest.approx(per_label)
    train, val = data.split_by_group(0.2, seed=0)
    assert len(train.pair_weight) == len(train.pair_a) and len(val.pair_weight) == len(val.pair_a)
    plain = build_training_set(ds, feats)
    assert len(plain.pair_weight) == 0 and plain.pair_weights().tolist() == [1.0] * len(plain.pair_a)


def _noisy_problem(seed: int = 0) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """A linear reward over 16-d features; 80 clean pairs and 800 pairs labelled by coin flips (annotator "noise")."""
    from rewardlab.rewards.training_set import TrainingSet

    rng = np.random.default_rng(seed)
    n_items, dim = 400, 16
    x = rng.normal(size=(n_items, dim)).astype(np.float32)
    w = rng.normal(size=dim)
    gold = x @ w
    clean_a, clean_b = rng.integers(n_items, size=80), rng.integers(n_items, size=80)
    noise_a, noise_b = rng.integers(n_items, size=800), rng.integers(n_items, size=800)
    pair_a, pair_b = np.concatenate([clean_a, noise_a]), np.concatenate([clean_b, noise_b])
    target = np.concatenate([(gold[clean_a] > gold[clean_b]), rng.random(800) < 0.5]).astype(np.float32)
    is_noise = np.arange(len(pair_a)) >= 80
    data = TrainingSet(x=x, response_ids=[str(i) for i in range(n_items)], group=np.arange(n_items),
                       pair_a=pair_a, pair_b=pair_b, pair_target=target, rating_item=np.zeros(0, np.int64),
                       rating_value=np.zeros(0, np.float32), label_item=np.zeros(0, np.int64),
                       label_value=np.zeros(0, np.float32))
    return data, gold, x, is_noise


def _gold_accuracy(head: object, gold: np.ndarray, x: np.ndarray) -> float:
    score = head.predict(x)  # type: ignore[attr-defined]
    i, j = np.triu_indices(len(gold), k=1)
    return float(np.mean((score[i] > score[j]) == (gold[i] > gold[j])))


@pytest.mark.parametrize("objective", ["bt", "clf"])
def test_weights_reach_the_loss_and_downweighting_noise_recovers_accuracy(objective: str) -> None:
    from dataclasses import replace

    from rewardlab.rewards.torch_head import TorchHead

    data, gold, x, is_noise = _noisy_problem()
    params = dict(objective=objective, hidden=0, dropout=0.0, val_fraction=0.0, max_epochs=15, batch_size=128)
    plain = TorchHead(**params).fit(data)  # type: ignore[arg-type]
    weighted_data = replace(data, pair_weight=np.where(is_noise, 0.0, 1.0).astype(np.float32))
    weighted = TorchHead(**params).fit(weighted_data)  # type: ignore[arg-type]
    assert not np.allclose(plain.predict(x), weighted.predict(x))
    acc_plain, acc_weighted = _gold_accuracy(plain, gold, x), _gold_accuracy(weighted, gold, x)
    assert acc_weighted > acc_plain + 0.03, (acc_plain, acc_weighted)
    # weights multiply with the length balance: both on, the fit still runs and differs from balance alone
    lengths = np.random.default_rng(1).integers(10, 500, size=len(x)).astype(np.float64)
    both = TorchHead(**params, balance_length=True).fit(replace(weighted_data, length=lengths))  # type: ignore[arg-type]
    balance_only = TorchHead(**params, balance_length=True).fit(replace(data, length=lengths))  # type: ignore[arg-type]
    assert not np.allclose(both.predict(x), balance_only.predict(x))


def test_training_set_keeps_each_pairs_annotator_through_splits() -> None:
    """Annotator-aware heads read who labelled each pair; a validation split must keep the ids aligned with the pairs."""
    from rewardlab.data.dataset import FeedbackDataset
    from rewardlab.data.types import Comparison
    from rewardlab.rewards.training_set import build_training_set

    data = FeedbackDataset("t")
    expected = {}
    for i in range(20):
        pid = data.add_prompt(f"prompt {i}")
        a, b = data.add_response(pid, f"text {i}a"), data.add_response(pid, f"text {i}b")
        annotator = f"ann{i % 3}" if i % 4 else None
        data.add(Comparison(pid, a, b, "a", annotator_id=annotator))
        expected[a] = annotator or ""
    feats = {rid: np.full(2, float(k), np.float32) for k, rid in enumerate(sorted(data.responses))}
    ts = build_training_set(data, feats)
    assert ts.pair_annotator.tolist() == [c.annotator_id or "" for c in data.comparisons]
    train, val = ts.split_by_group(0.3, seed=0)
    assert len(train.pair_a) and len(val.pair_a)
    for part in (train, val):
        assert part.pair_annotator.tolist() == [expected[part.response_ids[i]] for i in part.pair_a]
