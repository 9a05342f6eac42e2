"""The RewardModel / RewardHead contract: one API for single heads and ensembles, scikit-learn conventions,
refitting loaded models, and models saved before the registries still loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data import FeedbackDataset
from rewardlab.errors import ModelError, RewardlabError
from rewardlab.rewards import (
    STAT_KEYS,
    EnsembleHead,
    LightGBMHead,
    RewardHead,
    RewardModel,
    TorchHead,
    load_head,
    make_head,
)
from synthetic import preference_dataset, synthetic_problem

OLD_MODELS = Path(__file__).parent / "old_models"
PROMPTS = ["Can you help me with my homework?"] * 3
RESPONSES = ["Sure, happy to help with that.", "That is a stupid question.", "Here you go."]


def polite_dataset(n: int = 60, offset: int = 0) -> FeedbackDataset:
    polite = ["Sure, happy to help with that.", "Here is a careful, kind answer.", "Thanks for asking, here you go."]
    rude = ["No. Figure it out yourself.", "That is a stupid question.", "Go away and stop asking."]
    rows = [(f"Question {i}: can you help me with task {i}?", f"{polite[i % 3]} (task {i})", f"{rude[i % 3]} (task {i})")
            for i in range(offset, offset + n)]
    return preference_dataset("polite", rows)


@pytest.fixture(scope="module")
def single() -> RewardModel:
    return RewardModel.create("bt-linear", encoder="hashing:64", seed=1).fit(polite_dataset())


@pytest.fixture(scope="module")
def ensemble() -> RewardModel:
    return RewardModel.create("bt-linear", encoder="hashing:64", seed=1, ensemble=3, aggregate="lcb",
                              lam=0.5).fit(polite_dataset())


def test_a_single_model_is_an_ensemble_of_one(single: RewardModel) -> None:
    assert not single.is_ensemble and single.n_members == 1
    score = single.score(PROMPTS, RESPONSES)
    members = single.score_members(PROMPTS, RESPONSES)
    assert members.shape == (1, 3) and np.array_equal(members[0], score)
    for aggregate in ("mean", "min", "lcb"):  # no disagreement: every aggregate is the score
        assert np.array_equal(single.score(PROMPTS, RESPONSES, aggregate=aggregate, lam=3.0), score)
    stats = single.score_stats(PROMPTS, RESPONSES)
    assert tuple(stats) == STAT_KEYS and not stats["std"].any()
    assert all(np.array_equal(stats[k], score) for k in ("score", "mean", "min", "lcb"))


def test_ensemble_aggregates(ensemble: RewardModel) -> None:
    assert ensemble.is_ensemble and ensemble.n_members == 3
    x = ensemble.featurize(PROMPTS, RESPONSES)
    members = ensemble.predict_members(x)
    assert members.shape == (3, 3) and np.array_equal(members, ensemble.score_members(PROMPTS, RESPONSES))
    mean, std = members.mean(0), members.std(0, ddof=1)
    assert np.allclose(ensemble.predict(x), mean - 0.5 * std)  # its configured aggregate
    assert np.allclose(ensemble.predict(x, "mean"), mean)
    assert np.allclose(ensemble.predict(x, "min"), members.min(0))
    assert np.allclose(ensemble.predict(x, "lcb", lam=2.0), mean - 2.0 * std)
    assert np.allclose(ensemble.predict(x, lam=2.0), mean - 2.0 * std)  # default aggregate, other λ
    stats = ensemble.predict_stats(x)
    assert tuple(stats) == STAT_KEYS and np.array_equal(stats["score"], ensemble.predict(x))
    assert np.array_equal(ensemble.score(PROMPTS, RESPONSES), ensemble.predict(x))


def test_bad_aggregate_and_mismatched_inputs_are_model_errors(single: RewardModel, ensemble: RewardModel) -> None:
    for model in (single, ensemble):
        with pytest.raises(ModelError, match="unknown aggregate 'median'"):
            model.score(PROMPTS, RESPONSES, aggregate="median")
    with pytest.raises(ModelError, match="same length"):
        single.score(PROMPTS, RESPONSES[:2])


def test_every_head_satisfies_the_protocol() -> None:
    train, _ = synthetic_problem(n_prompts=60, seed=0)
    heads = [make_head("bt-linear"), make_head("clf-lgbm", n_estimators=3), make_head("bt-linear", ensemble=2)]
    for head in heads:
        assert isinstance(head, RewardHead)
        fitted = head.fit(train)
        assert fitted is head and isinstance(fitted, RewardHead)
        assert head.predict_members(train.x).shape == (head.n_members, len(train.x))


def test_constructors_only_store_parameters() -> None:
    head = TorchHead(objective="no-such-objective", hidden=4, lr=0.1)
    assert vars(head) == head.get_params()  # no fitted state, no derived attributes
    assert not any(k.endswith("_") for k in vars(head))
    lgbm = LightGBMHead(objective="bt")  # invalid, but only fit may say so
    train, _ = synthetic_problem(n_prompts=30, seed=0)
    with pytest.raises(ModelError, match="unknown objective 'no-such-objective'"):
        head.fit(train)
    with pytest.raises(ModelError, match="pointwise"):
        lgbm.fit(train)
    ens = EnsembleHead(TorchHead(hidden=0), n=1, aggregate="nope")
    with pytest.raises(ModelError, match="at least 2 members"):
        ens.fit(train)


def test_fitted_state_has_a_trailing_underscore_and_predict_needs_it() -> None:
    train, _ = synthetic_problem(n_prompts=60, seed=0)
    for kind, fitted_attr in (("bt-linear", "net_"), ("clf-lgbm", "booster_")):
        head = make_head(kind, n_estimators=3) if kind == "clf-lgbm" else make_head(kind)
        with pytest.raises(ModelError, match="not fitted"):
            head.predict(train.x)
        head.fit(train)
        assert hasattr(head, fitted_attr) and head.fit_log == head.fit_log_  # type: ignore[attr-defined]
    ens = make_head("bt-linear", ensemble=2)
    with pytest.raises(ModelError, match="not fitted"):
        ens.predict(train.x)
    assert len(ens.fit(train).members_) == 2  # type: ignore[attr-defined]


def test_clone_is_unfitted_with_the_same_params() -> None:
    train, _ = synthetic_problem(n_prompts=60, seed=0)
    for head in (make_head("bt-mlp", max_epochs=3), make_head("clf-lgbm", n_estimators=3),
                 make_head("bt-linear", ensemble=2, aggregate="min")):
        head.fit(train)
        copy = head.clone()
        assert type(copy) is type(head) and copy.params() == head.params()
        assert not copy.is_fitted  # type: ignore[attr-defined]
        assert np.array_equal(copy.fit(train).predict(train.x), head.predict(train.x))  # deterministic given seed


def test_set_params_rejects_unknown_names() -> None:
    head = make_head("bt-linear")
    assert head.set_params(lr=0.1).get_params()["lr"] == 0.1
    with pytest.raises(ModelError, match="no parameter"):
        head.set_params(learning_rate=0.1)


def test_ensemble_validation_raises_model_errors() -> None:
    with pytest.raises(ModelError, match="at least 2"):
        make_head("bt-linear", ensemble=1)
    with pytest.raises(ModelError, match="unknown aggregate"):
        make_head("bt-linear", ensemble=2, aggregate="max")
    with pytest.raises(ModelError, match="fixed by the kind"):
        make_head("bt-mlp", hidden=3)
    with pytest.raises(RewardlabError, match="bad parameters"):
        make_head("bt-linear", ensemble=2, hiden=3)  # an ensemble's member parameters fail at once too


@pytest.mark.parametrize("ensemble_size", [0, 3])
def test_a_loaded_model_can_be_refitted(ensemble_size: int, tmp_path: Path) -> None:
    """Loading keeps the parameters, so refitting equals fitting a fresh model with the same settings."""
    kwargs = {"encoder": "hashing:64", "seed": 4, "ensemble": ensemble_size, "max_epochs": 20}
    if ensemble_size:
        kwargs.update(aggregate="min")
    RewardModel.create("bt-mlp", **kwargs).fit(polite_dataset()).save(tmp_path / "m")  # type: ignore[arg-type]
    new_data = polite_dataset(40, offset=100)
    refitted = RewardModel.load(tmp_path / "m").fit(new_data)
    fresh = RewardModel.create("bt-mlp", **kwargs).fit(new_data)  # type: ignore[arg-type]
    assert refitted.config()["head"] == fresh.config()["head"]
    assert np.array_equal(refitted.score_members(PROMPTS, RESPONSES), fresh.score_members(PROMPTS, RESPONSES))
    assert np.array_equal(refitted.score(PROMPTS, RESPONSES), fresh.score(PROMPTS, RESPONSES))
    assert refitted.train_info["data_fingerprint"] == new_data.fingerprint()


@pytest.mark.parametrize("name", ["bt-linear", "bt-mlp", "clf-lgbm", "bt-linear-ens"])
def test_models_saved_before_the_registries_still_load(name: str, tmp_path: Path) -> None:
    """The fixtures were written by the pre-registry code (config.json + head/head.json); the layout is unchanged."""
    expected = json.loads((OLD_MODELS / "expected.json").read_text())
    model = RewardModel.load(OLD_MODELS / name)
    assert model.is_ensemble == name.endswith("-ens")
    np.testing.assert_allclose(model.score(expected["prompts"], expected["responses"]), expected["scores"][name],
                               rtol=1e-6, atol=1e-6)
    model.save(tmp_path / "again")  # and saves back in the same layout
    for path in sorted((OLD_MODELS / name).rglob("head.json")):
        old = json.loads(path.read_text())
        new = json.loads((tmp_path / "again" / path.relative_to(OLD_MODELS / name)).read_text())
        added = {key: new["params"].pop(key) for key in set(new["params"]) - set(old["params"])}
        assert old == new
        assert added in ({}, {"length_debias": False, "balance_length": False})  # parameters added since: defaults


def test_an_old_ensemble_refits(tmp_path: Path) -> None:
    shutil.copytree(OLD_MODELS / "bt-linear-ens", tmp_path / "ens")
    model = RewardModel.load(tmp_path / "ens").fit(polite_dataset(30, offset=7))
    assert model.score_members(PROMPTS, RESPONSES).shape == (2, 3)
    assert model.config()["head"] == load_head(tmp_path / "ens" / "head").params()


def test_damaged_head_directories_are_model_errors(tmp_path: Path) -> None:
    shutil.copytree(OLD_MODELS / "bt-linear", tmp_path / "m")
    head_json = tmp_path / "m" / "head" / "head.json"
    config = json.loads(head_json.read_text())
    head_json.write_text(json.dumps({**config, "class": "forest"}))
    with pytest.raises(ModelError, match="unknown head class 'forest'"):
        RewardModel.load(tmp_path / "m")
    head_json.write_text(json.dumps({**config, "params": {**config["params"], "layers": 3}}))
    with pytest.raises(ModelError, match="cannot load this 'torch' head"):
        RewardModel.load(tmp_path / "m")
    head_json.write_text(json.dumps(config))
    (tmp_path / "m" / "head" / "head.safetensors").unlink()
    with pytest.raises(ModelError, match="cannot load"):
        RewardModel.load(tmp_path / "m")
