"""The label-model heads from the command line: an ordinal head trained on a ratings file, Davidson beside BT in a
cross-validated comparison of pairs with ties, and both listed by `rewardlab heads` with what they learn from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.data import Comparison, FeedbackDataset, Rating
from rewardlab.data.parquet import write_parquet
from rewardlab.rewards.model import RewardModel

QUALITY = ["poor wrong confusing", "plain partial okay", "clear correct helpful"]


def _dataset(seed: int = 0) -> FeedbackDataset:
    """60 prompts × 3 answers whose words say how good they are: ratings 1/3/5 (noisy) and comparisons, a third
    of them ties."""
    rng = np.random.default_rng(seed)
    ds = FeedbackDataset("label-models-cli")
    for p in range(60):
        pid = ds.add_prompt(f"question number {p} about topic {p % 7}")
        ids = [ds.add_response(pid, f"{QUALITY[q]} answer {p} {q}") for q in range(3)]
        for q, rid in enumerate(ids):
            ds.add(Rating(rid, float(np.clip(1 + 2 * q + rng.integers(-1, 2), 1, 5)), (1.0, 5.0)))
        low, high = rng.choice(3, size=2, replace=False)
        outcome = "tie" if p % 3 == 0 else ("a" if high > low else "b")
        ds.add(Comparison(pid, ids[high], ids[low], outcome))
    return ds


@pytest.fixture(scope="module")
def feedback_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parquet(_dataset(), tmp_path_factory.mktemp("data") / "label-models")


def test_train_an_ordinal_head_on_ratings(feedback_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    code, output = run("train", str(feedback_dir), "--out", str(out), "--head", "ordinal-mlp", "--encoder", "hashing:64",
                       "--quiet")
    assert code == 0, output
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "ordinal-mlp" and config["head"]["objective"] == "ordinal"
    model = RewardModel.load(out)
    params = model.head.label_model_params()  # type: ignore[attr-defined]
    assert params["levels"] == [1.0, 2.0, 3.0, 4.0, 5.0] and len(params["thresholds"]) == 4
    x = model.featurize(["question number 1 about topic 1"] * 2, [QUALITY[2] + " answer", QUALITY[0] + " answer"])
    good, poor = model.head.expected_rating(x)  # type: ignore[attr-defined]
    assert 1 <= poor < good <= 5
    code, output = run("score", "--model", str(out), "--prompt", "question", "--response", QUALITY[2])
    assert code == 0 and "score" in json.loads(output.strip().splitlines()[-1])


def test_evaluate_davidson_beside_bt_on_comparisons_with_ties(feedback_dir: Path, tmp_path: Path) -> None:
    record = tmp_path / "eval.json"
    code, output = run("evaluate", str(feedback_dir), "--heads", "davidson-mlp,bt-mlp", "--folds", "3",
                       "--encoder", "hashing:64", "--record", str(record), "--quiet")
    assert code == 0, output
    assert "davidson-mlp" in output and "bt-mlp" in output
    learners = json.loads(record.read_text())["learners"]
    assert set(learners) >= {"davidson-mlp", "bt-mlp"}
    assert learners["davidson-mlp"]["metrics"]["accuracy"]["n"] == 40  # the decided pairs; ties are left out


def test_heads_lists_the_label_models() -> None:
    code, output = run("heads")
    assert code == 0
    for kind in ("davidson-mlp", "bt-strength-mlp", "pl-mlp", "ordinal-mlp"):
        assert kind in output
