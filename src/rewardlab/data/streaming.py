"""Reading large record files a piece at a time: Parquet in batches of rows, and the progress any read reports.

A 200k-row file read whole became its Arrow table and every row's dict at once; read in batches, only one batch of
dicts exists beside the rows already turned into the dataset. Progress goes through a context variable, so every
reader, however deep, reports to the bar of the command that asked, and readers keep their signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from rewardlab.errors import DataError

#: ``(done, total)`` in kB of the file read so far (of a .gz: its compressed bytes), or in rows of a Parquet file
ReadProgress = Callable[[int, int], None]
READ_PROGRESS: ContextVar[ReadProgress | None] = ContextVar("rewardlab_read_progress", default=None)
#: rows between two progress reports while a record file streams
PROGRESS_EVERY = 4096


@contextmanager
def read_progress(on_progress: ReadProgress | None) -> Iterator[None]:
    """Within this block every record file read reports its progress to ``on_progress`` (a progress bar), however
    deep the reader that reads it: readers keep their signatures, and a command wraps its load in one line."""
    token = READ_PROGRESS.set(on_progress)
    try:
        yield
    finally:
        READ_PROGRESS.reset(token)


def kb(size: int) -> int:
    """Bytes as whole kB, rounded up (a non-empty file never reads as 0 kB)."""
    return (size + 1023) // 1024


#: Parquet rows turned into Python dicts at a time: a large file streams instead of becoming one list of dicts
PARQUET_BATCH_ROWS = 8192


def iter_parquet(path: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, record)`` of a Parquet file, streamed, reporting progress in rows."""
    report = READ_PROGRESS.get()
    total = _parquet_rows(path) if report else 0
    every = PROGRESS_EVERY
    if limit is not None:
        total = min(total, limit)
    for row, record in enumerate(iter_parquet_rows(path), start=1):
        if report and row % every == 0:
            report(row, total)
        yield row, record
        if limit is not None and row >= limit:
            break
    if report:
        report(total, total)


def _parquet_rows(path: Path) -> int:
    """How many rows a Parquet file (or folder of part files) holds, from its metadata; 0 if it cannot be read
    (reading it then fails with the error that names it)."""
    try:
        if path.is_dir():
            import pyarrow.dataset as ds

            return int(ds.dataset(path, format="parquet").count_rows())
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:
        return 0


def iter_parquet_rows(path: Path, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file as dicts, read a batch of ``PARQUET_BATCH_ROWS`` at a time; an unreadable file or
    batch is a `DataError` naming the file."""
    import pyarrow.parquet as pq

    try:
        if path.is_dir():  # a folder of part files (as Spark writes a .parquet "file")
            import pyarrow.dataset as ds

            batches = ds.dataset(path, format="parquet").to_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns)
        else:
            batches = pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns)
        for batch in batches:
            yield from batch.to_pylist()
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"cannot read Parquet: {exc}", source=path) from None
