"""`evaluate --folds` is validated (issue 21): -1 printed a made-up 0.500, 0 divided by zero, 1000 on 60 pairs ran on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import run
from rewardlab.embed import HashingEncoder
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate import LearnerSpec, cross_validate
from synthetic import preference_dataset

ROWS = [(f"question {i}", f"a kind answer {i}", f"a rude answer {i}") for i in range(60)]


@pytest.mark.parametrize("k", [-1, 0, 1])
def test_fewer_than_two_folds_is_an_error(k: int) -> None:
    with pytest.raises(InvalidValueError, match="at least 2 folds"):
        cross_validate(preference_dataset("pairs", ROWS), [LearnerSpec("bt", "bt-linear")], HashingEncoder(16), k=k)


def test_more_folds_than_prompts_is_an_error_that_counts_them() -> None:
    with pytest.raises(InvalidValueError, match="60 distinct prompt") as info:
        cross_validate(preference_dataset("pairs", ROWS), [LearnerSpec("bt", "bt-linear")], HashingEncoder(16), k=1000)
    assert "1000 folds" in str(info.value) and "between 2 and 60" in str(info.value)


@pytest.mark.parametrize("folds", ["-1", "0", "1000"])
def test_the_cli_says_so_in_one_line(folds: str, tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "chosen": a, "rejected": b}) + "\n" for p, a, b in ROWS))
    code, output = run("evaluate", str(data), "--heads", "bt-linear", "--folds", folds, "--encoder", "hashing:16",
                       "--cache-dir", str(tmp_path / "cache"), "--quiet")
    assert code != 0
    assert "folds" in output and "Traceback" not in output and "0.500" not in output
