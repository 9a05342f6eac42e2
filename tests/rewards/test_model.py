"""RewardModel end to end on text: fit, score, save/load round trip, encoder mismatch protection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data import FeedbackDataset
from rewardlab.errors import ModelError
from rewardlab.rewards import STAT_KEYS, RewardModel
from synthetic import preference_dataset

POLITE = ["Sure, happy to help with that.", "Here is a careful, kind answer.", "Thanks for asking, here you go."]
RUDE = ["No. Figure it out yourself.", "That is a stupid question.", "Go away and stop asking."]


def polite_dataset(n: int = 120) -> FeedbackDataset:
    """Polite answers beat rude ones."""
    rows = [(f"Question {i}: can you help me with task {i}?", f"{POLITE[i % 3]} (task {i})", f"{RUDE[i % 3]} (task {i})")
            for i in range(n)]
    return preference_dataset("polite", rows)


@pytest.mark.parametrize("kind,ensemble", [("bt-mlp", 0), ("clf-lgbm", 0), ("bt-linear", 3)])
def test_fit_score_save_load(kind: str, ensemble: int, tmp_path: Path) -> None:
    ds = polite_dataset()
    model = RewardModel.create(kind, encoder="hashing:128", ensemble=ensemble, seed=1).fit(ds)
    prompts = ["Can you help me with my homework?"] * 2
    scores = model.score(prompts, ["Sure, happy to help with that.", "That is a stupid question."])
    assert scores[0] > scores[1]
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["encoder"]["spec"] == "hashing:128" and config["train"]["data_fingerprint"] == ds.fingerprint()
    loaded = RewardModel.load(tmp_path / "m")
    assert np.array_equal(loaded.score(prompts, ["a", "b"]), model.score(prompts, ["a", "b"]))
    stats = loaded.score_stats(prompts, ["a", "b"])
    assert tuple(stats) == STAT_KEYS  # one schema, single model or ensemble
    assert np.array_equal(stats["score"], loaded.score(prompts, ["a", "b"]))
    assert loaded.is_ensemble == bool(ensemble) and loaded.n_members == max(1, ensemble)


def test_loading_with_a_different_encoder_is_refused(tmp_path: Path) -> None:
    RewardModel.create("bt-linear", encoder="hashing:64").fit(polite_dataset(40)).save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["encoder"]["fingerprint"] = "hashing-v0-something-else"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="meaningless"):
        RewardModel.load(tmp_path / "m")


def test_loading_a_non_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no config.json"):
        RewardModel.load(tmp_path)
