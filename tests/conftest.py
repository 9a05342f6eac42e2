"""Shared fixtures: an isolated embedding cache per test and the shared data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built ONNX encoders, shared by the whole session: a build takes seconds, so tests build once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, built_models_dir: Path) -> Path:
    """Every test gets its own embedding cache, so no test reads another's (or the user's) cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(cache))
    monkeypatch.setenv("REWARDLAB_MODELS_DIR", str(built_models_dir))
    return cache


@pytest.fixture
def shared_data() -> Path:
    path = Path(os.environ.get("REWARDLAB_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.exists():
        pytest.skip(f"shared data folder {path} is absent (set REWARDLAB_DATA_DIR); CI always has it")
    return path
