"""Regressions from probing the readers (issue 21): each input gave a traceback or was taken silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.data import ColumnMapping, load_feedback
from rewardlab.data.candidates import read_candidates_jsonl
from rewardlab.data.records import iter_records, read_texts
from rewardlab.errors import DataError

DEEP = 100_000


def _expect(call, source: Path, row: int | None, field: str | None, fragment: str) -> DataError:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as info:
        call()
    error = info.value
    assert error.source == str(source)
    assert error.row == row
    assert error.field == field
    assert fragment in str(error)
    return error


def test_json_nested_100k_deep_is_one_data_error(tmp_path: Path) -> None:
    line = '{"prompt": ' + "[" * DEEP + "]" * DEEP + ', "chosen": "a", "rejected": "b"}'
    jsonl = tmp_path / "deep.jsonl"
    jsonl.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n' + line + "\n", encoding="utf-8")
    _expect(lambda: load_feedback(jsonl, format="trl"), jsonl, 2, None, "nested too deeply")
    whole = tmp_path / "deep.json"
    whole.write_text("[" * DEEP + "]" * DEEP, encoding="utf-8")
    _expect(lambda: list(iter_records(whole)), whole, None, None, "nested too deeply")


def test_lone_surrogate_is_a_data_error_naming_the_field(tmp_path: Path) -> None:
    row = json.dumps({"prompt": "p", "chosen": "fine \ud800 text", "rejected": "b"})  # ascii: the escape \ud800
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n" + row + "\n", encoding="utf-8")
    error = _expect(lambda: load_feedback(path), path, 2, "chosen", "lone surrogate")
    str(error).encode("utf-8")  # the message itself is printable
    listed = tmp_path / "pairs.json"
    listed.write_text("[" + json.dumps({"prompt": "\udfff", "chosen": "a", "rejected": "b"}) + "]", encoding="utf-8")
    _expect(lambda: load_feedback(listed, format="trl"), listed, 1, "prompt", "U+DFFF")
    pools = tmp_path / "pools.jsonl"
    pools.write_text(json.dumps({"prompt": "p", "responses": ["ok", "bad \ud800"]}) + "\n", encoding="utf-8")
    _expect(lambda: read_candidates_jsonl(pools), pools, 1, "responses[1]", "lone surrogate")
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"text": "\ud83d"}) + "\n", encoding="utf-8")
    _expect(lambda: read_texts(texts), texts, 1, "text", "lone surrogate")


def test_a_surrogate_pair_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "emoji.jsonl"
    path.write_text(json.dumps({"prompt": "p \U0001F600", "chosen": "a", "rejected": "b"}) + "\n", encoding="utf-8")
    assert len(load_feedback(path).comparisons) == 1


def test_rating_true_is_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_text(json.dumps({"prompt": "p", "response": "r", "rating": 4}) + "\n"
                    + json.dumps({"prompt": "p", "response": "s", "rating": True}) + "\n", encoding="utf-8")
    mapping = ColumnMapping.parse("prompt=prompt,response=response,rating=rating")
    _expect(lambda: load_feedback(path, mapping=mapping), path, 2, "rating", "expected a number, got true")


def test_strength_true_is_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "a": "x", "b": "y", "label": "a", "strength": True}) + "\n",
                    encoding="utf-8")
    mapping = ColumnMapping.parse("prompt=prompt,a=a,b=b,label=label,strength=strength")
    _expect(lambda: load_feedback(path, mapping=mapping), path, 1, "strength", "expected a number, got true")


def test_a_number_too_large_for_a_float_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_text('{"prompt": "p", "response": "r", "rating": 1' + "0" * 400 + "}\n", encoding="utf-8")
    mapping = ColumnMapping.parse("prompt=prompt,response=response,rating=rating")
    _expect(lambda: load_feedback(path, mapping=mapping), path, 1, "rating", "expected a number")


def test_twenty_identical_rows_are_kept_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    row = json.dumps({"prompt": "p", "chosen": "good", "rejected": "bad"})
    path.write_text((row + "\n") * 20 + json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n",
                    encoding="utf-8")
    dataset = load_feedback(path)
    assert len(dataset.comparisons) == 21  # kept: repeated judgements can be real data
    notes = [note for note in dataset.notes if "repeat" in note]
    assert len(notes) == 1
    assert str(path) in notes[0] and "19 comparisons row(s)" in notes[0] and "kept" in notes[0]


def test_no_note_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "good", "rejected": "bad"}) + "\n"
                    + json.dumps({"prompt": "p", "chosen": "bad", "rejected": "good"}) + "\n", encoding="utf-8")
    assert not [note for note in load_feedback(path).notes if "repeat" in note]


def test_a_damaged_gzip_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate")
    _expect(lambda: load_feedback(path, format="trl"), path, None, None, "cannot read the file")


def test_evalbiasbench_file_damage_is_a_data_error(tmp_path: Path) -> None:
    from rewardlab.data.evalbiasbench import read_evalbiasbench

    deep = tmp_path / "deep.json"
    deep.write_text("[" * DEEP + "]" * DEEP, encoding="utf-8")
    _expect(lambda: read_evalbiasbench(deep), deep, None, None, "nested too deeply")
    odd = tmp_path / "odd.json"
    item = {"bias": "length", "instruction": "q", "response1": "a", "response2": "b", "label": [1]}
    odd.write_text(json.dumps({"length": [item]}), encoding="utf-8")
    _expect(lambda: read_evalbiasbench(odd), odd, 1, "label", "label must be 1")


def test_a_bad_byte_after_a_byte_order_mark_is_located(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_bytes(b"\xef\xbb\xbf\x00\x80")
    _expect(lambda: list(iter_records(path)), path, None, None, "offset 4")
