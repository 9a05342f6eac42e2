"""Reward models for the service's tests: hashing encoders, so they train in milliseconds and score row by row."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardlab.rewards.model import RewardModel
from synthetic import preference_dataset

ROWS = [(f"question {i} about bread", f"thank you, here is a careful answer number {i} about bread", "no")
        for i in range(30)]
#: a few epochs at a high rate: the linear head has learned politeness by then, in a fraction of the default time
FAST = {"max_epochs": 20, "lr": 0.05}


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A single Bradley-Terry model and a 3-member ensemble, saved."""
    folder = tmp_path_factory.mktemp("served-models")
    data = preference_dataset("polite", ROWS)
    RewardModel.create("bt-linear", encoder="hashing:64", **FAST).fit(data).save(folder / "polite")
    RewardModel.create("bt-linear", encoder="hashing:64", ensemble=3, **FAST).fit(data).save(folder / "trio")
    return {"polite": folder / "polite", "trio": folder / "trio"}
