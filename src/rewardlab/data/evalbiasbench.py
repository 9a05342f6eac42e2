"""Reader for EvalBiasBench (OffsetBias, Park et al. 2024): hand-built pairs that probe reward-model biases.

The file maps a bias type to items ``{bias, instruction, response1, response2, label}``; ``label`` 1 means
``response1`` is the better one (it is 1 throughout the release), 2 the other. Each pair keeps its bias type in
``meta["bias"]``, so results can be reported per type.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import (
    SkippedRows,
    _decode,
    _open_bytes,
    check_unicode,
    get_field,
    parse_json,
    read_rows,
    require_text,
    show_value,
)
from rewardlab.data.types import Comparison, Outcome
from rewardlab.errors import DataError

_OUTCOMES: dict[Any, Outcome] = {1: "a", 2: "b"}
#: the fields whose empty text ``on_empty="skip"`` leaves out
RESPONSE_FIELDS = ("response1", "response2")


def read_evalbiasbench(path: str | Path, limit: int | None = None, on_empty: str = "error",
                       on_error: str = "error") -> FeedbackDataset:
    """The 80 probe pairs as comparisons (row = the item's place in the file, counted across bias types)."""
    source = str(path)
    if not Path(path).exists():
        raise DataError("file not found", source=path)
    try:
        with _open_bytes(Path(path)) as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:  # a directory, a damaged .gz
        raise DataError(f"cannot read the file ({type(exc).__name__}: {str(exc)[:200]})", source=path) from None
    data = parse_json(_decode(raw, Path(path), 1), Path(path), None)
    if not isinstance(data, dict):
        raise DataError("expected a JSON object mapping each bias type to a list of pairs", source=path)
    records: list[tuple[int, dict[str, Any]]] = []
    for bias, items in data.items():
        if not isinstance(items, list):
            raise DataError("expected a list of pairs", source=path, field=bias)
        for item in items:
            records.append((len(records) + 1, item if isinstance(item, dict) else {"item": item}))
            check_unicode(item, Path(path), len(records))
    dataset = FeedbackDataset(Path(path).parent.name or "evalbiasbench")
    skipped = SkippedRows()

    def read_row(row: int, record: dict[str, Any]) -> None:
        bias = require_text(get_field(record, "bias", source=source, row=row), source=source, row=row, field="bias")
        prompt = require_text(get_field(record, "instruction", source=source, row=row), source=source, row=row,
                              field="instruction")
        first, second = (require_text(get_field(record, field, source=source, row=row), source=source, row=row,
                                      field=field) for field in RESPONSE_FIELDS)
        label = get_field(record, "label", source=source, row=row)
        if isinstance(label, bool) or not isinstance(label, int) or label not in _OUTCOMES:
            raise DataError(f"label must be 1 (response1 is better) or 2, got {show_value(label)}", source=source,
                            row=row, field="label")
        if first == second:
            skipped.add("pair(s) whose two responses are identical", row)
            return
        pid = dataset.add_prompt(prompt)
        a, b = dataset.add_response(pid, first), dataset.add_response(pid, second)
        dataset.add(Comparison(pid, a, b, _OUTCOMES[label], meta={"row": row, "bias": bias}))

    read_rows(records[:limit] if limit is not None else records, read_row, skipped=skipped, on_empty=on_empty,
              on_error=on_error, response_fields=RESPONSE_FIELDS)
    dataset.notes.extend(skipped.notes(source))
    return dataset
