"""`score --annotator ID` and `score --distribution`: an annotator-aware model trained by `train`, scored by id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run

MAP = "prompt=prompt,a=a,b=b,label=label,annotator=annotator"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An annotator-aware model and a plain BT model, on 60 prompts labelled by 4 annotators (two prefer the short
    answer)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        good, bad = f"A careful, helpful answer number {i} with details.", f"short {i}"
        for j in range(4):
            first_good = rng.random() < 0.5
            a, b = (good, bad) if first_good else (bad, good)
            likes_long = j < 2
            rows.append({"prompt": f"question {i}?", "a": a, "b": b,
                         "label": "a" if first_good == likes_long else "b", "annotator": f"ann{j}"})
    root = tmp_path_factory.mktemp("score")
    data = root / "labels.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    aware, plain = root / "aware", root / "plain"
    for head, out in (("bt-mlp-annotator", aware), ("bt-linear", plain)):
        code, output = run("train", str(data), "--out", str(out), "--head", head, "--encoder", "hashing:64", "--map",
                           MAP, "--quiet")
        assert code == 0, output
    return aware, plain


def score_one(model: Path, *options: str) -> tuple[int, str]:
    return run("score", "--model", str(model), "--prompt", "question 3?", "--response",
               "A careful, helpful answer number 3 with details.", *options)


def last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def test_score_as_an_annotator_and_as_the_population(models) -> None:
    aware, _ = models
    code, output = score_one(aware, "--annotator", "ann0")
    assert code == 0, output
    long_fan = last_json(output)["score"]
    code, output = score_one(aware, "--annotator", "ann3")
    assert code == 0, output
    assert long_fan != last_json(output)["score"]
    code, output = score_one(aware)
    assert code == 0, output
    population = last_json(output)["score"]
    code, output = score_one(aware, "--annotator", "stranger")
    assert code == 0, output
    assert "warning" in output and "stranger" in output and "population" in output
    assert last_json(output)["score"] == population


def test_distribution_over_annotators(models, tmp_path: Path) -> None:
    aware, _ = models
    code, output = score_one(aware, "--distribution")
    assert code == 0, output
    row = last_json(output)
    assert set(row) == {"score", "mean", "std", "q10", "q50", "q90"} and row["std"] > 0
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": "question 1?", "response": "short 1"}) + "\n"
                    + json.dumps({"prompt": "question 2?", "responses": ["short 2", "A careful answer."]}) + "\n")
    out = tmp_path / "out.jsonl"
    code, output = run("score", "--model", str(aware), "--input", str(rows), "--output", str(out), "--distribution",
                       "--annotator", "ann1")
    assert code == 0, output
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert {"reward", "reward_mean", "reward_std", "reward_q10", "reward_q50", "reward_q90"} <= set(first)
    assert len(second["rewards"]) == 2 and len(second["rewards_q90"]) == 2


def test_a_plain_model_is_a_clear_error(models) -> None:
    _, plain = models
    for option in (["--annotator", "ann0"], ["--distribution"]):
        code, output = score_one(plain, *option)
        assert code != 0 and "annotator-aware" in output and "bt-linear" in output, output
        assert "Traceback" not in output


def test_the_vocabulary_is_covered_by_the_model_digests(models, tmp_path: Path) -> None:
    import shutil

    from rewardlab.errors import ModelError
    from rewardlab.rewards.model import RewardModel

    aware, _ = models
    copy = tmp_path / "copy"
    shutil.copytree(aware, copy)
    assert RewardModel.load(copy).head.annotators == ["ann0", "ann1", "ann2", "ann3"]  # type: ignore[attr-defined]
    vocabulary = copy / "head" / "annotators.json"
    vocabulary.write_text(vocabulary.read_text().replace("ann0", "ann9"))
    with pytest.raises(ModelError, match="annotators.json"):
        RewardModel.load(copy)
