"""Saved prompt models (issue 21): atomic replacement, a weights checksum, no encoder paths outside the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.errors import ModelError
from rewardlab.optimize.prompts import PromptRewardModel

TEXTS = ["a", "b", "c"]


def _model(head: str = "logistic", seed: int = 0) -> tuple[PromptRewardModel, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(200, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    p = np.eye(3, 8, dtype=np.float32)
    labels = (q[:, :3] > 0).astype(np.float32)
    return PromptRewardModel(head=head, seed=seed, max_epochs=5).fit(q, p, labels, TEXTS), q, p


def test_an_interrupted_save_leaves_the_old_model_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, q, p = _model(seed=0)
    old.save(tmp_path / "m")
    before = old.predict_proba(q, p, TEXTS)
    new, _, _ = _model(seed=1)
    import rewardlab.optimize.prompts as prompts

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the user pressed ^C after the weights, before config.json

    monkeypatch.setattr(prompts, "file_digests", crash)
    with pytest.raises(KeyboardInterrupt):
        new.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directory left behind
    assert np.array_equal(PromptRewardModel.load(tmp_path / "m").predict_proba(q, p, TEXTS), before)


@pytest.mark.parametrize("head,weights", [("logistic", "model.safetensors"), ("knn", "memory.safetensors")])
def test_a_bit_flipped_weights_file_is_refused(head: str, weights: str, tmp_path: Path) -> None:
    model, _, _ = _model(head)
    model.save(tmp_path / "m")
    path = tmp_path / "m" / weights
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the checksum") as info:
        PromptRewardModel.load(tmp_path / "m")
    assert weights in str(info.value)


def test_an_encoder_path_outside_the_model_is_refused_unless_allowed(tmp_path: Path) -> None:
    model, _, _ = _model()
    model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["encoder"] = "hf-last:../../../../etc"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="outside the model directory"):
        PromptRewardModel.load(tmp_path / "m")
    assert PromptRewardModel.load(tmp_path / "m", allow_external_encoder=True).encoder == "hf-last:../../../../etc"


@pytest.mark.parametrize("damage", ["bad json", "wrong types", "truncated weights", "absurd dim"])
def test_a_damaged_prompt_model_is_one_model_error(damage: str, tmp_path: Path) -> None:
    model, _, _ = _model()
    model.save(tmp_path / "m")
    config_path, weights = tmp_path / "m" / "config.json", tmp_path / "m" / "model.safetensors"
    config = json.loads(config_path.read_text())
    config.pop("weights_sha256", None)  # as a model saved before checksums: the loader itself must hold
    if damage == "bad json":
        config_path.write_text("{not json")
    else:
        if damage == "wrong types":
            config["known_prompts"] = 7
        elif damage == "absurd dim":
            config["dim"] = 400_000_000
        else:
            weights.write_bytes(weights.read_bytes()[:40])
        config_path.write_text(json.dumps(config))
    with pytest.raises(ModelError) as info:
        PromptRewardModel.load(tmp_path / "m")
    assert str(tmp_path / "m") in str(info.value)
