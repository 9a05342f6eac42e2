"""Fixtures for the data-layer tests: where the shared research data is, and the real HH-RLHF dataset.

The shared data folder comes from ``REWARDLAB_DATA_DIR`` or, by default, ``../shared/data`` next to the
repository root. Tests that need it skip (with the path they looked at) when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rewardlab.data import FeedbackDataset, read_hh_rlhf

REPO_ROOT = Path(__file__).resolve().parents[2]

HH_FILE = "hh-rlhf-harmless-base-test/test.jsonl.gz"
ALPACA_FILE = "alpaca-eval-weighted-gpt4-turbo/annotations_weighted_gpt4_turbo.jsonl.gz"
GSM8K_SOLUTIONS_FILE = "gsm8k/example_model_solutions.jsonl.gz"


def _shared_data_dir() -> Path:
    env = os.environ.get("REWARDLAB_DATA_DIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data").resolve()


def _shared_file(relative: str) -> Path:
    path = _shared_data_dir() / relative
    if not path.exists():
        pytest.skip(
            f"shared research data not found at {path}; set REWARDLAB_DATA_DIR to the shared data folder "
            "(default: ../shared/data next to the repository)"
        )
    return path


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared research data folder not found at {path}; set REWARDLAB_DATA_DIR to use it")
    return path


@pytest.fixture(scope="session")
def hh_path() -> Path:
    return _shared_file(HH_FILE)


@pytest.fixture(scope="session")
def alpaca_path() -> Path:
    return _shared_file(ALPACA_FILE)


@pytest.fixture(scope="session")
def gsm8k_solutions_path() -> Path:
    return _shared_file(GSM8K_SOLUTIONS_FILE)


@pytest.fixture(scope="session")
def hh_dataset(hh_path: Path) -> FeedbackDataset:
    """The real HH-RLHF harmless-base test split, read once (do not mutate it in tests)."""
    return read_hh_rlhf(hh_path, on_empty="skip")
