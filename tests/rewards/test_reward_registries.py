"""Extending rewards by registry: a toy head class + kind, and a toy objective, each added without editing
the library, then trained, saved, loaded and scored like the built-ins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from rewardlab.errors import ModelError
from rewardlab.registry import Registry
from rewardlab.rewards import (
    HEAD_CLASSES,
    HEAD_KINDS,
    OBJECTIVES,
    Examples,
    HeadBase,
    LightGBMHead,
    RewardModel,
    TorchHead,
    TrainingSet,
    make_head,
    register_head_class,
    register_head_kind,
    register_objective,
)
from rewardlab.rewards.base import FitProgress, read_head_json, write_head_json
from rewardlab.rewards.objectives import get_objective
from synthetic import order_agreement, preference_dataset, synthetic_problem


class RidgeHead(HeadBase):
    """A toy numpy head: ridge regression on each objective's examples, fitted on a seeded 80% subsample
    (so an ensemble of it has members that disagree). Pairwise examples regress r(a) − r(b) on 2·P(a wins) − 1."""

    class_name: ClassVar[str] = "toy-ridge"

    def __init__(self, objective: str = "bt", alpha: float = 1.0, seed: int = 0) -> None:
        self.objective = objective
        self.alpha = alpha
        self.seed = seed

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None) -> RidgeHead:
        objective = get_objective(self.objective)
        ex = objective.examples(data)
        x = data.x[ex.left].astype(np.float64)
        if ex.right is not None:
            x = x - data.x[ex.right]
        y = 2.0 * ex.target - 1.0 if not objective.regression else ex.target.astype(np.float64)
        keep = np.random.default_rng(self.seed).random(len(y)) < 0.8
        x, y = x[keep], y[keep]
        self.w_ = np.linalg.solve(x.T @ x + self.alpha * np.eye(x.shape[1]), x.T @ y)
        self.fit_log_ = {"n_train_examples": int(keep.sum())}
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(x, dtype=np.float64) @ self.w_

    def save(self, directory: Path) -> None:
        write_head_json(directory, self, self.class_name)
        save_file({"w": self.w_}, str(directory / "w.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> RidgeHead:
        head = cls(**read_head_json(directory)["params"])
        head.w_ = load_file(str(directory / "w.safetensors"))["w"]
        head.fit_log_ = read_head_json(directory).get("fit_log", {})
        return head


def _win_rate(data: TrainingSet) -> Examples:
    """Toy objective: each compared item's share of wins, regressed pointwise."""
    if not len(data.pair_a):
        raise ModelError("a win-rate head needs comparisons")
    items = np.concatenate([data.pair_a, data.pair_b])
    wins = np.concatenate([data.pair_target, 1.0 - data.pair_target])
    unique, inverse = np.unique(items, return_inverse=True)
    rate = np.bincount(inverse, weights=wins) / np.bincount(inverse)
    return Examples(unique, None, rate.astype(np.float32))


@pytest.fixture
def toy_kind() -> Iterator[str]:
    """The whole extension: the class above, one decorator-style registration, one kind line."""
    register_head_class(RidgeHead)
    register_head_kind("ridge-bt", RidgeHead, objective="bt")
    yield "ridge-bt"
    HEAD_KINDS.unregister("ridge-bt")
    HEAD_CLASSES.unregister(RidgeHead.class_name)


@pytest.fixture
def toy_objective() -> Iterator[str]:
    register_objective("win-rate", "comparisons", regression=True)(_win_rate)
    register_head_kind("win-rate-linear", TorchHead, objective="win-rate", hidden=0)
    yield "win-rate"
    HEAD_KINDS.unregister("win-rate-linear")
    OBJECTIVES.unregister("win-rate")


def polite_dataset(n: int = 80):  # type: ignore[no-untyped-def]
    polite = ["Sure, happy to help with that.", "Here is a careful, kind answer.", "Thanks for asking, here you go."]
    rude = ["No. Figure it out yourself.", "That is a stupid question.", "Go away and stop asking."]
    return preference_dataset("polite", [(f"Question {i}: help with task {i}?", f"{polite[i % 3]} ({i})",
                                          f"{rude[i % 3]} ({i})") for i in range(n)])


@pytest.mark.parametrize("ensemble", [0, 3])
def test_a_toy_head_kind_trains_saves_loads_and_scores(toy_kind: str, ensemble: int, tmp_path: Path) -> None:
    assert HEAD_KINDS[toy_kind].feedback == "comparisons"  # read off the objective
    model = RewardModel.create(toy_kind, encoder="hashing:128", seed=2, ensemble=ensemble).fit(polite_dataset())
    prompts = ["Can you help me?"] * 2
    responses = ["Sure, happy to help with that.", "That is a stupid question."]
    score = model.score(prompts, responses)
    assert score[0] > score[1]
    model.save(tmp_path / "toy")
    loaded = RewardModel.load(tmp_path / "toy")
    assert np.array_equal(loaded.score(prompts, responses), score)
    assert loaded.score_members(prompts, responses).shape == (max(1, ensemble), 2)
    if ensemble:
        assert loaded.score_stats(prompts, responses)["std"].max() > 0  # seeded subsamples disagree
        refit = loaded.fit(polite_dataset(40))  # a loaded toy ensemble refits too
        assert refit.score(prompts, responses)[0] > refit.score(prompts, responses)[1]


def test_the_toy_head_recovers_a_known_reward(toy_kind: str) -> None:
    train, true = synthetic_problem(n_prompts=2000, seed=0)
    assert order_agreement(make_head(toy_kind).fit(train).predict(train.x), true) > 0.95


def test_a_toy_objective_works_with_the_built_in_heads(toy_objective: str, tmp_path: Path) -> None:
    train, true = synthetic_problem(n_prompts=3000, seed=1)
    for head in (TorchHead(objective=toy_objective, hidden=0), LightGBMHead(objective=toy_objective)):
        assert order_agreement(head.fit(train).predict(train.x), true) > 0.9, type(head).__name__
    model = RewardModel.create("win-rate-linear", encoder="hashing:64").fit(polite_dataset())
    model.save(tmp_path / "m")
    prompts, responses = ["Help?"] * 2, ["Thanks for asking, here you go.", "Go away and stop asking."]
    assert np.array_equal(RewardModel.load(tmp_path / "m").score(prompts, responses), model.score(prompts, responses))


def test_unknown_names_and_clashes_are_clear_errors(toy_kind: str) -> None:
    with pytest.raises(ModelError, match="unknown head kind 'nope'; known: bt-linear, .*ridge-bt"):
        make_head("nope")
    with pytest.raises(ModelError, match="already registered"):
        register_head_kind(toy_kind, RidgeHead, objective="bt")
    with pytest.raises(ModelError, match="unknown objective"):
        register_head_kind("ridge-x", RidgeHead, objective="x")
    with pytest.raises(ModelError, match="say what feedback"):
        register_head_kind("ridge-y", RidgeHead)
    assert "ridge-x" not in HEAD_KINDS and "ridge-y" not in HEAD_KINDS
    with pytest.raises(ModelError, match="already registered"):
        register_head_class(RidgeHead)


def test_registry_mapping_and_replace() -> None:
    registry: Registry[object] = Registry("widget", ModelError)
    registry.register("a", 1)

    @registry.register("b")
    def b() -> int:  # decorator form returns the entry unchanged
        return 2

    assert list(registry) == ["a", "b"] and len(registry) == 2 and "a" in registry and registry.lookup("a") == 1
    assert registry.get("zzz") is None and b() == 2
    registry.register("a", 3, replace=True)
    assert registry["a"] == 3
    with pytest.raises(KeyError):
        registry["zzz"]
    with pytest.raises(ModelError, match="unknown widget 'zzz'; known: a, b"):
        registry.lookup("zzz")
