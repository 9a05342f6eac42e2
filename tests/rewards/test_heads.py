"""Every head recovers a synthetic problem with a known reward, and round-trips through save/load exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardlab.errors import ModelError
from rewardlab.rewards import HEAD_KINDS, EnsembleHead, load_head, make_head
from synthetic import order_agreement, synthetic_problem


def _true_reward(x: np.ndarray, n_prompts: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rng.normal(size=(2 * n_prompts, x.shape[1]))  # the same draws synthetic_problem makes before w
    w = rng.normal(size=x.shape[1])
    return x @ w / np.linalg.norm(w)


@pytest.mark.parametrize("kind", list(HEAD_KINDS))
def test_head_recovers_known_reward_on_held_out_items(kind: str) -> None:
    """Trees need more data than smooth models on a linear reward, so the problem is large (20k items)."""
    train, _ = synthetic_problem(n_prompts=10000, dim=4, seed=0)
    x_new = np.random.default_rng(99).normal(size=(2000, train.dim)).astype(np.float32)
    true_new = _true_reward(x_new, 10000)
    head = make_head(kind, seed=0).fit(train)
    agreement = order_agreement(head.predict(x_new), true_new)
    assert agreement > 0.95, f"{kind}: order agreement {agreement:.3f}"


def test_true_reward_helper_matches_generator() -> None:
    data, true = synthetic_problem(n_prompts=2000, seed=0)
    assert np.allclose(_true_reward(data.x, 2000), true, atol=1e-5)


def test_head_on_noisy_labels_beats_chance_but_not_perfect() -> None:
    """With β = 1 labels are noisy; a head should still learn the order well."""
    train, _ = synthetic_problem(n_prompts=3000, beta=1.0, seed=0)
    x_new = np.random.default_rng(5).normal(size=(2000, train.dim)).astype(np.float32)
    head = make_head("bt-linear").fit(train)
    assert order_agreement(head.predict(x_new), _true_reward(x_new, 3000)) > 0.9


@pytest.mark.parametrize("kind", ["bt-mlp", "clf-logistic", "clf-lgbm", "rating-mlp", "outcome-lgbm"])
def test_save_load_round_trip_is_exact(kind: str, tmp_path: Path) -> None:
    train, _ = synthetic_problem(n_prompts=400, seed=1)
    head = make_head(kind, seed=3).fit(train)
    head.save(tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert np.array_equal(head.predict(train.x), loaded.predict(train.x))
    assert loaded.params() == head.params()
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))


def test_ensemble_statistics_and_round_trip(tmp_path: Path) -> None:
    train, _ = synthetic_problem(n_prompts=400, seed=2)
    head = make_head("bt-mlp", seed=0, ensemble=3, aggregate="lcb", lam=2.0).fit(train)
    assert isinstance(head, EnsembleHead)
    stats = head.predict_stats(train.x)
    members = head.predict_members(train.x)
    assert members.shape == (3, len(train.x))
    assert np.allclose(stats["mean"], members.mean(0))
    assert np.allclose(stats["min"], members.min(0))
    assert np.allclose(stats["lcb"], stats["mean"] - 2.0 * stats["std"])
    assert (stats["std"] > 0).all(), "members with different seeds must disagree somewhere"
    assert np.array_equal(head.predict(train.x), stats["lcb"])
    head.save(tmp_path / "ens")
    loaded = load_head(tmp_path / "ens")
    assert np.array_equal(loaded.predict(train.x), head.predict(train.x))


def test_fit_is_deterministic_given_seed() -> None:
    train, _ = synthetic_problem(n_prompts=300, seed=4)
    a = make_head("clf-mlp", seed=7).fit(train).predict(train.x)
    b = make_head("clf-mlp", seed=7).fit(train).predict(train.x)
    c = make_head("clf-mlp", seed=8).fit(train).predict(train.x)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_early_stopping_stops_before_the_epoch_limit() -> None:
    train, _ = synthetic_problem(n_prompts=600, beta=1.0, seed=5)
    head = make_head("bt-mlp", max_epochs=500).fit(train)
    assert head.fit_log["best_val_loss"] is not None
    assert head.fit_log["epochs"] < 500
    assert head.fit_log["best_epoch"] <= head.fit_log["epochs"]


def test_missing_supervision_and_bad_kinds_are_clear_errors() -> None:
    train, _ = synthetic_problem(n_prompts=50)
    train.rating_item = train.rating_item[:0]
    train.rating_value = train.rating_value[:0]
    with pytest.raises(ModelError, match="needs ratings"):
        make_head("rating-mlp").fit(train)
    with pytest.raises(ModelError, match="unknown head kind"):
        make_head("bt-forest")
    with pytest.raises(ModelError, match="bad parameters"):
        make_head("bt-mlp", hiden=3)
