"""Saved heads read defensively (issue 21): damage is one ModelError naming the file, absurd sizes fail before any
allocation, and an ensemble is replaced as one unit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.errors import ModelError
from rewardlab.rewards import RewardModel
from rewardlab.rewards.base import load_head
from synthetic import preference_dataset

ROWS = [(f"question {i}", f"kind answer {i}", f"rude answer {i}") for i in range(40)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model") / "m"
    RewardModel.create("bt-mlp", encoder="hashing:32", seed=0, max_epochs=3).fit(
        preference_dataset("polite", ROWS)).save(directory)
    return directory


def _copy_head(saved: Path, tmp_path: Path) -> Path:
    head = tmp_path / "head"
    head.mkdir()
    for item in (saved / "head").iterdir():
        (head / item.name).write_bytes(item.read_bytes())
    return head


def _edit_head_json(head: Path, **changes: object) -> None:
    config = json.loads((head / "head.json").read_text())
    config.update(changes)
    (head / "head.json").write_text(json.dumps(config))


def test_absurd_dims_fail_before_allocating(saved: Path, tmp_path: Path) -> None:
    head = _copy_head(saved, tmp_path)
    _edit_head_json(head, dim=400_000_000)  # × hidden 256: the probe's 409 GB
    with pytest.raises(ModelError, match="do not fit") as info:
        load_head(head)
    assert str(head / "head.safetensors") in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "missing"])
def test_a_damaged_weights_file_is_a_model_error(damage: str, saved: Path, tmp_path: Path) -> None:
    head = _copy_head(saved, tmp_path)
    weights = head / "head.safetensors"
    data = weights.read_bytes()
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes({"truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 4,
                             "empty": b""}[damage])
    with pytest.raises(ModelError) as info:
        load_head(head)
    assert str(weights) in str(info.value)


@pytest.mark.parametrize("text", ["{broken", "[1, 2]", "[" * 100_000, '{"class": "torch", "params": [1]}',
                                  '{"class": "torch", "params": {"hidden": "wide"}, "dim": 32, "rating_mean": 0, '
                                  '"rating_std": 1}'])
def test_a_damaged_head_json_is_a_model_error(text: str, saved: Path, tmp_path: Path) -> None:
    head = _copy_head(saved, tmp_path)
    (head / "head.json").write_text(text)
    with pytest.raises(ModelError) as info:
        load_head(head)
    assert str(head) in str(info.value)


def test_nan_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    head = _copy_head(saved, tmp_path)
    arrays = load_file(str(head / "head.safetensors"))
    name = sorted(arrays)[0]
    arrays[name] = np.full_like(arrays[name], np.nan)
    save_file(arrays, str(head / "head.safetensors"))
    with pytest.raises(ModelError, match="not finite"):
        load_head(head)


def test_an_interrupted_ensemble_save_keeps_every_old_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe: an interruption after member 000 left 000 new and 001-002 old, which loaded and scored silently."""
    data = preference_dataset("polite", ROWS)
    old = RewardModel.create("bt-linear", encoder="hashing:32", ensemble=3, seed=0, max_epochs=3).fit(data)
    old.head.save(tmp_path / "ens")
    prompts, responses = ["question 1"] * 2, ["kind answer 1", "rude answer 1"]
    x = old.featurize(prompts, responses)
    before = old.head.predict_members(x)
    new = RewardModel.create("bt-linear", encoder="hashing:32", ensemble=3, seed=7, max_epochs=3).fit(data)
    member_type = type(new.head.members_[0])
    real_save = member_type.save
    calls = {"n": 0}

    def save_then_die(self, directory):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed after member 000 was written
        real_save(self, directory)

    monkeypatch.setattr(member_type, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        new.head.save(tmp_path / "ens")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ens"]  # the temporary sibling is gone
    assert np.array_equal(load_head(tmp_path / "ens").predict_members(x), before)
    new.head.save(tmp_path / "ens")  # and an uninterrupted save replaces all members at once
    assert np.array_equal(load_head(tmp_path / "ens").predict_members(x), new.head.predict_members(x))


def test_an_ensemble_with_a_missing_member_is_refused(tmp_path: Path) -> None:
    data = preference_dataset("polite", ROWS)
    model = RewardModel.create("bt-linear", encoder="hashing:32", ensemble=3, seed=0, max_epochs=3).fit(data)
    model.head.save(tmp_path / "ens")
    import shutil

    shutil.rmtree(tmp_path / "ens" / "members" / "002")
    with pytest.raises(ModelError, match="3 members, but 2"):
        load_head(tmp_path / "ens")


def test_a_damaged_objective_fails_at_load_not_at_the_first_prediction(saved: Path, tmp_path: Path) -> None:
    head = _copy_head(saved, tmp_path)
    config = json.loads((head / "head.json").read_text())
    _edit_head_json(head, params={**config["params"], "objective": []})
    with pytest.raises(ModelError, match="cannot load"):
        load_head(head)
