"""Shared fixtures: an isolated embedding cache per test and the shared data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own embedding cache, so no test reads another's (or the user's) cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def shared_data() -> Path:
    path = Path(os.environ.get("REWARDLAB_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"shared data folder {path} is absent (set REWARDLAB_DATA_DIR); CI always has it")
    return path
