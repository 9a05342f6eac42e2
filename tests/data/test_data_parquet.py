"""rewardlab's own Parquet dataset directory: a lossless round trip of every feedback kind."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rewardlab.data import (
    FEEDBACK_TABLES,
    Comparison,
    Correction,
    Critique,
    Demonstration,
    FeedbackDataset,
    Label,
    Message,
    Ranking,
    Rating,
    StepLabel,
    read_parquet,
    write_parquet,
)
from rewardlab.errors import DataError


def every_kind() -> FeedbackDataset:
    ds = FeedbackDataset("every-kind")
    ds.notes.append("built by hand: skipped 0 rows")
    chat = (Message("system", "You are terse."), Message("user", "Add 17 and 25."))
    p1 = ds.add_prompt("\n\nSystem: You are terse.\n\nHuman: Add 17 and 25.", chat)
    p2 = ds.add_prompt("Name a prime number. ünïcödé ✓ \t tab")
    p3 = ds.add_prompt("Empty-message prompt", ())
    r1 = ds.add_response(p1, "42", source="model-a")
    r2 = ds.add_response(p1, "17 + 25 = 41", source="model-b")
    r3 = ds.add_response(p1, "It is 42.\nFirst 17 + 20 = 37, then 37 + 5 = 42.")
    r4 = ds.add_response(p2, "7", source="human")
    r5 = ds.add_response(p2, "9")
    r6 = ds.add_response(p3, "ok")
    ds.add(Comparison(p1, r1, r2, "a", strength=0.75, annotator_id="ann-1", meta={"row": 1, "batch": "x"}))
    ds.add(Comparison(p1, r2, r3, "b", annotator_id="ann-2"))
    ds.add(Comparison(p2, r4, r5, "tie", strength=0.0, meta={"nested": {"list": [1, 2.5, None], "flag": True}}))
    ds.add(Ranking(p1, (r3, r1, r2), annotator_id="ann-1", meta={"row": 4}))
    ds.add(Ranking(p2, (r5, r4)))
    ds.add(Rating(r1, 4.5, scale=(1.0, 5.0), annotator_id="ann-3", meta={"criterion": "helpfulness"}))
    ds.add(Rating(r2, 0.25))
    ds.add(Rating(r6, -1.5, scale=(-2.0, 2.0)))
    ds.add(Label(r1, True, annotator_id="checker"))
    ds.add(Label(r2, False, meta={"why": "arithmetic"}))
    ds.add(Correction(r2, "17 + 25 = 42", annotator_id="ann-2", meta={"edit_distance": 1}))
    ds.add(Critique(r2, "The sum is off by one.", annotator_id="ann-4"))
    ds.add(Critique(r5, "9 is not prime."))
    ds.add(StepLabel(r3, 0, 1.0, annotator_id="ann-5"))
    ds.add(StepLabel(r3, 1, 0.5, meta={"span": [0, 12]}))
    ds.add(Demonstration(p1, "42", annotator_id="teacher", meta={"time_s": 3.2}))
    ds.add(Demonstration(p2, "2"))
    return ds


def _assert_same(before: FeedbackDataset, after: FeedbackDataset) -> None:
    assert after.name == before.name
    assert after.notes == before.notes
    assert after.prompts == before.prompts
    assert after.responses == before.responses
    for name in FEEDBACK_TABLES:
        assert after.table(name) == before.table(name), name
    assert after.summary() == before.summary()
    assert after.annotators() == before.annotators()
    assert after.fingerprint() == before.fingerprint()


def test_every_kind_is_present() -> None:
    ds = every_kind()
    assert all(len(ds.table(name)) > 0 for name in FEEDBACK_TABLES)


def test_round_trip_of_every_feedback_kind_is_lossless(tmp_path: Path) -> None:
    ds = every_kind()
    fingerprint = ds.fingerprint()
    directory = write_parquet(ds, tmp_path / "ds")
    assert directory == tmp_path / "ds"
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "rewardlab.feedback/1"
    assert manifest["fingerprint"] == fingerprint
    assert manifest["tables"] == {"prompts": 3, "responses": 6, **{k: len(ds.table(k)) for k in FEEDBACK_TABLES}}
    back = read_parquet(directory)
    _assert_same(ds, back)
    assert back.fingerprint() == fingerprint
    # types survive, not only values
    tie = back.comparisons[2]
    assert tie.outcome == "tie" and tie.strength == 0.0 and tie.meta["nested"] == {"list": [1, 2.5, None], "flag": True}
    assert isinstance(back.rankings[0].response_ids, tuple)
    assert back.ratings[0].scale == (1.0, 5.0) and back.ratings[1].scale is None
    assert back.labels[0].correct is True and back.labels[1].correct is False
    assert isinstance(back.step_labels[1].step, int)
    assert back.prompts[ds.comparisons[0].prompt_id].messages == ds.prompts[ds.comparisons[0].prompt_id].messages
    assert [p.messages for p in back.prompts.values()] == [p.messages for p in ds.prompts.values()]
    # a second round trip changes nothing
    _assert_same(ds, read_parquet(write_parquet(back, tmp_path / "again")))


def test_fingerprint_notices_a_changed_row(tmp_path: Path) -> None:
    ds = every_kind()
    other = every_kind()
    other.ratings[0] = Rating(other.ratings[0].response_id, 4.0, scale=(1.0, 5.0), annotator_id="ann-3")
    assert other.fingerprint() != ds.fingerprint()
    assert read_parquet(write_parquet(other, tmp_path / "o")).fingerprint() == other.fingerprint()


def test_round_trip_of_real_hh(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    back = read_parquet(write_parquet(hh_dataset, tmp_path / "hh"))
    _assert_same(hh_dataset, back)


def test_only_non_empty_tables_are_written(tmp_path: Path) -> None:
    ds = FeedbackDataset("tiny")
    pid = ds.add_prompt("p")
    ds.add(Demonstration(pid, "d"))
    directory = write_parquet(ds, tmp_path / "tiny")
    assert sorted(p.name for p in directory.iterdir()) == ["demonstrations.parquet", "manifest.json", "prompts.parquet"]
    _assert_same(ds, read_parquet(directory))


def test_read_parquet_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no manifest.json") as info:
        read_parquet(tmp_path)
    assert info.value.source == str(tmp_path)

    directory = write_parquet(every_kind(), tmp_path / "ds")
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**manifest, "format": "other/9"}), encoding="utf-8")
    with pytest.raises(DataError, match="unsupported dataset format 'other/9'"):
        read_parquet(directory)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    # a label whose response is not in responses.parquet: the error names the table file and row
    labels = pq.read_table(directory / "labels.parquet").to_pylist()
    labels[1]["response_id"] = "r_missing"
    pq.write_table(pa.Table.from_pylist(labels), directory / "labels.parquet")
    with pytest.raises(DataError) as info:
        read_parquet(directory)
    assert info.value.source == str(directory / "labels.parquet")
    assert info.value.row == 2
    assert "r_missing" in str(info.value)
