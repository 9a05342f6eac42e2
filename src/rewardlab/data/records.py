"""Row-level file reading shared by every reader: each row comes with its 1-based row number.

JSON Lines (optionally gzipped), a JSON list, CSV/TSV and Parquet all become ``(row, dict)`` pairs so
readers can name the exact file, row and field of any problem.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardlab.errors import DataError

RECORD_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


def _base_suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in RECORD_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise DataError(
        f"unknown file type; expected one of {', '.join(RECORD_SUFFIXES)} (optionally .gz)", source=path
    )


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _decode(raw: bytes, path: Path, row: int) -> str:
    try:
        return raw.decode("utf-8-sig" if row == 1 else "utf-8")  # tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        raise DataError(f"bytes at offset {exc.start} are not valid UTF-8", source=path, row=row) from None


def iter_records(path: str | Path, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, record)`` for every record in a file, failing loudly on malformed rows."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=path)
    if limit is not None and limit <= 0:
        return
    suffix = _base_suffix(path)
    if suffix == ".parquet":
        yield from _iter_parquet(path, limit)
    elif suffix == ".jsonl":
        yield from _iter_jsonl(path, limit)
    elif suffix == ".json":
        yield from _iter_json_list(path, limit)
    else:
        yield from _iter_delimited(path, "\t" if suffix == ".tsv" else ",", limit)


def _iter_jsonl(path: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    count = 0
    with _open_bytes(path) as handle:
        for line_no, raw in enumerate(handle, start=1):
            text = _decode(raw, path, line_no).strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"broken JSON ({exc.msg} at column {exc.colno})", source=path, row=line_no) from None
            if not isinstance(record, dict):
                raise DataError(f"expected a JSON object, got {type(record).__name__}", source=path, row=line_no)
            yield line_no, record
            count += 1
            if limit is not None and count >= limit:
                return


def _iter_json_list(path: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_bytes(path) as handle:
        text = _decode(handle.read(), path, 1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"broken JSON ({exc.msg})", source=path, row=exc.lineno) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError("expected a JSON list of objects", source=path)
    for index, record in enumerate(data if limit is None else data[:limit], start=1):
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object, got {type(record).__name__}", source=path, row=index)
        yield index, record


def _iter_delimited(path: Path, delimiter: str, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_bytes(path) as handle:
        raw = handle.read()
    text = _decode_whole(raw, path, delimiter)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    for index, record in enumerate(reader, start=1):
        if None in record:
            raise DataError("row has more cells than the header", source=path, row=index)
        yield index, dict(record)
        if limit is not None and index >= limit:
            return


def _decode_whole(raw: bytes, path: Path, delimiter: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # tolerate the byte-order mark spreadsheet programs write
    except UnicodeDecodeError as exc:
        # count the records (not lines: quoted cells may span lines) that end before the bad byte
        prefix = raw[: exc.start].decode("utf-8-sig")
        records = list(csv.reader(io.StringIO(prefix, newline=""), delimiter=delimiter))
        # the bad byte starts a new record after a newline, else it lies in the last (partial) one
        row = len(records) if prefix.endswith("\n") or not records else len(records) - 1
        if row == 0:
            raise DataError(f"header bytes at offset {exc.start} are not valid UTF-8", source=path) from None
        raise DataError(f"bytes at offset {exc.start} are not valid UTF-8", source=path, row=row) from None


def _iter_parquet(path: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"cannot read Parquet: {exc}", source=path) from None
    if limit is not None:
        table = table.slice(0, limit)
    yield from enumerate(table.to_pylist(), start=1)


def get_field(record: dict[str, Any], path: str, *, source: str | Path, row: int) -> Any:
    """Look up ``a.b.c`` in a nested record; a missing part is an error naming the field."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise DataError("missing field", source=source, row=row, field=path)
        value = value[part]
    return value


def require_text(value: Any, *, source: str | Path, row: int, field: str) -> str:
    """A non-empty string, or an error that says what was found instead."""
    if value is None:
        raise DataError("value is missing (null)", source=source, row=row, field=field)
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__}", source=source, row=row, field=field)
    if not value.strip():
        raise DataError("text is empty", source=source, row=row, field=field)
    return value


class SkippedRows:
    """Rows a reader leaves out on purpose, by reason, so the dataset can say exactly what it dropped."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}

    def add(self, reason: str, row: int) -> None:
        self.rows.setdefault(reason, []).append(row)

    def notes(self, source: str) -> list[str]:
        out = []
        for reason, rows in self.rows.items():
            shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
            out.append(f"{source}: skipped {len(rows)} {reason} (rows {shown})")
        return out


EMPTY_POLICIES = ("error", "skip")


def is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def read_texts(path: str | Path, field: str = "text", limit: int | None = None) -> list[str]:
    """Plain texts: one per line of a ``.txt`` file, or the ``field`` of every record of any record file.

    Blank lines and empty fields are errors (naming the row), not skipped: row i of the input is row i
    of whatever is computed from it.
    """
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith(".txt"):
        return [require_text(get_field(record, field, source=path, row=row), source=path, row=row, field=field)
                for row, record in iter_records(path, limit)]
    if not path.exists():
        raise DataError("file not found", source=path)
    texts: list[str] = []
    with _open_bytes(path) as handle:
        for row, raw in enumerate(handle, start=1):
            if limit is not None and len(texts) >= limit:
                break
            line = _decode(raw, path, row).rstrip("\r\n")
            if not line.strip():
                raise DataError("blank line (one text per line is expected)", source=path, row=row)
            texts.append(line)
    return texts
