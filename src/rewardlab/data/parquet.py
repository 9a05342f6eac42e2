"""rewardlab's own on-disk dataset: a directory of Parquet tables plus ``manifest.json``.

Lossless: every feedback kind, annotator ids, meta and the readers' notes survive a round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FEEDBACK_TABLES, FeedbackDataset
from rewardlab.data.streaming import iter_parquet_rows
from rewardlab.data.types import Message, Prompt, Response
from rewardlab.errors import DataError

FORMAT = "rewardlab.feedback/1"
MANIFEST = "manifest.json"


def write_parquet(dataset: FeedbackDataset, directory: str | Path) -> Path:
    """Write ``dataset`` losslessly: one Parquet file per non-empty table plus ``manifest.json``; returns the directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[dict[str, Any]]] = {
        "prompts": [
            {
                "id": p.id,
                "text": p.text,
                "messages": None if p.messages is None else json.dumps([asdict(m) for m in p.messages]),
            }
            for p in dataset.prompts.values()
        ],
        "responses": [asdict(r) for r in dataset.responses.values()],
    }
    for name in FEEDBACK_TABLES:
        rows = []
        for row in dataset.table(name):
            record = asdict(row)
            record["meta"] = json.dumps(record["meta"], sort_keys=True, default=str)
            rows.append(record)
        tables[name] = rows
    written = {}
    for name, rows in tables.items():
        if rows:
            pq.write_table(pa.Table.from_pylist(rows), directory / f"{name}.parquet")
            written[name] = len(rows)
    manifest = {"format": FORMAT, "name": dataset.name, "tables": written, "notes": dataset.notes,
                "fingerprint": dataset.fingerprint()}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def read_parquet(directory: str | Path) -> FeedbackDataset:
    """The dataset `write_parquet` wrote to ``directory``; a `DataError` if the manifest is missing or of another format."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise DataError(f"not a rewardlab dataset directory (no {MANIFEST})", source=directory)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise DataError(f"unsupported dataset format {manifest.get('format')!r}", source=manifest_path)
    dataset = FeedbackDataset(manifest.get("name", directory.name))
    dataset.notes = list(manifest.get("notes", []))

    def rows(name: str) -> Iterator[dict[str, Any]]:
        """A table's rows, streamed a batch at a time (never the whole table as Python objects twice over)."""
        if name in manifest["tables"]:
            yield from iter_parquet_rows(directory / f"{name}.parquet")

    for rec in rows("prompts"):
        messages = None
        if rec["messages"] is not None:
            messages = tuple(Message(**m) for m in json.loads(rec["messages"]))
        dataset.prompts[rec["id"]] = Prompt(rec["id"], rec["text"], messages)
    for rec in rows("responses"):
        dataset.responses[rec["id"]] = Response(**rec)
    for name, row_type in FEEDBACK_TABLES.items():
        for index, rec in enumerate(rows(name), start=1):
            rec["meta"] = json.loads(rec["meta"])
            if rec.get("response_ids") is not None:
                rec["response_ids"] = tuple(rec["response_ids"])
            if rec.get("scale") is not None:
                rec["scale"] = tuple(rec["scale"])
            try:
                dataset.add(row_type(**rec))
            except (KeyError, TypeError) as exc:
                raise DataError(str(exc), source=directory / f"{name}.parquet", row=index) from None
    return dataset
