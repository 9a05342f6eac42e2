"""One entry point for reading feedback: a file or directory, in any registered format.

Formats live in the `READERS` registry. A reader is a function ``(path, options) -> FeedbackDataset``
registered with ``@register_reader(name, detect=...)``; ``detect`` lets ``format="auto"`` recognise its
files from a `Sniff` (the path, and the first record of a record file, read only if asked).
Auto-detection asks readers in registration order and takes the first that says yes, so a more
specific format registers before a more general one (``hh`` before ``trl``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.hh_rlhf import ASSISTANT_TAG, read_hh_rlhf
from rewardlab.data.mapping import ColumnMapping, read_mapped
from rewardlab.data.parquet import MANIFEST, read_parquet
from rewardlab.data.records import check_policies, iter_records
from rewardlab.data.trl import read_trl
from rewardlab.errors import DataError
from rewardlab.registry import Registry


@dataclass(frozen=True)
class ReadOptions:
    """What `load_feedback` was asked for; each reader uses the options that apply to it."""

    mapping: ColumnMapping | None = None
    limit: int | None = None
    on_empty: str = "error"
    on_error: str = "error"


class Sniff:
    """What auto-detection looks at: the path, and (read once, on first use) the first record of a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._first: dict[str, Any] | None = None
        self._read = False
        self.error: DataError | None = None  # why the first record could not be read (e.g. unknown file type)

    @property
    def first(self) -> dict[str, Any] | None:
        """The first record of a JSONL/JSON/CSV/Parquet file; None for a directory, an empty or unreadable file."""
        if not self._read:
            self._read = True
            if not self.path.is_dir():
                try:
                    self._first = next((record for _, record in iter_records(self.path, limit=1)), None)
                except DataError as error:
                    self.error = error
        return self._first


ReadFn = Callable[[Path, ReadOptions], FeedbackDataset]
#: does this reader recognise the sniffed path?
DetectFn = Callable[[Sniff], bool]


@dataclass(frozen=True)
class Reader:
    name: str
    read: ReadFn
    detect: DetectFn | None = None  # None: never chosen by "auto" (e.g. needs a column mapping)


READERS: Registry[Reader] = Registry("format", DataError)


def register_reader(name: str, detect: DetectFn | None = None) -> Callable[[ReadFn], ReadFn]:
    """Decorator: register a read function as format ``name``."""

    def add(read: ReadFn) -> ReadFn:
        READERS.register(name, Reader(name, read, detect))
        return read

    return add


def formats() -> tuple[str, ...]:
    """Every value ``format`` accepts: ``auto`` and each registered reader."""
    return ("auto", *READERS)


def _is_rewardlab_dir(sniff: Sniff) -> bool:
    return sniff.path.is_dir() and (sniff.path / MANIFEST).exists()


def _is_hh(sniff: Sniff) -> bool:
    """HH-RLHF: chosen/rejected transcripts with the prompt inside them (no separate ``prompt`` field)."""
    first = sniff.first
    return (first is not None and {"chosen", "rejected"} <= set(first) and "prompt" not in first
            and isinstance(first["chosen"], str) and ASSISTANT_TAG in first["chosen"])


def _is_trl(sniff: Sniff) -> bool:
    first = sniff.first
    return first is not None and {"chosen", "rejected"} <= set(first)


@register_reader("rewardlab", detect=_is_rewardlab_dir)
def _read_rewardlab(path: Path, options: ReadOptions) -> FeedbackDataset:
    # rewardlab's own tables were checked row by row when written: no row policy applies
    return read_parquet(path)


@register_reader("hh", detect=_is_hh)
def _read_hh(path: Path, options: ReadOptions) -> FeedbackDataset:
    return read_hh_rlhf(path, options.limit, on_empty=options.on_empty, on_error=options.on_error)


@register_reader("trl", detect=_is_trl)
def _read_trl(path: Path, options: ReadOptions) -> FeedbackDataset:
    return read_trl(path, options.limit, options.on_empty, options.on_error)


@register_reader("mapped")
def _read_mapped(path: Path, options: ReadOptions) -> FeedbackDataset:
    if options.mapping is None:
        raise DataError("format 'mapped' needs a column mapping", source=path)
    return read_mapped(path, options.mapping, options.limit, options.on_empty, options.on_error)


def detect_format(path: Path) -> str:
    """The first registered format whose ``detect`` recognises ``path`` (a manifest, the first record's fields)."""
    sniff = Sniff(Path(path))
    for reader in READERS.values():
        if reader.detect is not None and reader.detect(sniff):
            return reader.name
    if sniff.path.is_dir():
        raise DataError(f"directory has no {MANIFEST}; pass a file or a rewardlab dataset directory", source=path)
    if sniff.error is not None:
        raise sniff.error
    if sniff.first is None:
        raise DataError("file has no rows", source=path)
    raise DataError(
        f"cannot tell the format from fields {', '.join(map(str, sniff.first))}; pass a column mapping "
        "(e.g. --map prompt=input,a=output_1,b=output_2,label=label)",
        source=path,
        row=1,
    )


def load_feedback(
    path: str | Path,
    format: str = "auto",
    mapping: ColumnMapping | None = None,
    limit: int | None = None,
    on_empty: str = "error",
    on_error: str = "error",
) -> FeedbackDataset:
    """Read feedback from ``path``. A mapping implies the generic reader.

    Every row reader (HH, TRL, mapped) takes two row policies, "error" (stop, naming file, row and field) or "skip"
    (leave the row out, counted in ``notes``): ``on_empty`` for an empty response text, ``on_error`` for any other
    row it cannot read. rewardlab's own Parquet directories were checked when written and take neither.

    Feedback rows that repeat an earlier row exactly are kept and counted in a note (see
    `FeedbackDataset.note_duplicates`).
    """
    path = Path(path)
    check_policies(on_empty, on_error, path)
    if mapping is not None:
        format = "mapped"
    if format != "auto" and format not in READERS:
        raise DataError(f"unknown format {format!r}; choose from {', '.join(formats())}", source=path)
    if format == "auto":
        format = detect_format(path)
    dataset = READERS[format].read(path, ReadOptions(mapping, limit, on_empty, on_error))
    dataset.note_duplicates(str(path))
    return dataset
