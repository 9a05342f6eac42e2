"""`rewardlab steps`: label → train → score → select, and the GSM8K-style comparison, end to end on small data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.data import FeedbackDataset, Label
from rewardlab.data.parquet import read_parquet, write_parquet


def solution(rng: np.random.Generator, a: int, b: int, slip: bool) -> str:
    total = a + b + (int(rng.integers(1, 5)) if slip else 0)
    return f"She has {a} apples and buys {b} more\nSo {a} + {b} = <<{a}+{b}={total}>>{total} apples\nA: {total}"


def pools(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Addition questions, 4 solutions each; a solution with an arithmetic slip is the wrong one."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n):
        a, b = int(rng.integers(2, 50)), int(rng.integers(2, 50))
        slips = [bool(rng.random() < 0.5) for _ in range(4)]
        rows.append({"prompt": f"Question {q}: she has {a} apples and buys {b}. How many?",
                     "responses": [solution(rng, a, b, s) for s in slips], "gold": [float(not s) for s in slips]})
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("steps")
    rows = pools(40)
    candidates = root / "cands.jsonl"
    candidates.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset = FeedbackDataset("pools")
    for r in rows:
        pid = dataset.add_prompt(str(r["prompt"]))
        for text, gold in zip(r["responses"], r["gold"]):  # type: ignore[call-overload]
            dataset.add(Label(dataset.add_response(pid, text), bool(gold)))
    write_parquet(dataset, root / "data")
    return {"root": root, "candidates": candidates, "data": root / "data"}


def test_label_train_score_select(files: dict[str, Path]) -> None:
    root = files["root"]
    code, output = run("steps", "label", str(files["data"]), "--out", str(root / "labelled"))
    assert code == 0, output
    assert "first-error flags in 0 of" in output  # no correct solution is flagged: its arithmetic holds
    labelled = read_parquet(root / "labelled")
    assert {s.value for s in labelled.step_labels} == {0.0, 1.0}
    assert all(s.step == 1 for s in labelled.step_labels)  # only the arithmetic line is checked

    code, output = run("steps", "train", str(root / "labelled"), "--out", str(root / "prm"), "--encoder", "hashing:128",
                       "--features", "response", "--head", "outcome-lgbm", "--quiet")
    assert code == 0, output
    assert "step labels" in output and (root / "prm" / "config.json").is_file()

    code, output = run("steps", "score", str(root / "prm"), "--prompt", "q", "--response", "a\nb")
    assert code == 0, output
    assert "min" in output and "product" in output

    picks = root / "picks.jsonl"
    code, output = run("steps", "select", str(root / "prm"), str(files["candidates"]), "--output", str(picks),
                       "--aggregate-steps", "min", "--quiet")
    assert code == 0, output
    rows = [json.loads(line) for line in picks.read_text().splitlines()]
    assert len(rows) == 40 and all(len(r["step_rewards"]) == 3 and r["strategy"] == "steps:min" for r in rows)

    # the same picks through `rewardlab select --aggregate-steps`
    again = root / "picks_select.jsonl"
    code, output = run("select", str(root / "prm"), str(files["candidates"]), "--output", str(again),
                       "--aggregate-steps", "min", "--quiet")
    assert code == 0, output
    assert [json.loads(line) for line in again.read_text().splitlines()] == rows
    code, output = run("select", str(root / "prm"), str(files["candidates"]), "--output", str(again),
                       "--aggregate-steps", "max")
    assert code == 2 and "unknown step aggregation" in output


def test_bad_options_are_one_clean_line(files: dict[str, Path]) -> None:
    code, output = run("steps", "label", str(files["data"]), "--out", str(files["root"] / "x"), "--split", "word")
    assert code == 2 and "unknown step split" in output
    code, output = run("steps", "train", str(files["data"]), "--out", str(files["root"] / "y"), "--encoder",
                       "hashing:32", "--quiet")
    assert code == 2 and "no step labels" in output


def test_eval_compares_prm_orm_and_majority(files: dict[str, Path]) -> None:
    record = files["root"] / "prm.json"
    code, output = run("steps", "eval", str(files["candidates"]), "--encoder", "hashing:128", "--features", "response",
                       "--head", "outcome-lgbm", "--record", str(record))
    assert code == 0, output
    result = json.loads(record.read_text())
    accuracy = {k: v["value"] for k, v in result["accuracy"].items()}
    assert set(accuracy) >= {"random", "majority vote", "ORM", "oracle", "PRM[computation] min",
                             "PRM[computation+outcome] product"}
    # every slip is an arithmetic one the checker sees, and no correct solution is flagged: as a verifier it is
    # as good as the oracle, while the PRM (hashed words cannot add) has only the rows it was shown
    assert accuracy["step check"] == accuracy["oracle"] > accuracy["random"]
    assert all(0.0 <= v <= accuracy["oracle"] for v in accuracy.values())
    assert result["labeller"]["flag_rate_correct"]["value"] == 0.0
    assert result["minus_orm"]["random"]["n"] == result["questions"]["test"]
