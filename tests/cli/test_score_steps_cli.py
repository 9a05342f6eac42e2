"""`rewardlab score --model PRM --steps`: one reward per step and the aggregations, the same output as `steps score`;
a plain reward model with --steps is one clear error line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_helpers import run
from rewardlab.data import FeedbackDataset, Label
from rewardlab.data.step_labels import label_steps
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.step_rewards import StepRewardModel

SOLUTION = "She has 3 apples and buys 4 more\nSo 3 + 4 = <<3+4=7>>7 apples\nA: 7"


def additions(n: int) -> FeedbackDataset:
    """Addition questions, each with a right solution and one whose sum slips (so the checker flags it)."""
    dataset = FeedbackDataset("additions")
    for q in range(n):
        a, b = 2 + q % 17, 3 + q % 11
        pid = dataset.add_prompt(f"Question {q}: she has {a} apples and buys {b}. How many?")
        for total in (a + b, a + b + 1 + q % 3):
            text = f"She has {a} apples and buys {b} more\nSo {a} + {b} = <<{a}+{b}={total}>>{total} apples\nA: {total}"
            dataset.add(Label(dataset.add_response(pid, text), total == a + b))
    return dataset


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score_steps")
    labelled, _ = label_steps(additions(40), "line", use_outcome=True)
    StepRewardModel.create("outcome-logistic", "hashing:64", "response", "line", seed=0).fit(labelled).save(root / "prm")
    RewardModel.create("outcome-logistic", "hashing:64", "response", seed=0).fit(additions(40)).save(root / "plain")
    return {"prm": root / "prm", "plain": root / "plain"}


def test_score_steps_prints_each_step_and_the_aggregations(models: dict[str, Path]) -> None:
    code, output = run("score", "--model", str(models["prm"]), "--prompt", "How many apples?", "--response", SOLUTION,
                       "--steps")
    assert code == 0, output
    for step in SOLUTION.splitlines():
        assert step.split()[0] in output
    aggregations = dict(re.findall(r"(min|product|last|mean) (\d\.\d{3})", output))
    assert set(aggregations) == {"min", "product", "last", "mean"}
    probs = StepRewardModel.load(models["prm"]).step_probabilities(["How many apples?"], [SOLUTION])[0]
    assert len(probs) == 3
    assert float(aggregations["min"]) == pytest.approx(probs.min(), abs=5e-4)
    assert float(aggregations["last"]) == pytest.approx(probs[-1], abs=5e-4)
    # the same function as `rewardlab steps score`: the same text
    again = run("steps", "score", str(models["prm"]), "--prompt", "How many apples?", "--response", SOLUTION)
    assert again == (code, output)


def test_score_steps_with_a_plain_model_is_one_error_line(models: dict[str, Path]) -> None:
    code, output = run("score", "--model", str(models["plain"]), "--prompt", "q", "--response", "a\nb", "--steps")
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "not a step reward model" in lines[0], output


def test_score_steps_scores_one_solution_only(models: dict[str, Path], tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "q", "response": "a"}\n', encoding="utf-8")
    code, output = run("score", "--model", str(models["prm"]), "--input", str(rows), "--steps")
    assert code == 2 and "--steps scores one solution" in output


def test_score_without_steps_on_a_prm_says_to_add_it(models: dict[str, Path]) -> None:
    code, output = run("score", "--model", str(models["prm"]), "--prompt", "q", "--response", "a")
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "step reward model; score it with --steps" in lines[0], output
