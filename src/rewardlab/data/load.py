"""One entry point for reading feedback: a file or directory, in any supported format."""

from __future__ import annotations

from pathlib import Path

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.hh_rlhf import ASSISTANT_TAG, read_hh_rlhf
from rewardlab.data.mapping import ColumnMapping, read_mapped
from rewardlab.data.parquet import MANIFEST, read_parquet
from rewardlab.data.records import iter_records
from rewardlab.data.trl import read_trl
from rewardlab.errors import DataError

FORMATS = ("auto", "hh", "trl", "rewardlab", "mapped")


def detect_format(path: Path) -> str:
    """Guess the format from a directory manifest or the first record's fields."""
    if path.is_dir():
        if (path / MANIFEST).exists():
            return "rewardlab"
        raise DataError(f"directory has no {MANIFEST}; pass a file or a rewardlab dataset directory", source=path)
    for _, record in iter_records(path, limit=1):
        if {"chosen", "rejected"} <= set(record):
            if "prompt" in record:
                return "trl"
            chosen = record["chosen"]
            if isinstance(chosen, str) and ASSISTANT_TAG in chosen:
                return "hh"
            return "trl"
        raise DataError(
            f"cannot tell the format from fields {', '.join(map(str, record))}; pass a column mapping "
            "(e.g. --map prompt=input,a=output_1,b=output_2,label=label)",
            source=path,
            row=1,
        )
    raise DataError("file has no rows", source=path)


def load_feedback(
    path: str | Path,
    format: str = "auto",
    mapping: ColumnMapping | None = None,
    limit: int | None = None,
    on_empty: str = "error",
) -> FeedbackDataset:
    """Read feedback from ``path``. A mapping implies the generic reader; ``on_empty`` applies to HH files."""
    path = Path(path)
    if mapping is not None:
        format = "mapped"
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}", source=path)
    if format == "auto":
        format = detect_format(path)
    if format == "rewardlab":
        return read_parquet(path)
    if format == "hh":
        return read_hh_rlhf(path, limit, on_empty=on_empty)
    if format == "trl":
        return read_trl(path, limit)
    if mapping is None:
        raise DataError("format 'mapped' needs a column mapping", source=path)
    return read_mapped(path, mapping, limit)
