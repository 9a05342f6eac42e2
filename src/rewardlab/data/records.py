"""Row-level file reading shared by every reader: each row comes with its 1-based row number.

JSON Lines (optionally gzipped), a JSON list, CSV/TSV and Parquet all become ``(row, dict)`` pairs so
readers can name the exact file, row and field of any problem.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from rewardlab.data import streaming
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


def parse_json(text: str, path: Path, row: int | None) -> Any:
    """``json.loads``, with every way it can fail on bad input as one `DataError` (the row is None for a whole file,
    whose broken JSON is located by the parser's line)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f" at column {exc.colno}" if row is not None else ""
        raise DataError(f"broken JSON ({exc.msg}{where})", source=path, row=row if row is not None else exc.lineno) from None
    except RecursionError:
        raise DataError("JSON nested too deeply to read", source=path, row=row) from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise DataError(f"broken JSON ({str(exc)[:120]})", source=path, row=row) from None
    return value


#: the only way JSON text holds a lone surrogate: a \uD800-\uDFFF escape (decoded UTF-8 never holds one), so a row
#: without one is not walked (most escapes are of ordinary characters, as ``ensure_ascii`` writes them)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def check_unicode(record: Any, path: Path, row: int | None) -> None:
    """A `DataError` naming the field if a parsed record holds a lone surrogate (from a ``\\uD800``-style escape:
    decoded UTF-8 never holds one), which no text can be encoded with."""
    where = lone_surrogate_field(record)
    if where is not None:
        field, code = where
        raise DataError(f"text holds a lone surrogate (U+{code:04X}), which is not valid Unicode", source=path,
                        row=row, field=field)


def lone_surrogate_field(value: Any) -> tuple[str | None, int] | None:
    """Where a parsed JSON value holds a string with a lone UTF-16 surrogate: (field path or None for the value
    itself, the code point), or None. Walks without recursion, so any nesting depth is fine."""
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            bad = _first_surrogate(item)
            if bad is not None:
                return where, bad
        elif isinstance(item, dict):
            for key, child in item.items():
                name = key if where is None else f"{where}.{key}"
                bad = _first_surrogate(key)
                if bad is not None:
                    return name.encode("utf-8", "backslashreplace").decode("utf-8"), bad
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{where or ''}[{i}]", child) for i, child in enumerate(item))
    return None


def _first_surrogate(text: str) -> int | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ord(text[exc.start])
    return None


#: what `iter_records` does with a row it cannot parse: None raises; a callback (e.g. `SkippedRows.bad`) counts it
OnBadRow = Callable[[DataError], None] | None


def iter_records(path: str | Path, limit: int | None = None,
                 on_bad: OnBadRow = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row_number, record)`` for every record in a file, failing loudly on malformed rows.

    With ``on_bad``, a row that is not a record (broken JSON, not an object, too many CSV cells) goes to it instead,
    so ``on_error="skip"`` can pass over it; an unreadable file stays an error.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=path)
    if limit is not None and limit <= 0:
        return
    suffix = _base_suffix(path)
    try:
        if suffix == ".parquet":
            yield from streaming.iter_parquet(path, limit)
        elif suffix == ".jsonl":
            yield from _iter_jsonl(path, limit, on_bad)
        elif suffix == ".json":
            yield from _iter_json_list(path, limit, on_bad)
        else:
            yield from _iter_delimited(path, "\t" if suffix == ".tsv" else ",", limit, on_bad)
    except (OSError, EOFError, zlib.error, csv.Error) as exc:  # a directory, an unreadable or damaged (e.g. truncated .gz) file
        raise DataError(f"cannot read the file ({type(exc).__name__}: {str(exc)[:200]})", source=path) from None


def _bad_row(error: DataError, on_bad: OnBadRow) -> None:
    """Raise ``error``, or hand it to ``on_bad`` to be counted."""
    if on_bad is None:
        raise error
    on_bad(error)


def _iter_jsonl(path: Path, limit: int | None, on_bad: OnBadRow) -> Iterator[tuple[int, dict[str, Any]]]:
    count = 0
    report = streaming.READ_PROGRESS.get()
    total = streaming.kb(path.stat().st_size) if report else 0
    every = streaming.PROGRESS_EVERY
    with _open_bytes(path) as handle:
        position = getattr(handle, "fileobj", handle)  # a gzip file: how far into the compressed bytes
        for line_no, raw in enumerate(handle, start=1):
            if report and line_no % every == 0:
                report(min(total, streaming.kb(position.tell())), total)
            text = _decode(raw, path, line_no).strip()
            if not text:
                continue
            try:
                record = parse_json(text, path, line_no)
                if _SURROGATE_ESCAPE.search(text):
                    check_unicode(record, path, line_no)
            except DataError as error:
                _bad_row(error, on_bad)
                continue
            if not isinstance(record, dict):
                _bad_row(DataError(f"expected a JSON object, got {type(record).__name__}", source=path, row=line_no),
                         on_bad)
                continue
            yield line_no, record
            count += 1
            if limit is not None and count >= limit:
                return
    if report:
        report(total, total)


def _iter_json_list(path: Path, limit: int | None, on_bad: OnBadRow) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_bytes(path) as handle:
        text = _decode(handle.read(), path, 1)
    data = parse_json(text, path, None)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError("expected a JSON list of objects", source=path)
    escaped = _SURROGATE_ESCAPE.search(text) is not None
    for index, record in enumerate(data if limit is None else data[:limit], start=1):
        if not isinstance(record, dict):
            _bad_row(DataError(f"expected a JSON object, got {type(record).__name__}", source=path, row=index), on_bad)
            continue
        if escaped:
            try:
                check_unicode(record, path, index)
            except DataError as error:
                _bad_row(error, on_bad)
                continue
        yield index, record


def _iter_delimited(path: Path, delimiter: str, limit: int | None,
                    on_bad: OnBadRow) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_bytes(path) as handle:
        raw = handle.read()
    text = _decode_whole(raw, path, delimiter)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    index = 0
    while limit is None or index < limit:
        index += 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a cell past the csv module's size limit
            raise DataError(f"cannot read this row ({exc})", source=path, row=index) from None
        if None in record:
            _bad_row(DataError("row has more cells than the header", source=path, row=index), on_bad)
            continue
        yield index, dict(record)


def _decode_whole(raw: bytes, path: Path, delimiter: str) -> str:
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # spreadsheet programs write one
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        # count the records (not lines: quoted cells may span lines) that end before the bad byte
        prefix = raw[bom: bom + exc.start].decode("utf-8")
        offset = bom + exc.start
        records = list(csv.reader(io.StringIO(prefix, newline=""), delimiter=delimiter))
        # the bad byte starts a new record after a newline, else it lies in the last (partial) one
        row = len(records) if prefix.endswith("\n") or not records else len(records) - 1
        if row == 0:
            raise DataError(f"header bytes at offset {offset} are not valid UTF-8", source=path) from None
        raise DataError(f"bytes at offset {offset} are not valid UTF-8", source=path, row=row) from None


def show_value(value: Any, limit: int = 80) -> str:
    """A short ``repr`` of a value from the data for an error message (cut at ``limit`` characters; a value nested
    too deeply to print is named by its type)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # ValueError: an int past Python's digit limit
        return f"a deeply nested {type(value).__name__}" if not isinstance(value, int) else "a huge integer"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def get_field(record: dict[str, Any], path: str, *, source: str | Path, row: int) -> Any:
    """Look up ``a.b.c`` in a nested record; a missing part is an error naming the field."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise DataError("missing field", source=source, row=row, field=path)
        value = value[part]
    return value


class EmptyTextError(DataError):
    """A text field holds only whitespace: its own type, so ``on_empty="skip"`` can leave the row out (counted)."""


def require_text(value: Any, *, source: str | Path, row: int, field: str) -> str:
    """A non-empty string, or an error that says what was found instead."""
    if value is None:
        raise DataError("value is missing (null)", source=source, row=row, field=field)
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__}", source=source, row=row, field=field)
    if not value.strip():
        raise EmptyTextError("text is empty", source=source, row=row, field=field)
    return value


class SkippedRows:
    """Rows a reader leaves out on purpose, by reason, so the dataset can say exactly what it dropped."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}
        self.errors: list[DataError] = []  # bad rows left out under on_error="skip"

    def add(self, reason: str, row: int) -> None:
        self.rows.setdefault(reason, []).append(row)

    def bad(self, error: DataError) -> None:
        """Count a row whose error ``on_error="skip"`` passes over; the note names a few of them."""
        self.errors.append(error)

    def notes(self, source: str) -> list[str]:
        out = []
        for reason, rows in self.rows.items():
            shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
            out.append(f"{source}: skipped {len(rows)} {reason} (rows {shown})")
        if self.errors:
            examples = "; ".join(_where(error) for error in self.errors[:3]) + ("; ..." if len(self.errors) > 3 else "")
            out.append(f"{source}: skipped {len(self.errors)} bad row(s) (on_error='skip'), e.g. {examples}")
        return out


def _where(error: DataError) -> str:
    parts = [f"row {error.row}" if error.row is not None else "no row"]
    if error.field is not None:
        parts.append(f"field '{error.field}'")
    return f"{' '.join(parts)}: {error.reason}"


EMPTY_POLICIES = ("error", "skip")
#: what a reader does with a row it cannot read (a wrong type, a missing field, a bad label): stop, or skip and count
ERROR_POLICIES = ("error", "skip")


def check_policies(on_empty: str, on_error: str, source: str | Path | None = None) -> None:
    """Both row policies valid, or one error that names the choices."""
    if on_empty not in EMPTY_POLICIES:
        raise DataError(f"on_empty must be one of {', '.join(EMPTY_POLICIES)}, not {on_empty!r}", source=source)
    if on_error not in ERROR_POLICIES:
        raise DataError(f"on_error must be one of {', '.join(ERROR_POLICIES)}, not {on_error!r}", source=source)


def read_rows(records: Iterable[tuple[int, dict[str, Any]]], read_row: Callable[[int, dict[str, Any]], None], *,
              skipped: SkippedRows, on_empty: str = "error", on_error: str = "error",
              response_fields: Container[str] = ()) -> None:
    """Call ``read_row`` on every record under the two row policies, so every reader treats bad rows alike.

    ``read_row`` must check the whole row before it adds anything, so a row it raises on leaves nothing behind.
    An empty text in one of ``response_fields`` is skipped (counted by field) under ``on_empty="skip"``; any other
    `DataError` (an empty prompt included) stops the read unless ``on_error="skip"``, which counts and names it.
    """
    check_policies(on_empty, on_error)
    for row, record in records:
        try:
            read_row(row, record)
        except EmptyTextError as error:
            if on_empty == "skip" and error.field in response_fields:
                skipped.add(f"row(s) whose '{error.field}' text is empty", row)
            elif on_error == "skip":
                skipped.bad(error)
            else:
                raise
        except DataError as error:
            if on_error != "skip":
                raise
            skipped.bad(error)


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


#: file names that say nothing about their data: a dataset read from one is titled by its folder too
GENERIC_STEMS = frozenset({"dataset", "data", "train", "test", "dev", "valid", "validation", "eval", "all"})


def dataset_title(path: str | Path) -> str:
    """A dataset's name from its file: ``Natural/dataset.json`` for a generic name, so two such sets tell apart."""
    path = Path(path)
    stem = path.name.lower().removesuffix(".gz")
    for suffix in RECORD_SUFFIXES:
        stem = stem.removesuffix(suffix)
    if stem in GENERIC_STEMS and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name
