"""`rewardlab credit` end to end on a tiny model: JSONL and Parquet exports that sum to the reward, the heat-map page."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cli_helpers import run
from rewardlab.rewards.credit_export import read_token_credits
from rewardlab.rewards.model import RewardModel
from synthetic import preference_dataset

ROWS = [("Say something.", f"I saw a volcano near the {w}.", f"I saw a lamp near the {w}.")
        for w in ("lake", "school", "road", "garden", "house", "river")]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("credit-models")
    data = preference_dataset("volcano", ROWS)
    minilm = RewardModel.create("bt-linear", encoder="minilm").fit(data).save(root / "minilm")
    hashing = RewardModel.create("bt-linear", encoder="hashing:64").fit(data).save(root / "hashing")
    return {"minilm": minilm, "hashing": hashing}


def test_credit_a_file_to_parquet_with_a_heat_map(models: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in [
        {"prompt": "Hi", "response": "A volcano erupted.", "prompt_id": "q1", "response_id": "a"},
        {"prompt": "Hi", "response": "Look: <script>alert('x')</script>", "prompt_id": "q1", "response_id": "b"},
    ]) + "\n", encoding="utf-8")
    out, page = tmp_path / "credit.parquet", tmp_path / "credit.html"
    code, output = run("credit", "--model", str(models["minilm"]), "--data", str(data), "--out", str(out),
                       "--html", str(page), "--quiet")
    assert code == 0, output
    assert "credited 2 responses by attention" in output and "95% CI by prompt, n=2" in output
    rows = read_token_credits(out)
    assert [(r["prompt_id"], r["response_id"]) for r in rows] == [("q1", "a"), ("q1", "b")]
    for row in rows:
        assert math.fsum(row["rewards"]) == pytest.approx(row["reward"], abs=1e-9)
        assert row["method"] == "attention" and len(row["tokens"]) == len(row["offsets"]) == len(row["rewards"])
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and html.count('class="heatmap"') == 2


def test_credit_one_response_by_gradient_to_jsonl(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "one.jsonl"
    code, output = run("credit", "--model", str(models["minilm"]), "--prompt", "Hi", "--response",
                       "I saw a volcano.", "--method", "gradient", "--steps", "4", "--out", str(out), "--quiet")
    assert code == 0, output
    (row,) = read_token_credits(out)
    assert row["tokens"] == ["I", "saw", "a", "volcano", "."]
    assert math.fsum(row["rewards"]) == pytest.approx(row["reward"], abs=1e-9)
    assert row["tokens"][row["rewards"].index(max(row["rewards"]))] == "volcano"


def test_bad_requests_are_one_clean_line(models: dict[str, Path], tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    code, output = run("credit", "--model", str(models["hashing"]), "--prompt", "Hi", "--response", "ok", "--out", out)
    assert code == 2 and "hashing:64" in output and "Traceback" not in output
    code, output = run("credit", "--model", str(models["minilm"]), "--out", out)
    assert code == 2 and "give either --prompt and --response, or --data FILE" in output
    code, output = run("credit", "--model", str(models["minilm"]), "--prompt", "Hi", "--response", "ok",
                       "--out", str(tmp_path / "x.csv"))
    assert code == 2 and ".jsonl or .parquet" in output
