"""`rewardlab spans`: label → train → score → eval, and `rewardlab train` on span rows and on step labels, end to end on
a small QA-Feedback-like file with the hashing encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.data import FeedbackDataset
from rewardlab.data.parquet import write_parquet
from rewardlab.data.types import StepLabel


def qa_items(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Questions whose first answer has an off-topic clause (relevance) and, sometimes, a made-up place
    (factuality), with a preference for the answer without errors."""
    rng = np.random.default_rng(seed)
    items = []
    for q in range(n):
        topic = f"topic{q}"
        good = f"The {topic} began in {1900 + q}, as the records show. It grew quickly after that year."
        off = "Meanwhile the weather in other news was quite pleasant, "
        answer = f"The {topic} began in {1900 + q}, as the records show. {off}it grew quickly on Mars."
        start = answer.index(off)
        errors = [{"error type": "Irrelevant", "explanation": "", "start": start, "end": start + len(off) - 2}]
        if rng.random() < 0.5:
            mars = answer.index("it grew quickly on Mars.")
            errors.append({"error type": "Unverifiable", "explanation": "", "start": mars, "end": len(answer)})
        items.append({"question": f"When did {topic} begin?", "passages": [[topic, f"The {topic} began in {1900 + q}."]],
                      "prediction 1": answer, "prediction 2": good, "prediction 3": good + " Indeed.",
                      "prediction 4": f"I do not know about {topic}.",
                      "preference": [2, 2, 1, 0, 1, 1], "feedback": {"errors": errors}})
    return items


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("qa") / "qa.json"
    path.write_text(json.dumps(qa_items(24)), encoding="utf-8")
    return path


def test_label_train_score(qa_file: Path, tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    code, output = run("spans", "label", str(qa_file), "--out", str(spans))
    assert code == 0, output
    assert "24 questions; relevance:" in output
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"relevance", "factuality"}
    assert any(r["label"] == 1 and r["text"].startswith("Meanwhile") for r in rows if r["kind"] == "relevance")

    model = tmp_path / "model"
    code, output = run("spans", "train", str(spans), "--out", str(model), "--encoder", "hashing", "-q")
    assert code == 0, output
    assert "trained outcome-logistic per kind on 24 questions" in output
    code, output = run("spans", "train", str(spans), "--out", str(model), "--encoder", "hashing", "-q")
    assert code == 2 and "--overwrite" in output

    answer = "The topic3 began in 1903, as the records show. Meanwhile the weather in other news was quite pleasant."
    code, output = run("spans", "score", str(model), "--prompt", "When did topic3 begin?", "--response", answer)
    assert code == 0, output
    assert "span error probabilities (reward" in output and "relevance" in output and "factuality" in output

    queries = tmp_path / "in.jsonl"
    queries.write_text(json.dumps({"prompt": "When did topic3 begin?", "response": answer}) + "\n", encoding="utf-8")
    code, output = run("spans", "score", str(model), "--input", str(queries), "--output", str(tmp_path / "o.jsonl"))
    assert code == 0, output
    record = json.loads((tmp_path / "o.jsonl").read_text())
    assert record["reward"] < 0 and {s["kind"] for s in record["spans"]} == {"relevance", "factuality"}
    assert all(0 <= s["probability"] <= 1 for s in record["spans"])
    code, output = run("spans", "score", str(model))
    assert code == 2 and "either --prompt and --response, or --input" in output


def test_train_command_learns_from_span_rows_and_step_labels(qa_file: Path, tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    assert run("spans", "label", str(qa_file), "--out", str(spans))[0] == 0
    code, output = run("train", str(spans), "--out", str(tmp_path / "span-model"), "--encoder", "hashing", "-q")
    assert code == 0, output
    assert "training a span reward model" in output
    assert json.loads((tmp_path / "span-model" / "config.json").read_text())["format"].startswith(
        "rewardlab.span_reward_model")
    code, output = run("train", str(spans), "--out", str(tmp_path / "x"), "--encoder", "hashing", "--ensemble", "3")
    assert code == 2 and "--ensemble applies to response-level reward models" in output

    dataset = FeedbackDataset("steps")
    for q in range(12):
        pid = dataset.add_prompt(f"Question {q}: what is 2 + {q}?")
        for slip in (0, 1):
            rid = dataset.add_response(pid, f"We add.\nSo 2 + {q} = {2 + q + slip}\nA: {2 + q + slip}")
            dataset.add(StepLabel(rid, 1, 0.0 if slip else 1.0))
    write_parquet(dataset, tmp_path / "steps")
    code, output = run("train", str(tmp_path / "steps"), "--out", str(tmp_path / "prm"), "--encoder", "hashing", "-q")
    assert code == 0, output
    assert "training a process reward model" in output
    assert json.loads((tmp_path / "prm" / "config.json").read_text())["format"].startswith("rewardlab.step_reward_model")


def test_eval_reports_detection_and_preferences(qa_file: Path, tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    code, output = run("spans", "eval", str(qa_file), "--encoder", "hashing", "--folds", "2", "--record", str(record))
    assert code == 0, output
    assert "| relevance | " in output and "| factuality | " in output and "span (length-weighted) minus BT" in output
    result = json.loads(record.read_text())
    relevance = next(row for row in result["detection"] if row["kind"] == "relevance")
    assert relevance["questions"] == 24 and relevance["auc"]["ci_low"] <= relevance["auc"]["value"]
    assert relevance["auc"]["value"] > 0.9  # the off-topic clause is planted in every first answer
    assert result["counts"]["decided_pairs"] == 24 * 5
    code, output = run("spans", "eval", str(qa_file), "--encoder", "hashing", "--folds", "1")
    assert code == 2 and "folds must be at least 2" in output
