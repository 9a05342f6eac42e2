"""Fine-grained span rows: a response cut into sentences or sub-sentence clauses, each labelled per error kind.

A span reward model learns P(this span has an error of kind K | prompt, response around it) from rows that say,
for one span of one response, whether it holds an error of one kind. Fine-Grained RLHF (Wu et al. 2023) used
two kinds of dense error labels on QA-Feedback, at two granularities: **relevance** (Irrelevant, Redundant,
Incoherent) on sub-sentences and **factuality** (Wrong-Grounding, Unverifiable) on sentences. Those are the
registered kinds (`ERROR_KINDS`); their granularity is a default that ``splits`` overrides.

Spans are character ranges of the response, so the left context of a span is an exact slice of it. ``sentence``
spans end after ``.``, ``!`` or ``?`` followed by a blank (as steps do); ``clause`` spans cut each sentence again
after ``,``, ``;`` or ``:`` followed by a blank. A span is labelled 1 (has an error of the kind) when an annotated
error span of one of the kind's types overlaps it by at least ``min_overlap`` of the shorter of the two: an
annotated clause inside a long sentence marks the sentence, and a long error that grazes a span's first word
does not.

**The span JSONL format** (what `read_span_jsonl` reads and `write_span_jsonl` writes), one span per line:

- ``prompt`` (text): what the response answers (for QA-Feedback: passages, then the question);
- ``response`` (text): the whole response the span is part of;
- ``start``, ``end`` (integers): the span is ``response[start:end]``, ``0 <= start < end <= len(response)``;
- ``kind`` (text, ``[a-z0-9_-]``): the error kind the label is about (any name: each kind gets its own output);
- ``label`` (0 or 1, or false/true): 1 when the span has an error of that kind;
- ``question_id`` (text, optional): the group for splits and CIs; by default the prompt's content id;
- ``text`` (text, optional): if given, it must equal ``response[start:end]`` (a check that offsets are right).

Two rows of one response and kind whose spans overlap are an error: the same characters labelled twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rewardlab.data.qa_feedback import _passages, passage_prompt
from rewardlab.data.records import get_field, iter_records, require_text
from rewardlab.data.types import prompt_id_for
from rewardlab.errors import DataError, InvalidValueError
from rewardlab.registry import Registry

#: the ways a response is cut into spans
SPAN_SPLITS = ("sentence", "clause")
#: the least overlap, as a share of the shorter of span and error, that makes a span an error of that kind
MIN_OVERLAP = 0.5
#: a clause shorter than this (in words) is joined to its neighbour
MIN_CLAUSE_WORDS = 4
KIND_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


class ErrorKind(NamedTuple):
    """A kind of error a span head has one output for: the annotated types it covers, and its default split."""

    error_types: tuple[str, ...]
    split: str


ERROR_KINDS: Registry[ErrorKind] = Registry("error kind", InvalidValueError)
ERROR_KINDS.register("relevance", ErrorKind(("Irrelevant", "Redundant", "Incoherent"), "clause"))
ERROR_KINDS.register("factuality", ErrorKind(("Wrong-Grounding", "Unverifiable"), "sentence"))


@dataclass(frozen=True)
class SpanRow:
    """One labelled span: ``response[start:end]`` has (label 1) or has not (0) an error of ``kind``."""

    question_id: str
    prompt: str
    response: str
    start: int
    end: int
    kind: str
    label: int

    @property
    def text(self) -> str:
        return self.response[self.start:self.end]


def check_split(by: str) -> None:
    if by not in SPAN_SPLITS:
        raise InvalidValueError(f"unknown span split {by!r}; known: {', '.join(SPAN_SPLITS)}")


def _stripped(text: str, a: int, b: int) -> tuple[int, int] | None:
    piece = text[a:b]
    if not piece.strip():
        return None
    return a + len(piece) - len(piece.lstrip()), b - (len(piece) - len(piece.rstrip()))


def _pieces(text: str, a: int, b: int, cut: re.Pattern[str]) -> list[tuple[int, int]]:
    bounds = [a] + [a + m.end() for m in cut.finditer(text[a:b])] + [b]
    return [span for x, y in zip(bounds, bounds[1:]) if (span := _stripped(text, x, y)) is not None]


def split_spans(text: str, by: str = "sentence") -> list[tuple[int, int]]:
    """The (start, end) of each span of ``text`` in order, stripped of blanks; together they cover every non-blank
    character. A blank text has none. A clause of fewer than `MIN_CLAUSE_WORDS` words joins the next one in its
    sentence (or the one before, at the sentence's end), so a list's items or an apposition stay in one span."""
    check_split(by)
    sentences = _pieces(text, 0, len(text), _SENTENCE_END)
    if by == "sentence":
        return sentences
    spans: list[tuple[int, int]] = []
    for a, b in sentences:
        merged: list[tuple[int, int]] = []
        pending = None
        for x, y in _pieces(text, a, b, _CLAUSE_END):
            x = pending if pending is not None else x
            pending = x if len(text[x:y].split()) < MIN_CLAUSE_WORDS else None
            if pending is None:
                merged.append((x, y))
        if pending is not None:
            merged = [*merged[:-1], (merged[-1][0] if merged else pending, b)]
        spans.extend(merged)
    return spans


def parse_splits(spec: str | None, kinds: Iterable[str] = ()) -> dict[str, str]:
    """``sentence`` / ``clause`` (every kind) or ``relevance=clause,factuality=sentence`` -> {kind: split}; kinds
    not named keep their registered default (``sentence`` for a kind that is not registered)."""
    names = list(dict.fromkeys([*ERROR_KINDS, *kinds]))
    splits = {k: ERROR_KINDS[k].split if k in ERROR_KINDS else "sentence" for k in names}
    if not spec:
        return splits
    if "=" not in spec:
        check_split(spec.strip())
        return {k: spec.strip() for k in names}
    for part in spec.split(","):
        kind, _, by = (s.strip() for s in part.partition("="))
        if not kind or not by:
            raise InvalidValueError(f"expected kind=split pairs like relevance=clause, got {part!r}")
        check_split(by)
        splits[kind] = by
    return splits


def overlap_labels(spans: Sequence[tuple[int, int]], errors: Sequence[tuple[int, int]],
                   min_overlap: float = MIN_OVERLAP) -> list[int]:
    """1 for each span that some error range overlaps by ``min_overlap`` of the shorter of the two, else 0."""
    if not 0.0 < min_overlap <= 1.0:
        raise InvalidValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    labels = []
    for a, b in spans:
        hit = any(min(b, e) - max(a, s) >= min_overlap * min(b - a, e - s) and min(b, e) > max(a, s)
                  for s, e in errors)
        labels.append(int(hit))
    return labels


# ---------------------------------------------------------------------- QA-Feedback
def _error_spans(record: dict[str, Any], response: str, *, source: str, row: int) -> list[tuple[str, int, int]]:
    """(type, start, end) of each annotated error of ``prediction 1``, checked: known type, range inside the
    response, no overlap with another error of the same kind."""
    errors = get_field(record, "feedback.errors", source=source, row=row)
    if not isinstance(errors, list):
        raise DataError(f"expected a list of errors, got {type(errors).__name__}", source=source, row=row,
                        field="feedback.errors")
    kind_of = {t: kind for kind, entry in ERROR_KINDS.items() for t in entry.error_types}
    found: list[tuple[str, int, int]] = []
    for index, error in enumerate(errors):
        where = f"feedback.errors[{index}]"
        if not isinstance(error, dict):
            raise DataError(f"expected an object, got {type(error).__name__}", source=source, row=row, field=where)
        kind = error.get("error type")
        if kind not in kind_of:
            raise DataError(f"unknown error type {kind!r}; known: {', '.join(kind_of)}", source=source, row=row,
                            field=f"{where}.error type")
        start, end = (_offset(error.get(key), source=source, row=row, field=f"{where}.{key}") for key in ("start", "end"))
        _check_range(start, end, len(response), source=source, row=row, field=where, what="prediction 1")
        found.append((kind, start, end))
    by_kind = sorted(found, key=lambda e: (kind_of[e[0]], e[1]))
    for (t1, s1, e1), (t2, s2, e2) in zip(by_kind, by_kind[1:]):
        if kind_of[t1] == kind_of[t2] and s2 < e1:
            raise DataError(f"error spans {s1}-{e1} ({t1}) and {s2}-{e2} ({t2}) overlap: the same characters marked "
                            "twice for one kind", source=source, row=row, field="feedback.errors")
    return found


def _offset(value: Any, *, source: str, row: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"expected a character offset (integer), got {value!r}", source=source, row=row, field=field)
    return value


def _check_range(start: int, end: int, length: int, *, source: str, row: int, field: str, what: str) -> None:
    if not 0 <= start < end <= length:
        raise DataError(f"span {start}-{end} is not inside the {length} characters of {what} "
                        "(need 0 <= start < end <= length)", source=source, row=row, field=field)


def qa_feedback_spans(path: str | Path, splits: str | dict[str, str] | None = None, min_overlap: float = MIN_OVERLAP,
                      limit: int | None = None) -> list[SpanRow]:
    """Span rows of QA-Feedback's ``prediction 1`` (the only answer with error spans), every span of every kind.

    A question without a ``feedback.errors`` list is left out (nothing says its spans are clean); an empty list
    means no error, so every span is a 0. Prompts are `passage_prompt`, as `read_qa_feedback` makes them.
    """
    source = str(path)
    by_kind = splits if isinstance(splits, dict) else parse_splits(splits)
    for by in by_kind.values():
        check_split(by)
    rows: list[SpanRow] = []
    for row, record in iter_records(path, limit):
        feedback = record.get("feedback")
        if not isinstance(feedback, dict) or "errors" not in feedback:
            continue
        question = require_text(get_field(record, "question", source=source, row=row), source=source, row=row,
                                field="question")
        prompt = passage_prompt(question, _passages(get_field(record, "passages", source=source, row=row),
                                                    source=source, row=row))
        response = require_text(get_field(record, "prediction 1", source=source, row=row), source=source, row=row,
                                field="prediction 1")
        errors = _error_spans(record, response, source=source, row=row)
        qid = prompt_id_for(prompt)
        for kind, by in by_kind.items():
            types = ERROR_KINDS[kind].error_types if kind in ERROR_KINDS else ()
            spans = split_spans(response, by)
            labels = overlap_labels(spans, [(s, e) for t, s, e in errors if t in types], min_overlap)
            rows.extend(SpanRow(qid, prompt, response, a, b, kind, y) for (a, b), y in zip(spans, labels))
    return rows


# ---------------------------------------------------------------------- the JSONL format
def _span_row(record: dict[str, Any], *, source: str, row: int) -> SpanRow:
    prompt, response = (require_text(get_field(record, f, source=source, row=row), source=source, row=row, field=f)
                        for f in ("prompt", "response"))
    start, end = (_offset(get_field(record, f, source=source, row=row), source=source, row=row, field=f)
                  for f in ("start", "end"))
    _check_range(start, end, len(response), source=source, row=row, field="start", what="the response")
    kind = get_field(record, "kind", source=source, row=row)
    if not isinstance(kind, str) or not KIND_NAME.fullmatch(kind):
        raise DataError(f"expected a kind name of lower-case letters, digits, '-' or '_', got {kind!r}", source=source,
                        row=row, field="kind")
    label = get_field(record, "label", source=source, row=row)
    if label not in (0, 1) or isinstance(label, float):
        raise DataError(f"expected 0 or 1 (1 = the span has an error of this kind), got {label!r}", source=source,
                        row=row, field="label")
    text = record.get("text")
    if text is not None and text != response[start:end]:
        raise DataError(f"text {text[:60]!r} is not response[{start}:{end}] ({response[start:end][:60]!r}); are the "
                        "offsets right?", source=source, row=row, field="text")
    qid = record.get("question_id", prompt_id_for(prompt))
    if not isinstance(qid, str) or not qid:
        raise DataError(f"expected a non-empty text id, got {qid!r}", source=source, row=row, field="question_id")
    return SpanRow(qid, prompt, response, start, end, kind, int(label))


def check_no_overlap(rows: Sequence[SpanRow], source: str, row_numbers: Sequence[int] | None = None) -> None:
    """A `DataError` naming the later row when two spans of one response and kind overlap."""
    numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(rows) + 1))
    order = sorted(range(len(rows)), key=lambda i: (rows[i].prompt, rows[i].response, rows[i].kind, rows[i].start))
    for i, j in zip(order, order[1:]):
        a, b = rows[i], rows[j]
        if (a.prompt, a.response, a.kind) == (b.prompt, b.response, b.kind) and b.start < a.end:
            raise DataError(f"span {b.start}-{b.end} overlaps span {a.start}-{a.end} (row {numbers[i]}) of the same "
                            f"response and kind {a.kind!r}", source=source, row=numbers[j], field="start")


def read_span_jsonl(path: str | Path, limit: int | None = None) -> list[SpanRow]:
    """Span rows from a file in the span JSONL format (module docstring); any bad row is a `DataError` naming it."""
    source = str(path)
    rows, numbers = [], []
    for row, record in iter_records(path, limit):
        rows.append(_span_row(record, source=source, row=row))
        numbers.append(row)
    if not rows:
        raise DataError("no span rows", source=source)
    check_no_overlap(rows, source, numbers)
    return rows


def write_span_jsonl(rows: Iterable[SpanRow], path: str | Path) -> Path:
    """``rows`` in the span JSONL format (with ``text``, for checking), written aside and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for r in rows:
            handle.write(json.dumps({**asdict(r), "text": r.text}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def is_span_file(path: str | Path) -> bool:
    """Whether ``path`` is a JSONL file whose first record has the span format's fields (for commands that take
    either feedback or span rows)."""
    path = Path(path)
    if not path.is_file() or not path.name.endswith((".jsonl", ".jsonl.gz")):
        return False
    try:
        first = next(iter_records(path, 1), None)
    except DataError:
        return False
    return first is not None and {"response", "start", "end", "kind", "label"} <= set(first[1])
