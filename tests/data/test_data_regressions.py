"""Regression tests for reader bugs found by review: byte-order marks, bad-byte row numbers in CSV,
``limit=0``, label-value spacing, integral-float booleans, orphan prompts, int/float round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardlab.data import ColumnMapping, FeedbackDataset, Rating, StepLabel, read_mapped, read_parquet, write_parquet
from rewardlab.data.records import iter_records
from rewardlab.errors import DataError

PAIR_MAP = "prompt=input,a=output_1,b=output_2,label=label"


def test_csv_with_utf8_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("input,output_1,output_2,label\nq,x,y,1\n", encoding="utf-8-sig")
    ds = read_mapped(path, ColumnMapping.parse(PAIR_MAP))
    assert len(ds.comparisons) == 1


def test_non_utf8_csv_row_after_a_multiline_cell(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b'input,output_1,output_2,label\n"q\nstill q1",x,y,1\nq2,x\xff,y,1\n')
    with pytest.raises(DataError) as info:
        list(iter_records(path))
    assert info.value.row == 2


def test_non_utf8_csv_header_is_not_row_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad_header.csv"
    path.write_bytes(b"inp\xffut,output_1\nq,x\n")
    with pytest.raises(DataError) as info:
        list(iter_records(path))
    assert info.value.row != 0
    assert "row 0" not in str(info.value)


@pytest.mark.parametrize("name", ["a.jsonl", "a.csv", "a.json"])
def test_limit_zero_reads_no_rows(tmp_path: Path, name: str) -> None:
    contents = {"a.jsonl": '{"a": 1}\n{"a": 2}\n', "a.csv": "a\n1\n2\n", "a.json": '[{"a": 1}, {"a": 2}]'}
    path = tmp_path / name
    path.write_text(contents[name], encoding="utf-8")
    assert list(iter_records(path, limit=0)) == []


def test_label_values_allow_spaces_around_equals() -> None:
    assert ColumnMapping.parse(PAIR_MAP, label_values="0=a, 1 = b").label_values == {"0": "a", "1": "b"}


def test_correctness_accepts_integral_floats(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("q,r,ok\nq1,a,1.0\nq2,b,0.0\n", encoding="utf-8")
    ds = read_mapped(path, ColumnMapping.parse("prompt=q,response=r,correct=ok"))
    assert [label.correct for label in ds.labels] == [True, False]


def test_skipped_identical_pair_leaves_no_orphan_prompt(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("input,output_1,output_2,label\nq1,x,x,1\nq2,x,y,1\n", encoding="utf-8")
    ds = read_mapped(path, ColumnMapping.parse(PAIR_MAP))
    assert len(ds.comparisons) == 1
    assert len(ds.prompts) == 1


def test_parquet_round_trip_keeps_fingerprint_with_int_values(tmp_path: Path) -> None:
    ds = FeedbackDataset("ints")
    pid = ds.add_prompt("p")
    rid = ds.add_response(pid, "r")
    ds.add(Rating(rid, 3, scale=(1, 5)))
    ds.add(Rating(rid, 2.5, scale=(0.0, 5.0)))
    ds.add(StepLabel(rid, 0, 1))
    ds.add(StepLabel(rid, 1, 0.5))
    assert read_parquet(write_parquet(ds, tmp_path / "ds")).fingerprint() == ds.fingerprint()
