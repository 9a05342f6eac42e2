"""Large record files stream: Parquet a batch at a time (same rows, same limit, same errors), and a read reports its
progress to whichever bar the caller set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rewardlab.data import streaming
from rewardlab.data.records import iter_records
from rewardlab.data.streaming import read_progress
from rewardlab.errors import DataError

ROWS = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(50)]


def test_parquet_streams_in_batches_with_the_same_rows_and_limit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "PARQUET_BATCH_ROWS", 7)
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=16)
    assert list(iter_records(path)) == list(enumerate(ROWS, start=1))
    assert list(iter_records(path, limit=9)) == list(enumerate(ROWS[:9], start=1))


def test_a_folder_of_parquet_parts_reads_as_one_file(tmp_path: Path) -> None:
    folder = tmp_path / "pairs.parquet"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS[:20]), folder / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS[20:]), folder / "part-1.parquet")
    assert sorted(r["prompt"] for _, r in iter_records(folder)) == sorted(r["prompt"] for r in ROWS)


def test_damaged_parquet_is_one_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot read Parquet") as caught:
        list(iter_records(path))
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.jsonl.gz", "pairs.parquet"])
def test_reading_reports_progress_to_the_bar_in_scope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      name: str) -> None:
    monkeypatch.setattr(streaming, "PROGRESS_EVERY", 8)
    rows = ROWS * 40
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        text = "".join(json.dumps(r) + "\n" for r in rows).encode()
        path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    seen: list[tuple[int, int]] = []
    with read_progress(lambda done, total: seen.append((done, total))):
        assert len(list(iter_records(path))) == len(rows)
    assert len(seen) > 10 and seen[-1][0] == seen[-1][1] > 0  # many steps, ending complete
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))  # never backwards
    seen.clear()
    list(iter_records(path))  # outside the block: nothing reported
    assert seen == []
