"""Vicuna-80 GPT-4 reviews: a folder of questions, answers and reviews read into comparisons with ties."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rewardlab.data.registry import load_named, shared_folders
from rewardlab.data.vicuna80 import read_vicuna80
from rewardlab.errors import DataError

FOLDER = "vicuna80-gpt4-reviews"


def write_jsonl(path: Path, rows: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")


def review(qid: int, first: str, second: str, score: Any, reviewer: Any = "gpt-4-0328-generic") -> dict[str, Any]:
    return {"review_id": f"r{qid}{first}{second}", "question_id": qid, "answer1_id": first, "answer2_id": second,
            "text": f"{score}\ncritique of {first} vs {second}", "score": score, "reviewer_id": reviewer,
            "metadata": {}}


def make_folder(root: Path, reviews: list[Any], llama_q2: str = "llama on two") -> Path:
    write_jsonl(root / "question.jsonl", [{"question_id": 1, "text": "How do I sleep better?", "category": "generic"},
                                         {"question_id": 2, "text": "Add 2 and 2.", "category": "math"}])
    write_jsonl(root / "answer" / "answer_llama.jsonl",
                [{"answer_id": "L1", "model_id": "llama-13b:v1", "question_id": 1, "text": "llama on one"},
                 {"answer_id": "L2", "model_id": "llama-13b:v1", "question_id": 2, "text": llama_q2}])
    write_jsonl(root / "answer" / "answer_vicuna.jsonl",
                [{"answer_id": "V1", "model_id": "vicuna-13b:x", "question_id": 1, "text": "vicuna on one"},
                 {"answer_id": "V2", "model_id": "vicuna-13b:x", "question_id": 2, "text": "4"}])
    write_jsonl(root / "review" / "vicuna" / "review_llama_vicuna.jsonl", reviews)
    return root


def test_reviews_become_comparisons_with_ties_reviewers_and_critiques(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "vicuna", [review(1, "L1", "V1", [7.0, 9.0]), review(2, "L2", "V2", [8, 8], 3),
                                               review(1, "V1", "L1", [9.0, 6.5])])
    dataset = read_vicuna80(folder)
    assert len(dataset.prompts) == 2 and len(dataset.responses) == 4 and not dataset.notes
    assert [c.outcome for c in dataset.comparisons] == ["b", "tie", "a"]
    assert [c.annotator_id for c in dataset.comparisons] == ["gpt-4-0328-generic", "3", "gpt-4-0328-generic"]
    first = dataset.comparisons[0]
    assert dataset.prompts[first.prompt_id].text == "How do I sleep better?"
    assert (dataset.responses[first.a].source, dataset.responses[first.b].source) == ("llama-13b:v1", "vicuna-13b:x")
    assert first.meta == {"file": "review/vicuna/review_llama_vicuna.jsonl", "row": 1, "review_id": "r1L1V1",
                          "category": "generic", "scores": [7.0, 9.0], "critique": "[7.0, 9.0]\ncritique of L1 vs V1"}
    assert len(read_vicuna80(folder, limit=2).comparisons) == 2


def test_a_bad_review_names_file_row_and_field_and_skip_counts_it(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "vicuna", [review(1, "L1", "V1", [7.0, 9.0]), review(1, "L1", "V2", [1, 2]),
                                               review(1, "L1", "V1", [8, "x"]), "{broken",
                                               review(2, "L2", "V2", [2, 9])], llama_q2=" ")
    reviews = folder / "review" / "vicuna" / "review_llama_vicuna.jsonl"
    with pytest.raises(DataError, match=r"review_llama_vicuna\.jsonl, row 2, field 'answer2_id': answer 'V2' answers "
                                        r"question 2, not 1") as raised:
        read_vicuna80(folder)
    assert raised.value.source == str(reviews) and raised.value.row == 2
    alone = read_vicuna80(folder, on_error="skip")  # without on_empty="skip" an empty answer is a bad row too
    assert "skipped 4 bad row(s)" in alone.notes[0]
    empty = make_folder(tmp_path / "empty", [review(2, "L2", "V2", [2, 9])], llama_q2=" ")
    with pytest.raises(DataError, match=r"row 1, field 'answer1_id': answer 'L2' \(.*answer_llama\.jsonl, row 2\) is "
                                        r"empty"):
        read_vicuna80(empty)
    dataset = read_vicuna80(folder, on_empty="skip", on_error="skip")
    assert [c.meta["row"] for c in dataset.comparisons] == [1]
    assert f"{reviews}: skipped 1 row(s) whose 'answer1_id' text is empty (rows 5)" in dataset.notes
    (bad,) = [note for note in dataset.notes if "bad row" in note]
    assert "skipped 3 bad row(s)" in bad and "row 2 field 'answer2_id'" in bad and "row 3 field 'score'" in bad


def test_a_missing_folder_or_answer_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folder not found"):
        read_vicuna80(tmp_path / "nowhere")
    folder = make_folder(tmp_path / "vicuna", [review(1, "L1", "V1", [7.0, 9.0])])
    for path in (folder / "answer").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"no files match 'answer/\*\.jsonl'"):
        read_vicuna80(folder)


def test_the_real_folder_by_name(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_data_dir / FOLDER).is_dir():
        pytest.skip(f"{FOLDER} not found under {shared_data_dir}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    dataset = load_named("vicuna80-reviews")  # skips, by default, the 4 reviews of llama-13b's empty answer
    assert dataset.name == "vicuna80-reviews" and len(dataset.prompts) == 80 and len(dataset.responses) == 559
    assert len(dataset.comparisons) == 1036 and len(dataset.notes) == 4
    assert Counter(c.outcome for c in dataset.comparisons) == {"a": 277, "b": 659, "tie": 100}
    assert {r.source for r in dataset.responses.values()} >= {"bard:20230327", "gpt-3.5-turbo:20230327"}
    with pytest.raises(DataError, match=r"row 74, field 'answer1_id'"):
        load_named("vicuna80-reviews", on_empty="error")
    folders = {folder.folder: folder.datasets for folder in shared_folders()}
    assert folders[FOLDER] == ("vicuna80-reviews",)
    assert folders["qa-feedback-finegrained-rlhf"] == ("qa-feedback", "qa-feedback-objectives")
