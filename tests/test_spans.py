"""Span rows: cutting responses into sentences and clauses, labelling them by overlap with annotated error spans
(QA-Feedback), the span JSONL format, and a clear error for every bad span."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewardlab.data.qa_feedback import passage_prompt
from rewardlab.data.spans import (
    SpanRow,
    is_span_file,
    overlap_labels,
    parse_splits,
    qa_feedback_spans,
    read_span_jsonl,
    split_spans,
    write_span_jsonl,
)
from rewardlab.data.types import prompt_id_for
from rewardlab.errors import DataError, InvalidValueError

ANSWER = ("Bloom is the second album by Troye Sivan, released on 31 August 2018 through EMI. "
          "The title track, a song about desire, was released in May. It sold well in Mars and on the Moon.")


def test_spans_cover_the_text_exactly() -> None:
    for by in ("sentence", "clause"):
        spans = split_spans(ANSWER, by)
        assert all(ANSWER[a:b] == ANSWER[a:b].strip() and a < b for a, b in spans)
        covered = "".join(ANSWER[a:b] for a, b in spans).replace(" ", "")
        assert covered == ANSWER.replace(" ", "")
    assert [ANSWER[a:b] for a, b in split_spans(ANSWER, "sentence")][1] == \
        "The title track, a song about desire, was released in May."
    clauses = [ANSWER[a:b] for a, b in split_spans(ANSWER, "clause")]
    # "The title track," has 3 words: it joins the clause after it
    assert clauses[:4] == ["Bloom is the second album by Troye Sivan,",
                           "released on 31 August 2018 through EMI.",
                           "The title track, a song about desire,", "was released in May."]
    assert split_spans("   ", "clause") == []
    with pytest.raises(InvalidValueError, match="unknown span split"):
        split_spans(ANSWER, "word")


def test_overlap_labels() -> None:
    spans = [(0, 10), (11, 40), (41, 50)]
    # an error inside the long span marks it; one grazing the first span's last char does not
    assert overlap_labels(spans, [(20, 30)]) == [0, 1, 0]
    assert overlap_labels(spans, [(9, 12)]) == [0, 0, 0]  # 1 char of 3 in each: under half of the shorter
    assert overlap_labels(spans, [(5, 48)]) == [1, 1, 1]
    assert overlap_labels(spans, [(5, 45)]) == [1, 1, 0]  # 4 of the last span's 9 chars
    assert overlap_labels(spans, [(9, 12)], min_overlap=0.3) == [1, 1, 0]  # 1 of the error's 3 chars in each
    assert overlap_labels(spans, []) == [0, 0, 0]


def test_parse_splits() -> None:
    assert parse_splits(None) == {"relevance": "clause", "factuality": "sentence"}
    assert parse_splits("sentence") == {"relevance": "sentence", "factuality": "sentence"}
    assert parse_splits("factuality=clause", ["tone"]) == {"relevance": "clause", "factuality": "clause",
                                                            "tone": "sentence"}
    with pytest.raises(InvalidValueError):
        parse_splits("relevance=word")


def qa_item(errors: list[dict[str, Any]] | None, answer: str = ANSWER) -> dict[str, Any]:
    item: dict[str, Any] = {"question": "When did Bloom come out?", "passages": [["Bloom", "Bloom is an album."]],
                            "prediction 1": answer, "prediction 2": "b", "prediction 3": "c", "prediction 4": "d",
                            "preference": [1, 1, 1, 0, 0, 0]}
    if errors is not None:
        item["feedback"] = {"errors": errors, "missing-info": [], "corrected-prediction": ""}
    return item


def write_items(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def error(kind: str, text: str) -> dict[str, Any]:
    start = ANSWER.index(text)
    return {"error type": kind, "explanation": "", "start": start, "end": start + len(text)}


def test_qa_feedback_labels_by_overlap(tmp_path: Path) -> None:
    path = write_items(tmp_path / "qa.json", [
        qa_item([error("Irrelevant", "a song about desire,"), error("Unverifiable", "It sold well in Mars")]),
        qa_item(None),  # no feedback: nothing says its spans are clean, so it gives no rows
        qa_item([], "A clean answer. Nothing wrong here at all."),
    ])
    rows = qa_feedback_spans(path)
    prompt = passage_prompt("When did Bloom come out?", [["Bloom", "Bloom is an album."]])
    assert {r.question_id for r in rows} == {prompt_id_for(prompt)} and all(r.prompt == prompt for r in rows)
    first = [r for r in rows if r.response == ANSWER]
    relevance = [(r.text, r.label) for r in first if r.kind == "relevance"]
    factuality = [(r.text, r.label) for r in first if r.kind == "factuality"]
    assert [label for _, label in relevance] == [0, 0, 1, 0, 0]
    assert relevance[2][0] == "The title track, a song about desire,"
    assert [label for _, label in factuality] == [0, 0, 1]
    clean = [r for r in rows if r.response != ANSWER]
    assert clean and all(r.label == 0 for r in clean)
    assert {r.kind for r in clean} == {"relevance", "factuality"}
    # one split for every kind
    sentences = split_spans(ANSWER, "sentence")
    assert [(r.start, r.end) for r in qa_feedback_spans(path, "sentence") if r.response == ANSWER] == sentences * 2


@pytest.mark.parametrize(("bad", "field", "message"), [
    ({"error type": "Boring", "start": 0, "end": 5}, "feedback.errors[0].error type", "unknown error type"),
    ({"error type": "Irrelevant", "start": 5, "end": 5000}, "feedback.errors[0]", "not inside"),
    ({"error type": "Irrelevant", "start": 9, "end": 3}, "feedback.errors[0]", "not inside"),
    ({"error type": "Irrelevant", "start": "3", "end": 9}, "feedback.errors[0].start", "integer"),
    ({"error type": "Irrelevant", "start": True, "end": 9}, "feedback.errors[0].start", "integer"),
    ("oops", "feedback.errors[0]", "expected an object"),
])
def test_bad_error_spans_name_file_row_field(tmp_path: Path, bad: Any, field: str, message: str) -> None:
    path = write_items(tmp_path / "qa.json", [qa_item([]), qa_item([bad])])
    with pytest.raises(DataError, match=message) as caught:
        qa_feedback_spans(path)
    assert (caught.value.source, caught.value.row, caught.value.field) == (str(path), 2, field)


def test_overlapping_errors_of_one_kind_are_refused(tmp_path: Path) -> None:
    overlapping = [{"error type": "Irrelevant", "start": 0, "end": 20}, {"error type": "Redundant", "start": 10,
                                                                          "end": 30}]
    path = write_items(tmp_path / "qa.json", [qa_item(overlapping)])
    with pytest.raises(DataError, match="overlap") as caught:
        qa_feedback_spans(path)
    assert caught.value.row == 1 and caught.value.field == "feedback.errors"
    # the same characters marked for two kinds are two statements, not a contradiction
    across = [{"error type": "Irrelevant", "start": 0, "end": 20}, {"error type": "Unverifiable", "start": 10,
                                                                     "end": 30}]
    assert qa_feedback_spans(write_items(tmp_path / "ok.json", [qa_item(across)]))


def span_record(**changes: Any) -> dict[str, Any]:
    record = {"question_id": "q1", "prompt": "Q?", "response": "One part. Two part.", "start": 0, "end": 9,
              "kind": "relevance", "label": 1, "text": "One part."}
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_span_jsonl_round_trip(tmp_path: Path) -> None:
    rows = [SpanRow("q1", "Q?", "One part. Two part.", 0, 9, "relevance", 1),
            SpanRow("q1", "Q?", "One part. Two part.", 10, 19, "relevance", 0),
            SpanRow("q2", "P?", "Another answer.", 0, 15, "tone", 0)]
    path = write_span_jsonl(rows, tmp_path / "spans.jsonl")
    assert read_span_jsonl(path) == rows and is_span_file(path)
    assert json.loads(path.read_text().splitlines()[0])["text"] == "One part."
    # question_id and text are optional: the prompt's content id stands in
    minimal = read_span_jsonl(write_jsonl(tmp_path / "min.jsonl", [span_record(question_id=None, text=None)]))
    assert minimal[0].question_id == prompt_id_for("Q?")
    assert not is_span_file(write_jsonl(tmp_path / "other.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}]))


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"label": 2}, "label", "0 or 1"),
    ({"label": 0.5}, "label", "0 or 1"),
    ({"end": 99}, "start", "not inside"),
    ({"start": -1}, "start", "not inside"),
    ({"text": "One part"}, "text", "offsets"),
    ({"kind": "Has Space"}, "kind", "kind name"),
    ({"response": "   "}, "response", "empty"),
    ({"start": None}, "start", "missing"),
])
def test_bad_span_rows_name_file_row_field(tmp_path: Path, changes: dict[str, Any], field: str, message: str) -> None:
    path = write_jsonl(tmp_path / "spans.jsonl", [span_record(), span_record(**{"start": 10, "end": 19,
                                                                                "text": "Two part.", **changes})])
    with pytest.raises(DataError, match=message) as caught:
        read_span_jsonl(path)
    assert (caught.value.source, caught.value.row, caught.value.field) == (str(path), 2, field)


def test_overlapping_span_rows_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "spans.jsonl", [span_record(), span_record(start=5, end=14, text=None, label=0)])
    with pytest.raises(DataError, match="overlaps span 0-9") as caught:
        read_span_jsonl(path)
    assert caught.value.row == 2
    other_kind = write_jsonl(tmp_path / "ok.jsonl", [span_record(), span_record(start=5, end=14, text=None,
                                                                                kind="factuality")])
    assert len(read_span_jsonl(other_kind)) == 2


def test_qa_feedback_spans_of_the_shared_data(shared_data: Path) -> None:
    rows = qa_feedback_spans(shared_data / "qa-feedback-finegrained-rlhf" / "dev_feedback.json.gz")
    assert len({r.question_id for r in rows}) == 500
    for kind in ("relevance", "factuality"):
        labels = [r.label for r in rows if r.kind == kind]
        assert 0 < sum(labels) < len(labels)
    assert all(r.text == r.response[r.start:r.end] and r.text.strip() == r.text for r in rows)
