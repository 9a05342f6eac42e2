"""`rewardlab score --objectives` prints one column per objective beside the reward; `--weights` re-scalarizes it; an
unknown objective, a plain model or a malformed weight is one clear error line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.objective_labels import create_model, fit_model
from synthetic import objective_labelled

NAMES = ["relevance", "factuality"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score_objectives")
    fit_model(create_model("hashing:64", "interaction", objectives=NAMES, hidden=16, max_epochs=20), objective_labelled(40)) \
        .save(root / "mo")
    RewardModel.create("bt-linear", "hashing:64", "response").fit(objective_labelled(20)).save(root / "plain")
    return {"mo": root / "mo", "plain": root / "plain"}


def score(*args: str) -> tuple[int, str]:
    return run("score", "--prompt", "question 3 about topic 3", "--response", "grounded answer 3", *args)


def test_objectives_print_one_column_each_beside_the_models_reward(models: dict[str, Path]) -> None:
    code, output = score("--model", str(models["mo"]), "--objectives")
    assert code == 0, output
    row = json.loads(output)
    assert list(row) == ["score", *NAMES]
    model = RewardModel.load(models["mo"])
    x = model.featurize(["question 3 about topic 3"], ["grounded answer 3"])
    logits = model.head.predict_objectives(x)[0]
    assert [row[name] for name in NAMES] == pytest.approx(logits.tolist(), abs=1e-6)
    assert row["score"] == pytest.approx(float(model.head.predict(x)[0]), abs=1e-6)
    plain_code, plain = score("--model", str(models["mo"]))
    assert plain_code == 0 and json.loads(plain) == {"score": row["score"]}


def test_weights_rescalarize_the_reward(models: dict[str, Path]) -> None:
    _, output = score("--model", str(models["mo"]), "--objectives")
    logits = json.loads(output)
    code, output = score("--model", str(models["mo"]), "--weights", "relevance=1, factuality=2")
    assert code == 0, output
    assert json.loads(output)["score"] == pytest.approx(logits["relevance"] + 2 * logits["factuality"], abs=1e-5)
    _, only = score("--model", str(models["mo"]), "--weights", "factuality=-0.5", "--objectives")
    assert json.loads(only)["score"] == pytest.approx(-0.5 * logits["factuality"], abs=1e-5)


def test_weights_score_a_file_of_rows(models: dict[str, Path], tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"question {q}", "response": f"grounded answer {q}"}) + "\n"
                            for q in range(3)), encoding="utf-8")
    code, output = run("score", "--model", str(models["mo"]), "--input", str(rows), "--objectives", "--weights",
                       "relevance=2")
    assert code == 0, output
    scored = [json.loads(line) for line in output.splitlines()]
    assert len(scored) == 3
    for row in scored:
        assert set(row) == {"prompt", "response", "reward", "reward_relevance", "reward_factuality"}
        assert row["reward"] == pytest.approx(2 * row["reward_relevance"], abs=1e-5)
    assert len({row["reward"] for row in scored}) == 3 and np.isfinite([r["reward"] for r in scored]).all()


@pytest.mark.parametrize(("args", "message"), [
    (("--weights", "relevance=1,honesty=2"),
     "unknown objective 'honesty' in --weights; this model's objectives: relevance, factuality"),
    (("--weights", "relevance"), "--weights takes name=number pairs"),
    (("--weights", "relevance=much"), "not a number"),
    (("--weights", "relevance=1,relevance=2"), "weighted twice"),
    (("--objectives", "--annotator", "ann1"), "do not combine"),
])
def test_bad_weights_are_one_error_line(models: dict[str, Path], args: tuple[str, ...], message: str) -> None:
    code, output = score("--model", str(models["mo"]), *args)
    assert code != 0 and message in " ".join(output.split()) and "Traceback" not in output


def test_a_plain_model_with_objectives_is_one_error_line(models: dict[str, Path]) -> None:
    code, output = score("--model", str(models["plain"]), "--objectives")
    assert code != 0 and "needs a multi-objective reward model" in " ".join(output.split())
    assert "'bt-linear'" in output


def test_train_learns_the_objectives_a_dataset_names_and_score_prints_them(shared_data: Path, tmp_path: Path) -> None:
    code, output = run("train", "qa-feedback-objectives", "--head", "multi-objective", "--encoder", "hashing:64",
                       "--limit", "30", "--out", str(tmp_path / "mo"), "--quiet")
    assert code == 0, output
    assert "relevance 30, factuality 30, completeness 30" in " ".join(output.split())
    model = RewardModel.load(tmp_path / "mo")
    assert model.head.objective_names == ["relevance", "factuality", "completeness"]
    assert model.head.scalarization == "gated" and model.train_info["data_summary"]["ratings"] == 90
    code, output = run("score", "--model", str(tmp_path / "mo"), "--prompt", "Question: who?", "--response", "Me.",
                       "--objectives")
    assert code == 0 and list(json.loads(output)) == ["score", "relevance", "factuality", "completeness"]


@pytest.mark.parametrize(("args", "message"), [
    ((), "no rating names an objective"),
    (("--ensemble", "3"), "--ensemble does not apply to a multi-objective model"),
])
def test_train_without_objective_labels_or_with_plain_options_is_one_error(tmp_path: Path, args: tuple[str, ...],
                                                                           message: str) -> None:
    code, output = run("train", "hh-harmless-demo", "--limit", "20", "--head", "multi-objective", "--encoder",
                       "hashing:64", "--out", str(tmp_path / "m"), "--quiet", *args)
    assert code != 0 and message in " ".join(output.split()) and "Traceback" not in output
