"""Reader for the Vicuna-80 evaluation folder (FastChat's old ``eval/table``): GPT-4 reviews of answer pairs.

The folder holds ``question.jsonl`` (``question_id, text, category``), ``answer/*.jsonl`` (``answer_id, model_id,
question_id, text``) and ``review/**/*.jsonl``: each review scores ``answer1_id`` and ``answer2_id`` 1-10 as
``score [s1, s2]`` and explains why in ``text``. A review is one comparison, answer 1 as ``a``: ``a`` wins when
s1 > s2, ``b`` when s1 < s2, a tie when equal. The labels are an LLM judge's, not people's.

``annotator_id`` is the review's ``reviewer_id`` as written: the release uses two schemes for the same GPT-4 judge
configs (names such as ``gpt-4-0328-generic`` in some files, the numbers 1-3 of ``reviewer.jsonl``'s ``prompt_id``
in others), and this reader does not guess that they match. The critique, both scores, the question's category,
the review id and the review's file and row are in ``meta``. A response's ``source`` is its answer's ``model_id``.

Rows are numbered within each file and every error names that file; notes of skipped rows are per file too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import (
    EmptyTextError,
    SkippedRows,
    check_policies,
    get_field,
    iter_records,
    read_rows,
    require_text,
)
from rewardlab.data.types import Comparison, Outcome
from rewardlab.errors import DataError

#: the fields whose empty answer text ``on_empty="skip"`` leaves out (with the review that compares it)
RESPONSE_FIELDS = ("answer1_id", "answer2_id")

RowReader = Callable[[int, dict[str, Any]], None]
#: builds a file's row reader from the file's name and its skip counter
ReaderFor = Callable[[str, SkippedRows], RowReader]


@dataclass(frozen=True)
class _Answer:
    text: str
    model: str
    question_id: int
    source: str
    row: int


def _whole_number(value: Any, *, source: str, row: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"expected a whole number, got {value!r}", source=source, row=row, field=field)
    return value


def _identifier(value: Any, *, source: str, row: int, field: str) -> str:
    """An id written as text or a whole number (``reviewer_id`` is either in the release), as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return require_text(value, source=source, row=row, field=field)


def _outcome(value: Any, *, source: str, row: int) -> tuple[float, float, Outcome]:
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(s, bool) or not isinstance(s, int | float) for s in value)):
        raise DataError(f"expected two numbers [s1, s2], got {value!r}", source=source, row=row, field="score")
    s1, s2 = float(value[0]), float(value[1])
    return s1, s2, ("a" if s1 > s2 else "b" if s2 > s1 else "tie")


def _files(folder: Path, pattern: str) -> list[Path]:
    files = sorted(folder.glob(pattern))
    if not files:
        raise DataError(f"no files match {pattern!r} (expected FastChat's eval/table layout)", source=folder)
    return files


def read_vicuna80(folder: str | Path, limit: int | None = None, on_empty: str = "error",
                  on_error: str = "error") -> FeedbackDataset:
    """Every review under ``folder/review`` as a comparison of the two answers it scores (``limit`` counts reviews).

    An answer with empty text is kept out under ``on_empty="skip"`` with each review of it (counted in ``notes``);
    ``on_error="skip"`` passes over unreadable rows of any file, counted per file, and reviews that need them.
    """
    folder = Path(folder)
    check_policies(on_empty, on_error, folder)
    if not folder.is_dir():
        raise DataError("folder not found (expected the vicuna80-gpt4-reviews folder)", source=folder)
    dataset = FeedbackDataset(folder.name)
    questions: dict[int, tuple[str, str | None]] = {}
    answers: dict[str, _Answer] = {}

    def read_file(path: Path, read_row: ReaderFor, rows: int | None = None) -> int:
        skipped = SkippedRows()
        records = iter_records(path, rows, skipped.bad if on_error == "skip" else None)
        seen = 0

        def counted(row: int, record: dict[str, Any]) -> None:
            nonlocal seen
            seen += 1
            reader(row, record)

        reader = read_row(str(path), skipped)
        read_rows(records, counted, skipped=skipped, on_empty=on_empty, on_error=on_error,
                  response_fields=RESPONSE_FIELDS)
        dataset.notes.extend(skipped.notes(str(path)))
        return seen  # the records read, as ``iter_records`` counts them against ``rows``

    def question_reader(source: str, skipped: SkippedRows) -> RowReader:
        def read_row(row: int, record: dict[str, Any]) -> None:
            qid = _whole_number(get_field(record, "question_id", source=source, row=row), source=source, row=row,
                                field="question_id")
            text = require_text(get_field(record, "text", source=source, row=row), source=source, row=row,
                                field="text")
            category = record.get("category")
            if qid in questions:
                raise DataError(f"question_id {qid} appears twice", source=source, row=row, field="question_id")
            questions[qid] = (text, category if isinstance(category, str) else None)
        return read_row

    def answer_reader(source: str, skipped: SkippedRows) -> RowReader:
        def read_row(row: int, record: dict[str, Any]) -> None:
            answer_id = _identifier(get_field(record, "answer_id", source=source, row=row), source=source, row=row,
                                    field="answer_id")
            qid = _whole_number(get_field(record, "question_id", source=source, row=row), source=source, row=row,
                                field="question_id")
            model = require_text(get_field(record, "model_id", source=source, row=row), source=source, row=row,
                                 field="model_id")
            text = get_field(record, "text", source=source, row=row)
            if not isinstance(text, str):  # an empty answer is judged where a review uses it (on_empty)
                raise DataError(f"expected text, got {type(text).__name__}", source=source, row=row, field="text")
            if answer_id in answers:
                raise DataError(f"answer_id {answer_id!r} appears twice (also {answers[answer_id].source}, row "
                                f"{answers[answer_id].row})", source=source, row=row, field="answer_id")
            answers[answer_id] = _Answer(text, model, qid, source, row)
        return read_row

    def review_reader(source: str, skipped: SkippedRows) -> RowReader:
        def answer(record: dict[str, Any], field: str, qid: int, row: int) -> _Answer:
            answer_id = _identifier(get_field(record, field, source=source, row=row), source=source, row=row,
                                    field=field)
            if answer_id not in answers:
                raise DataError(f"no answer has answer_id {answer_id!r}", source=source, row=row, field=field)
            found = answers[answer_id]
            if found.question_id != qid:
                raise DataError(f"answer {answer_id!r} answers question {found.question_id}, not {qid}",
                                source=source, row=row, field=field)
            if not found.text.strip():
                raise EmptyTextError(f"answer {answer_id!r} ({found.source}, row {found.row}) is empty", source=source,
                                     row=row, field=field)
            return found

        def read_row(row: int, record: dict[str, Any]) -> None:
            qid = _whole_number(get_field(record, "question_id", source=source, row=row), source=source, row=row,
                                field="question_id")
            if qid not in questions:
                raise DataError(f"no question has question_id {qid}", source=source, row=row, field="question_id")
            first, second = (answer(record, field, qid, row) for field in RESPONSE_FIELDS)
            s1, s2, outcome = _outcome(get_field(record, "score", source=source, row=row), source=source, row=row)
            reviewer = _identifier(get_field(record, "reviewer_id", source=source, row=row), source=source, row=row,
                                   field="reviewer_id")
            critique = record.get("text")
            if critique is not None and not isinstance(critique, str):
                raise DataError(f"expected text, got {type(critique).__name__}", source=source, row=row, field="text")
            if first.text == second.text:
                skipped.add("review(s) whose two answers are identical", row)
                return
            question, category = questions[qid]
            pid = dataset.add_prompt(question)
            a, b = dataset.add_response(pid, first.text, first.model), dataset.add_response(pid, second.text,
                                                                                            second.model)
            meta = {"file": str(Path(source).relative_to(folder)), "row": row, "review_id": record.get("review_id"),
                    "category": category, "scores": [s1, s2], "critique": critique}
            dataset.add(Comparison(pid, a, b, outcome, annotator_id=reviewer, meta=meta))
        return read_row

    read_file(folder / "question.jsonl", question_reader)
    for path in _files(folder, "answer/*.jsonl"):
        read_file(path, answer_reader)
    remaining = limit
    for path in _files(folder, "review/**/*.jsonl"):
        if remaining is not None and remaining <= 0:
            break
        read = read_file(path, review_reader, remaining)
        remaining = None if remaining is None else remaining - read
    return dataset
