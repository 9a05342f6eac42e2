"""Bad input fails with a DataError naming the file, the row and the field, so a user can fix it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rewardlab.data import ColumnMapping, load_feedback, read_hh_rlhf, read_mapped, read_trl, trl_from_rows
from rewardlab.data.records import iter_records
from rewardlab.errors import DataError, RewardlabError

HH_GOOD = {
    "chosen": "\n\nHuman: Is the sky blue?\n\nAssistant: Yes, on a clear day.",
    "rejected": "\n\nHuman: Is the sky blue?\n\nAssistant: No.",
}
TRL_GOOD = {"prompt": "Is the sky blue?", "chosen": "Yes, on a clear day.", "rejected": "No."}
PAIR_MAP = "prompt=input,a=output_1,b=output_2,label=label"


def _jsonl(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _expect(
    call: Callable[[], object], source: Path | str, row: int | None, field: str | None, *fragments: str
) -> DataError:
    with pytest.raises(DataError) as info:
        call()
    err = info.value
    assert isinstance(err, RewardlabError)
    message = str(err)
    assert (err.source, err.row, err.field) == (str(source), row, field), message
    assert message.startswith(str(source)), message
    if row is not None:
        assert f"row {row}" in message
    if field is not None:
        assert f"field '{field}'" in message
    for fragment in fragments:
        assert fragment in message
    return err


def _assert_note(notes: list[str], source: Path | str, count: int, reason: str, rows: str) -> None:
    """Exactly one note: '<source>: skipped <count> <...reason...> (rows <rows>)'."""
    assert len(notes) == 1, notes
    note = notes[0]
    assert note.startswith(f"{source}: skipped {count} "), note
    assert reason in note, note
    assert note.endswith(f"(rows {rows})"), note


# ---------------------------------------------------------------------------------------------- broken JSON
@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.jsonl.gz"])
@pytest.mark.parametrize("reader", ["hh", "trl", "mapped", "records"])
def test_broken_json_line_names_its_row(tmp_path: Path, name: str, reader: str) -> None:
    good = HH_GOOD if reader == "hh" else TRL_GOOD
    # line 3 is blank: rows are physical line numbers, so the broken line is row 5
    path = _jsonl(tmp_path / name, [good, good, "", good, '{"prompt": "x", "chosen": "y", "rejected": '])
    calls: dict[str, Callable[[], object]] = {
        "hh": lambda: read_hh_rlhf(path),
        "trl": lambda: read_trl(path),
        "mapped": lambda: read_mapped(path, ColumnMapping.parse("prompt=prompt,chosen=chosen,rejected=rejected")),
        "records": lambda: list(iter_records(path)),
    }
    _expect(calls[reader], path, 5, None, "broken JSON")


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "x.jsonl", [TRL_GOOD, "[1, 2, 3]"])
    _expect(lambda: read_trl(path), path, 2, None, "expected a JSON object, got list")


def test_broken_json_list_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[\n  {"prompt": "a", "chosen": "b", "rejected": "c"},\n  {"prompt": oops}\n]\n', encoding="utf-8")
    _expect(lambda: read_trl(path), path, 3, None, "broken JSON")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps([TRL_GOOD, {**TRL_GOOD, "chosen": ""}]), encoding="utf-8")
    _expect(lambda: read_trl(ok), ok, 2, "chosen", "text is empty")


# ---------------------------------------------------------------------------------------------- missing / empty
def test_hh_missing_field(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "hh.jsonl", [HH_GOOD, {"chosen": HH_GOOD["chosen"]}])
    _expect(lambda: read_hh_rlhf(path), path, 2, "rejected", "missing field")


def test_hh_null_and_non_text_fields(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "hh.jsonl", [HH_GOOD, HH_GOOD, {"chosen": None, "rejected": "x"}])
    _expect(lambda: read_hh_rlhf(path), path, 3, "chosen", "null")
    path = _jsonl(tmp_path / "hh2.jsonl", [{"chosen": HH_GOOD["chosen"], "rejected": 5}])
    _expect(lambda: read_hh_rlhf(path), path, 1, "rejected", "expected text, got int")


def test_hh_empty_final_turn_and_no_shared_turn(tmp_path: Path) -> None:
    empty = {"chosen": HH_GOOD["chosen"], "rejected": "\n\nHuman: Is the sky blue?\n\nAssistant:   "}
    path = _jsonl(tmp_path / "hh.jsonl", [HH_GOOD, empty, HH_GOOD])
    _expect(lambda: read_hh_rlhf(path), path, 2, "rejected", "final assistant turn is empty")
    ds = read_hh_rlhf(path, on_empty="skip")
    assert len(ds.comparisons) == 2
    _assert_note(ds.notes, path, 1, "empty final assistant turn", "2")

    unshared = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: c\n\nAssistant: d"}
    path = _jsonl(tmp_path / "hh2.jsonl", [unshared])
    _expect(lambda: read_hh_rlhf(path), path, 1, "chosen", "no prompt can be split off")


def test_trl_missing_and_empty_fields(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "t.jsonl", [TRL_GOOD, {"prompt": "p", "rejected": "r"}])
    _expect(lambda: read_trl(path), path, 2, "chosen", "missing field")
    path = _jsonl(tmp_path / "t2.jsonl", [TRL_GOOD, TRL_GOOD, {**TRL_GOOD, "rejected": "  \n "}])
    _expect(lambda: read_trl(path), path, 3, "rejected", "text is empty")
    path = _jsonl(tmp_path / "t3.jsonl", [{**TRL_GOOD, "prompt": ""}])
    _expect(lambda: read_trl(path), path, 1, "prompt", "text is empty")


def test_trl_malformed_messages() -> None:
    user = {"role": "user", "content": "hi"}
    _expect(
        lambda: trl_from_rows([{"prompt": [user, {"role": "assistant"}], "chosen": "a", "rejected": "b"}], name="mem"),
        "mem", 1, "prompt[1]", "'role' and 'content'",
    )
    _expect(
        lambda: trl_from_rows([{"prompt": [user], "chosen": [{"role": "assistant", "content": 3}], "rejected": "b"}]),
        "trl", 1, "chosen[0].content", "must be text",
    )
    _expect(
        lambda: trl_from_rows([{"prompt": [], "chosen": "a", "rejected": "b"}]),
        "trl", 1, "prompt", "non-empty list",
    )
    _expect(
        lambda: trl_from_rows([
            TRL_GOOD,
            {
                "chosen": [user, {"role": "assistant", "content": "x"}],
                "rejected": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "y"}],
            },
        ]),
        "trl", 2, "prompt", "share no first turn",
    )
    _expect(
        lambda: trl_from_rows([{"chosen": "just text", "rejected": "other text"}]),
        "trl", 1, "prompt", "no 'prompt' field",
    )
    _expect(
        lambda: trl_from_rows([{"prompt": "p", "chosen": [{"role": "assistant", "content": " "}], "rejected": "b"}]),
        "trl", 1, "chosen", "text is empty",
    )


def test_mapped_empty_cell_and_missing_nested_field(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("input,output_1,output_2,label\nq1,x,y,1\nq2,x,y,2\nq3,x,,1\n", encoding="utf-8")
    _expect(lambda: read_mapped(path, ColumnMapping.parse(PAIR_MAP)), path, 3, "output_2", "text is empty")
    short = tmp_path / "short.csv"
    short.write_text("input,output_1,output_2,label\nq1,x,y,1\nq2,x\n", encoding="utf-8")
    _expect(lambda: read_mapped(short, ColumnMapping.parse(PAIR_MAP)), short, 2, "output_2", "null")

    nested = _jsonl(
        tmp_path / "n.jsonl",
        [
            {"q": "a", "m": {"solution": "s", "ok": True}},
            {"q": "b", "m": {"solution": "t"}},
        ],
    )
    mapping = ColumnMapping.parse("prompt=q,response=m.solution,correct=m.ok")
    _expect(lambda: read_mapped(nested, mapping), nested, 2, "m.ok", "missing field")


def test_mapped_bad_numbers_and_booleans(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("q,r,s\nq1,a,1.5\nq2,b,high\n", encoding="utf-8")
    _expect(
        lambda: read_mapped(path, ColumnMapping.parse("prompt=q,response=r,rating=s")),
        path, 2, "s", "expected a number, got 'high'",
    )
    path.write_text("q,r,s\nq1,a,nan\n", encoding="utf-8")
    _expect(lambda: read_mapped(path, ColumnMapping.parse("prompt=q,response=r,rating=s")), path, 1, "s", "finite")
    path.write_text("q,r,s\nq1,a,2\nq2,b,\n", encoding="utf-8")
    _expect(lambda: read_mapped(path, ColumnMapping.parse("prompt=q,response=r,rating=s")), path, 2, "s", "missing")
    path.write_text("q,r,s\nq1,a,yes\nq2,b,maybe\n", encoding="utf-8")
    _expect(
        lambda: read_mapped(path, ColumnMapping.parse("prompt=q,response=r,correct=s")),
        path, 2, "s", "expected true/false, got 'maybe'",
    )


# ---------------------------------------------------------------------------------------------- encoding
@pytest.mark.parametrize("name", ["bad.jsonl", "bad.jsonl.gz"])
def test_non_utf8_jsonl_names_the_row(tmp_path: Path, name: str) -> None:
    lines = [json.dumps(TRL_GOOD).encode(), json.dumps(TRL_GOOD).encode(), b'{"prompt": "caf\xff", "chosen": "a"}']
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    _expect(lambda: read_trl(path), path, 3, None, "not valid UTF-8")
    _expect(lambda: load_feedback(path, format="trl"), path, 3, None, "not valid UTF-8")


def test_non_utf8_csv_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"input,output_1,output_2,label\nq1,x,y,1\nq2,x\xfe,y,1\nq3,x,y,2\n")
    _expect(lambda: read_mapped(path, ColumnMapping.parse(PAIR_MAP)), path, 2, None, "not valid UTF-8")


# ---------------------------------------------------------------------------------------------- identical pairs
def test_identical_pairs_are_skipped_and_counted_not_errors(tmp_path: Path) -> None:
    same_hh = {"chosen": HH_GOOD["chosen"], "rejected": HH_GOOD["chosen"]}
    path = _jsonl(tmp_path / "hh.jsonl", [HH_GOOD, same_hh, HH_GOOD, same_hh])
    ds = read_hh_rlhf(path)
    assert len(ds.comparisons) == 2
    _assert_note(ds.notes, path, 2, "identical", "2, 4")

    # same final answer after different whitespace: identical responses, also skipped
    padded = {"chosen": HH_GOOD["chosen"], "rejected": HH_GOOD["chosen"] + "  "}
    ds = read_hh_rlhf(_jsonl(tmp_path / "hh2.jsonl", [padded, HH_GOOD]))
    assert len(ds.comparisons) == 1
    _assert_note(ds.notes, tmp_path / "hh2.jsonl", 1, "responses are identical", "1")

    same_trl = {**TRL_GOOD, "rejected": TRL_GOOD["chosen"]}
    path = _jsonl(tmp_path / "t.jsonl", [same_trl, TRL_GOOD])
    ds = read_trl(path)
    assert len(ds.comparisons) == 1
    _assert_note(ds.notes, path, 1, "identical", "1")

    path = tmp_path / "pairs.csv"
    rows = "".join(f"q{i},x{i},{'x' if i % 4 == 0 else 'y'}{i},1\n" for i in range(1, 25))
    path.write_text("input,output_1,output_2,label\n" + rows, encoding="utf-8")
    ds = read_mapped(path, ColumnMapping.parse(PAIR_MAP))
    assert len(ds.comparisons) == 18
    _assert_note(ds.notes, path, 6, "identical", "4, 8, 12, 16, 20, 24")


def test_skipped_rows_note_is_abbreviated_after_ten(tmp_path: Path) -> None:
    same = {**TRL_GOOD, "rejected": TRL_GOOD["chosen"]}
    path = _jsonl(tmp_path / "t.jsonl", [TRL_GOOD] + [same] * 12)
    ds = read_trl(path)
    _assert_note(ds.notes, path, 12, "identical", "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...")


# ---------------------------------------------------------------------------------------------- mappings
def test_unknown_column_lists_the_files_columns(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("question,output_1,output_2,winner\nq,x,y,1\n", encoding="utf-8")
    err = _expect(
        lambda: read_mapped(path, ColumnMapping.parse(PAIR_MAP)), path, 1, "input",
        "unknown column 'input' (mapped from 'prompt')", "the file has: question, output_1, output_2, winner",
    )
    assert "label" not in err.reason.split("the file has:")[1]
    jl = _jsonl(tmp_path / "x.jsonl", [{"instruction": "i", "output": "o", "score": 1}])
    _expect(
        lambda: read_mapped(jl, ColumnMapping.parse("prompt=instruction,response=output,rating=preference")),
        jl, 1, "preference", "the file has: instruction, output, score",
    )
    _expect(
        lambda: read_mapped(jl, ColumnMapping.parse("prompt=instruction,response=gen.output,rating=score")),
        jl, 1, "gen.output", "unknown column 'gen.output'",
    )


def test_unknown_mapping_field_name() -> None:
    with pytest.raises(DataError) as info:
        ColumnMapping.parse("prompt=input,answer=output,rating=score")
    message = str(info.value)
    assert info.value.source == "--map"
    assert "unknown mapping field 'answer'" in message
    for known in ("prompt", "chosen", "rejected", "a", "b", "label", "response", "rating", "correct", "model"):
        assert f" {known}" in message.split("known fields:")[1]
    with pytest.raises(DataError, match="is not field=column"):
        ColumnMapping.parse("prompt=input,output")
    with pytest.raises(DataError, match="must map to a, b or tie"):
        ColumnMapping.parse(PAIR_MAP, label_values="0=a,1=left")


def test_unknown_label_value(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    _jsonl(
        path,
        [
            {"input": "q1", "output_1": "x", "output_2": "y", "label": 1},
            {"input": "q2", "output_1": "x", "output_2": "y", "label": "B"},
            {"input": "q3", "output_1": "x", "output_2": "y", "label": "Tie"},
            {"input": "q4", "output_1": "x", "output_2": "y", "label": 3},
        ],
    )
    err = _expect(
        lambda: read_mapped(path, ColumnMapping.parse(PAIR_MAP)), path, 4, "label", "label value 3 is not one of",
    )
    assert "1->a" in err.reason and "2->b" in err.reason
    ds = read_mapped(path, ColumnMapping.parse(PAIR_MAP), limit=3)
    assert [c.outcome for c in ds.comparisons] == ["a", "b", "tie"]
    # with an override the defaults no longer apply
    _expect(
        lambda: read_mapped(path, ColumnMapping.parse(PAIR_MAP, label_values="1=b,3=a")), path, 2, "label", "'B'",
    )


# ---------------------------------------------------------------------------------------------- files
def test_file_level_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    _expect(lambda: read_trl(missing), missing, None, None, "file not found")
    txt = tmp_path / "data.txt"
    txt.write_text("hello", encoding="utf-8")
    _expect(lambda: read_trl(txt), txt, None, None, "unknown file type", ".jsonl")
    empty = tmp_path / "empty.csv"
    empty.write_text("input,output_1,output_2,label\n", encoding="utf-8")
    _expect(lambda: read_mapped(empty, ColumnMapping.parse(PAIR_MAP)), empty, None, None, "file has no rows")
    _expect(lambda: load_feedback(empty), empty, None, None, "file has no rows")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet")
    _expect(lambda: read_trl(garbage), garbage, None, None, "cannot read Parquet")
    wide = tmp_path / "wide.csv"
    wide.write_text("input,output_1,output_2,label\nq,x,y,1\nq,x,y,1,extra\n", encoding="utf-8")
    _expect(lambda: read_mapped(wide, ColumnMapping.parse(PAIR_MAP)), wide, 2, None, "more cells than the header")
