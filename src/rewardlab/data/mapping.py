"""Generic reader: any JSONL/CSV/Parquet file, with a mapping from rewardlab's fields to its columns.

``prompt=input,a=output_1,b=output_2,label=label`` reads a pairwise file whose columns are named
differently; nested fields use dots (``response=6b.solution``). Which feedback is produced follows from
the fields mapped: ``chosen``+``rejected`` or ``a``+``b``+``label`` give comparisons, ``response``+``rating``
gives ratings, ``response``+``correct`` gives correctness labels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import (
    SkippedRows,
    check_policies,
    dataset_title,
    get_field,
    iter_records,
    read_rows,
    require_text,
    show_value,
)
from rewardlab.data.types import Comparison, Label, Outcome, Rating
from rewardlab.errors import DataError

DEFAULT_LABEL_VALUES: dict[str, Outcome] = {
    "a": "a", "1": "a", "b": "b", "2": "b", "tie": "tie", "draw": "tie",
}
_TRUE = {"true", "1", "1.0", "yes", "y", "correct"}
_FALSE = {"false", "0", "0.0", "no", "n", "incorrect"}


@dataclass
class ColumnMapping:
    """Which column holds each rewardlab field. Unset fields are not read."""

    prompt: str
    chosen: str | None = None
    rejected: str | None = None
    a: str | None = None
    b: str | None = None
    label: str | None = None
    response: str | None = None
    rating: str | None = None
    correct: str | None = None
    annotator: str | None = None
    strength: str | None = None
    model: str | None = None
    #: label cell value (case-insensitive) -> outcome; defaults accept a/b/tie and 1/2
    label_values: dict[str, Outcome] = field(default_factory=lambda: dict(DEFAULT_LABEL_VALUES))

    @classmethod
    def parse(cls, spec: str, label_values: str | None = None) -> ColumnMapping:
        """Build from ``field=column,...`` (and ``1=a,2=b,0=tie`` for label values)."""
        known = {f.name for f in fields(cls)} - {"label_values"}
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            if "=" not in item:
                raise DataError(f"mapping entry {item!r} is not field=column", source="--map")
            key, column = (s.strip() for s in item.split("=", 1))
            if key not in known:
                raise DataError(f"unknown mapping field {key!r}; known fields: {', '.join(sorted(known))}", source="--map")
            pairs[key] = column
        if "prompt" not in pairs:
            raise DataError("a mapping needs prompt=<column>", source="--map")
        mapping = cls(**pairs)  # type: ignore[arg-type]  # keys checked against the fields above
        if label_values:
            mapping.label_values = {}
            for item in filter(None, (part.strip() for part in label_values.split(","))):
                value, _, outcome = item.partition("=")
                outcome = outcome.strip()
                if outcome not in ("a", "b", "tie"):
                    raise DataError(f"label value {item!r} must map to a, b or tie", source="--label-values")
                mapping.label_values[value.strip().casefold()] = outcome  # type: ignore[assignment]
        mapping.kind()  # validate the combination early
        return mapping

    def kind(self) -> str:
        if self.chosen and self.rejected:
            return "chosen_rejected"
        if self.a and self.b and self.label:
            return "labelled_pair"
        if self.response and self.rating:
            return "rating"
        if self.response and self.correct:
            return "correctness"
        raise DataError(
            "mapping must name chosen+rejected, a+b+label, response+rating or response+correct columns",
            source="--map",
        )

    def columns(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "label_values" and getattr(self, f.name)}


def read_mapped(path: str | Path, mapping: ColumnMapping, limit: int | None = None,
                on_empty: str = "error", on_error: str = "error") -> FeedbackDataset:
    """Read any record file through a column mapping.

    ``on_empty="skip"`` leaves out rows whose response text (``chosen``/``rejected``/``a``/``b``/``response``) is
    an empty string, and ``on_error="skip"`` rows that cannot be read (a wrong type, a missing field, a bad label),
    both counted in ``notes``; the defaults make them an error naming the row and column. A mapped column that the
    first row lacks is a mistake in the mapping, so it stays an error.
    """
    check_policies(on_empty, on_error, path)
    source = str(path)
    kind = mapping.kind()
    dataset = FeedbackDataset(dataset_title(path))
    skipped = SkippedRows()
    rows_seen = 0

    def checked(records: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
        nonlocal rows_seen
        for row, record in records:
            if not rows_seen:
                _check_columns(record, mapping, source)
            rows_seen += 1
            yield row, record

    def read_row(row: int, record: dict[str, Any]) -> None:
        def text(name: str) -> str:
            column = getattr(mapping, name)
            return require_text(get_field(record, column, source=source, row=row), source=source, row=row, field=column)

        prompt_text = text("prompt")
        annotator = _optional_str(record, mapping.annotator, source, row)
        model = _optional_str(record, mapping.model, source, row)
        meta = {"row": row}
        # every value is read before anything is added, so a row that fails leaves nothing behind
        if kind in ("chosen_rejected", "labelled_pair"):
            first, second = ("chosen", "rejected") if kind == "chosen_rejected" else ("a", "b")
            text_a, text_b = text(first), text(second)
            outcome: Outcome = "a" if kind == "chosen_rejected" else _outcome(record, mapping, source, row)
            strength = _optional_float(record, mapping.strength, source, row)
            if text_a == text_b:
                skipped.add("pair(s) whose two responses are identical", row)
                return
            pid = dataset.add_prompt(prompt_text)
            a = dataset.add_response(pid, text_a)
            b = dataset.add_response(pid, text_b)
            dataset.add(Comparison(pid, a, b, outcome, strength, annotator, meta))
        elif kind == "rating":
            response = text("response")
            value = _optional_float(record, mapping.rating, source, row)
            if value is None:
                raise DataError("rating is missing", source=source, row=row, field=mapping.rating)
            rid = dataset.add_response(dataset.add_prompt(prompt_text), response, model)
            dataset.add(Rating(rid, value, None, annotator, meta))
        else:
            response = text("response")
            assert mapping.correct is not None
            correct = _bool(get_field(record, mapping.correct, source=source, row=row), source, row, mapping.correct)
            rid = dataset.add_response(dataset.add_prompt(prompt_text), response, model)
            dataset.add(Label(rid, correct, annotator, meta))

    records = iter_records(path, limit, skipped.bad if on_error == "skip" else None)
    read_rows(checked(records), read_row, skipped=skipped, on_empty=on_empty, on_error=on_error,
              response_fields=_response_columns(mapping, kind))
    if not rows_seen:
        raise DataError("file has no rows", source=source)
    dataset.notes.extend(skipped.notes(source))
    return dataset


def _response_columns(mapping: ColumnMapping, kind: str) -> list[str]:
    """The columns holding response text, the ones ``on_empty`` applies to."""
    names = {"chosen_rejected": ("chosen", "rejected"), "labelled_pair": ("a", "b")}.get(kind, ("response",))
    return [getattr(mapping, name) for name in names]


def _check_columns(record: dict[str, Any], mapping: ColumnMapping, source: str) -> None:
    for name, column in mapping.columns().items():
        top = column.split(".", 1)[0]
        if top not in record:
            raise DataError(
                f"unknown column {column!r} (mapped from {name!r}); the file has: {', '.join(map(str, record))}",
                source=source,
                row=1,
                field=column,
            )


def _outcome(record: dict[str, Any], mapping: ColumnMapping, source: str, row: int) -> Outcome:
    assert mapping.label is not None
    raw = get_field(record, mapping.label, source=source, row=row)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    key = _scalar_text(raw).strip().casefold()
    if key not in mapping.label_values:
        accepted = ", ".join(f"{k}->{v}" for k, v in mapping.label_values.items())
        raise DataError(
            f"label value {show_value(raw)} is not one of {accepted}; pass label values such as '0=a,1=b'",
            source=source,
            row=row,
            field=mapping.label,
        )
    return mapping.label_values[key]


def _optional_str(record: dict[str, Any], column: str | None, source: str, row: int) -> str | None:
    if column is None:
        return None
    value = get_field(record, column, source=source, row=row)
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        raise DataError(f"expected text, got {type(value).__name__}", source=source, row=row, field=column)
    return _scalar_text(value)


def _optional_float(record: dict[str, Any], column: str | None, source: str, row: int) -> float | None:
    if column is None:
        return None
    value = get_field(record, column, source=source, row=row)
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # JSON true/false: a yes/no, not a number (float(True) would quietly be 1.0)
        raise DataError(f"expected a number, got {json.dumps(value)}", source=source, row=row, field=column)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"expected a number, got {show_value(value)}", source=source, row=row, field=column) from None
    if not math.isfinite(number):
        raise DataError(f"expected a finite number, got {show_value(value)}", source=source, row=row, field=column)
    return number


def _bool(value: Any, source: str, row: int, column: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.0 / 0.0, as pandas writes integer columns that have nulls
    key = _scalar_text(value).strip().casefold()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise DataError(f"expected true/false, got {show_value(value)}", source=source, row=row, field=column)


def _scalar_text(value: Any) -> str:
    """A cell as text for matching: strings, numbers and booleans as written; a list or object (which no label or
    name matches) as its type name, never a deep ``str`` of it."""
    if isinstance(value, dict | list):
        return f"<{type(value).__name__}>"
    try:
        return str(value)
    except ValueError:  # an integer past Python's digit limit
        return "<huge integer>"
