"""`evaluate --model`, `evaluate --folds` and `quickstart` show the length controls; `--predictions` writes per-pair
rows from which the record's numbers can be recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import demo_lines, run


@pytest.fixture(scope="module")
def small_hh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 200 rows of the bundled HH-RLHF demo file (row 87 has an empty final turn: skipped)."""
    path = tmp_path_factory.mktemp("data") / "hh200.jsonl"
    path.write_text("".join(demo_lines(200)), encoding="utf-8")
    return path


def _accuracy(rows: list[dict], learner: str) -> float:
    picked = [r for r in rows if r["learner"] == learner and r["target"] != 0.5]
    correct = [1.0 if r["score_a"] > r["score_b"] else 0.0 if r["score_a"] < r["score_b"] else 0.5 for r in picked]
    return float(np.mean([c if r["target"] == 1 else (1 - c if c != 0.5 else 0.5) for c, r in zip(correct, picked)]))


def test_evaluate_model_shows_length_controls_and_writes_predictions(small_hh: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    code, output = run("train", str(small_hh), "--out", str(model_dir), "--head", "bt-linear", "--encoder", "hashing:64",
                       "--on-empty", "skip", "--quiet")
    assert code == 0, output
    record, predictions = tmp_path / "eval.json", tmp_path / "pairs.jsonl"
    code, output = run("evaluate", str(small_hh), "--model", str(model_dir), "--record", str(record),
                       "--predictions", str(predictions), "--on-empty", "skip", "--quiet")
    assert code == 0, output
    assert "length controls" in output and "prefer longer" in output and "length-balanced" in output
    payload = json.loads(record.read_text())
    controls, audit = payload["length_controls"], payload["length"]
    assert controls["unit"] == "characters" and "cross-fitted" in controls["length_only_fit"]
    assert len(controls["length_only_weights"]) == 5
    assert controls["pairs_longer_wins"] + controls["pairs_shorter_wins"] + controls["pairs_equal_length_excluded"] == 199
    assert audit["length_balanced_accuracy"]["n"] == controls["pairs_longer_wins"] + controls["pairs_shorter_wins"]
    assert audit["spearman_reward_length"]["n_responses"] > 0
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 2 * 199 and {r["learner"] for r in rows} == {"model", "length-only"}
    first = rows[0]
    assert {"prompt_id", "a", "b", "score_a", "score_b", "target", "length_a", "length_b"} <= set(first)
    assert "fold" not in first and "fold" in rows[-1]  # the length-only rows name their cross-fitting fold
    assert _accuracy(rows, "model") == pytest.approx(payload["metrics"]["accuracy"]["value"])
    assert _accuracy(rows, "length-only") == pytest.approx(controls["length_only"]["value"])
    assert audit["accuracy_minus_length_only"]["value"] == pytest.approx(
        payload["metrics"]["accuracy"]["value"] - controls["length_only"]["value"])


def test_evaluate_folds_writes_per_fold_predictions(small_hh: Path, tmp_path: Path) -> None:
    record, predictions = tmp_path / "cv.json", tmp_path / "cv.jsonl"
    code, output = run("evaluate", str(small_hh), "--heads", "bt-linear,clf-logistic", "--folds", "3", "--encoder",
                       "hashing:64", "--record", str(record), "--predictions", str(predictions), "--on-empty", "skip",
                       "--quiet")
    assert code == 0, output
    assert "length controls" in output and "Δ vs length-only" in output
    payload = json.loads(record.read_text())
    controls = payload["length_controls"]
    assert "per fold" in controls["length_only_fit"] and len(controls["length_only_weights"]) == 3
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 3 * 199 and {r["fold"] for r in rows} == {0, 1, 2}
    for name, learner in payload["learners"].items():
        assert _accuracy(rows, name) == pytest.approx(learner["metrics"]["accuracy"]["value"])
        balanced = learner["length"]["length_balanced_accuracy"]
        split = (learner["length"]["accuracy_longer_wins"]["value"] + learner["length"]["accuracy_shorter_wins"]["value"])
        assert balanced["value"] == pytest.approx(split / 2)
        assert balanced["ci_low"] <= balanced["value"] <= balanced["ci_high"]
    assert _accuracy(rows, "length-only") == pytest.approx(controls["length_only"]["value"])


def test_quickstart_table_carries_length_controls(tmp_path: Path) -> None:
    code, output = run("quickstart", "--encoder", "hashing:64", "--limit", "120", "--folds", "2", "--runs", str(tmp_path),
                       "--quiet")
    assert code == 0, output
    assert "length controls" in output and "prefer shorter" in output
    (run_dir,) = list(tmp_path.iterdir())
    record = json.loads((run_dir / "record.json").read_text())
    assert record["length_controls"]["length_only"]["n"] == record["learners"]["BT-MLP"]["metrics"]["accuracy"]["n"]
    assert all(learner["length"] is not None for learner in record["learners"].values())
    assert "length controls" in (run_dir / "table.txt").read_text()
