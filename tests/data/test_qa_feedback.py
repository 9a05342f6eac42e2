"""QA-Feedback (Fine-Grained RLHF): six pairwise human preferences per question, ties, corrections, row policies."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rewardlab.data.qa_feedback import read_qa_feedback
from rewardlab.data.registry import load_named
from rewardlab.errors import DataError

QA_FILE = "qa-feedback-finegrained-rlhf/dev_feedback.json.gz"


def item(question: str, preference: list[Any], **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "question": question,
        "passages": [["Title A", "Title A\n\nFirst sentence.", "Second sentence."], ["Title B", "Other text."]],
        "gold": "a reference answer",
        **{f"prediction {i}": f"{question} answer {i}" for i in range(1, 5)},
        "feedback": {"errors": [{"error type": "Irrelevant", "explanation": "", "start": 0, "end": 4}],
                     "missing-info": [], "corrected-prediction": f"{question} corrected"},
        "preference": preference,
    }
    record.update(changes)
    return record


def write(path: Path, items: list[Any]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(items, handle)
    return path


def test_six_comparisons_per_question_with_ties_and_the_correction(tmp_path: Path) -> None:
    path = write(tmp_path / "dev_feedback.json.gz", [item("q1", [1, 2, 0, 1, 1, 2]), item("q2", [2, 2, 2, 2, 2, 2])])
    dataset = read_qa_feedback(path)
    assert len(dataset.prompts) == 2 and len(dataset.responses) == 8 and len(dataset.comparisons) == 12
    assert Counter(c.outcome for c in dataset.comparisons) == {"a": 3, "b": 8, "tie": 1}
    first = dataset.comparisons[0]
    assert dataset.responses[first.a].text == "q1 answer 1" and dataset.responses[first.b].text == "q1 answer 2"
    assert [c.meta["pair"] for c in dataset.comparisons[:6]] == ["1v2", "1v3", "1v4", "2v3", "2v4", "3v4"]
    assert dataset.comparisons[2].outcome == "tie" and dataset.comparisons[2].meta == {"row": 1, "pair": "1v4"}
    prompt = dataset.prompts[first.prompt_id].text
    assert prompt == "Passages:\nTitle A: First sentence. Second sentence.\nTitle B: Other text.\n\nQuestion: q1"
    correction = dataset.corrections[0]
    assert correction.corrected_text == "q1 corrected" and correction.response_id == first.a
    assert correction.meta["errors"][0]["error type"] == "Irrelevant" and not dataset.notes
    bare = read_qa_feedback(path, passages=False)
    assert {p.text for p in bare.prompts.values()} == {"q1", "q2"}


def test_identical_predictions_are_one_response_and_their_pair_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "dev.json.gz", [item("q", [1, 1, 1, 0, 1, 1], **{"prediction 2": "q answer 1"})])
    dataset = read_qa_feedback(path)
    assert len(dataset.responses) == 3 and len(dataset.comparisons) == 5
    assert dataset.notes == [f"{path}: skipped 1 pair(s) whose two predictions are identical (rows 1)"]


def test_a_bad_row_names_file_row_and_field_and_skip_counts_it(tmp_path: Path) -> None:
    path = write(tmp_path / "dev.json.gz", [item("q1", [1, 1, 1, 1, 1, 1]), item("q2", [1, 3, 1, 1, 1, 1]),
                                             item("q3", [0, 0, 0, 0, 0, 0], **{"prediction 3": " "}),
                                             item("q4", [1, 1, 1, 1, 1])])
    with pytest.raises(DataError, match=r"dev\.json\.gz, row 2, field 'preference\[1\]'") as raised:
        read_qa_feedback(path)
    assert raised.value.source == str(path) and raised.value.row == 2
    alone = read_qa_feedback(path, on_error="skip")  # without on_empty="skip" an empty answer is a bad row too
    assert len(alone.comparisons) == 6 and "skipped 3 bad row(s)" in alone.notes[0]
    assert "row 3 field 'prediction 3': text is empty" in alone.notes[0]
    dataset = read_qa_feedback(path, on_empty="skip", on_error="skip")
    assert {p.text.split("Question: ")[-1] for p in dataset.prompts.values()} == {"q1"} and len(dataset.comparisons) == 6
    assert any("skipped 1 row(s) whose 'prediction 3' text is empty (rows 3)" in note for note in dataset.notes)
    assert any("skipped 2 bad row(s)" in note and "row 2 field 'preference[1]'" in note and "row 4 field 'preference'"
               in note for note in dataset.notes)


def test_the_real_file_by_name(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_data_dir / QA_FILE).exists():
        pytest.skip(f"{QA_FILE} not found under {shared_data_dir}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    dataset = load_named("qa-feedback")
    assert dataset.name == "qa-feedback" and not dataset.notes
    assert len(dataset.prompts) == 500 and len(dataset.responses) == 2000 and len(dataset.comparisons) == 3000
    assert Counter(c.outcome for c in dataset.comparisons) == {"a": 1577, "b": 1039, "tie": 384}  # as SOURCE.md says
    assert len(dataset.corrections) == 481 and not dataset.duplicate_prompts()
