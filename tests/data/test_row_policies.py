"""Row policies for every reader: ``on_empty`` for an empty response, ``on_error`` for any other unreadable row.

The trial that prompted them (issue 15, item 6): `--on-empty skip` worked for HH files only, and one JSON boolean
where text belongs stopped a whole read. Skipped rows are counted in ``notes`` and named, never dropped silently.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from rewardlab.data.load import load_feedback
from rewardlab.data.mapping import ColumnMapping, read_mapped
from rewardlab.data.records import dataset_title, iter_records
from rewardlab.data.registry import read_gsm8k_solutions
from rewardlab.data.source import load_source
from rewardlab.data.trl import read_trl, trl_from_rows
from rewardlab.errors import DataError

HH_PAIR = {"chosen": "\n\nHuman: hi\n\nAssistant: hello there", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def trl_rows() -> list[Any]:
    return [
        {"prompt": "p1", "chosen": "good", "rejected": "bad"},
        {"prompt": "p2", "chosen": True, "rejected": "bad"},  # a JSON boolean where text belongs
        {"prompt": "p3", "chosen": "  ", "rejected": "bad"},  # an empty response
        {"prompt": "p4", "rejected": "bad"},  # a missing field
        "{broken",  # not JSON at all
        {"prompt": "p6", "chosen": "fine", "rejected": "poor"},
    ]


def test_trl_stops_at_the_first_bad_row_by_default_naming_file_row_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "prefs.jsonl", trl_rows())
    with pytest.raises(DataError, match=r"prefs.jsonl, row 2, field 'chosen': expected text, got bool"):
        load_feedback(path)


def test_trl_skips_empty_responses_and_bad_rows_when_asked(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "prefs.jsonl", trl_rows())
    # on_empty alone: the empty response is skipped, the boolean still stops the read
    with pytest.raises(DataError, match="row 2"):
        load_feedback(path, on_empty="skip")
    dataset = load_feedback(path, on_empty="skip", on_error="skip")
    assert sorted(c.meta["row"] for c in dataset.comparisons) == [1, 6]
    assert len(dataset.prompts) == 2 and len(dataset.responses) == 4  # a skipped row leaves nothing behind
    assert f"{path}: skipped 1 row(s) whose 'chosen' text is empty (rows 3)" in dataset.notes
    (bad,) = [note for note in dataset.notes if "bad row" in note]
    assert "skipped 3 bad row(s) (on_error='skip')" in bad
    assert "row 2 field 'chosen': expected text, got bool" in bad and "row 4 field 'chosen': missing field" in bad
    assert "row 5: broken JSON" in bad


def test_on_empty_error_with_on_error_skip_counts_an_empty_response_as_a_bad_row(tmp_path: Path) -> None:
    dataset = load_feedback(write_jsonl(tmp_path / "prefs.jsonl", trl_rows()), on_error="skip")
    assert len(dataset.comparisons) == 2
    assert any("skipped 4 bad row(s)" in note and "row 3 field 'chosen': text is empty" in note for note in dataset.notes)


def test_trl_rows_in_memory_take_the_policies() -> None:
    rows = [{"prompt": "p", "chosen": "a", "rejected": ""}, {"prompt": "q", "chosen": "a", "rejected": "b"}]
    with pytest.raises(DataError, match="row 1, field 'rejected': text is empty"):
        trl_from_rows(rows)
    assert len(trl_from_rows(rows, on_empty="skip").comparisons) == 1


def test_hh_skips_bad_rows_and_broken_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "hh.jsonl", [HH_PAIR, {"chosen": 3, "rejected": "x"}, "[1, 2]", HH_PAIR])
    with pytest.raises(DataError, match=r"row 2, field 'chosen': expected text, got int"):
        load_feedback(path, format="hh")
    dataset = load_feedback(path, format="hh", on_error="skip")
    assert [c.meta["row"] for c in dataset.comparisons] == [1, 4]
    assert any("skipped 2 bad row(s)" in note and "row 3: expected a JSON object, got list" in note
               for note in dataset.notes)


def test_mapped_files_skip_bad_labels_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("q,x,y,l\np1,one,two,1\np2,one,two,7\np3,one,two,2\np4,a,b,1,extra\n", encoding="utf-8")
    mapping = ColumnMapping(prompt="q", a="x", b="y", label="l")
    with pytest.raises(DataError, match=r"row 2, field 'l': label value '7'"):
        read_mapped(path, mapping)
    dataset = read_mapped(path, mapping, on_error="skip")
    assert [c.outcome for c in dataset.comparisons] == ["a", "b"]
    assert len(dataset.prompts) == 2  # the bad rows added no prompt
    (note,) = dataset.notes
    assert "skipped 2 bad row(s)" in note and "row 2 field 'l'" in note and "row 4: row has more cells" in note

    ratings = write_jsonl(tmp_path / "ratings.jsonl", [{"q": "a", "r": "x", "s": "high"}, {"q": "b", "r": "y", "s": 2}])
    rated = read_mapped(ratings, ColumnMapping(prompt="q", response="r", rating="s"), on_error="skip")
    assert [r.value for r in rated.ratings] == [2.0] and len(rated.responses) == 1


def test_a_mapping_mistake_stays_an_error_when_skipping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ratings.jsonl", [{"q": "a", "s": 3}])
    with pytest.raises(DataError, match="unknown column 'r'"):
        read_mapped(path, ColumnMapping(prompt="q", response="r", rating="s"), on_error="skip")


def test_gsm8k_solutions_take_both_policies(tmp_path: Path) -> None:
    def item(question: str, solution: str, correct: Any) -> dict[str, Any]:
        return {"question": question, "m1": {"solution": solution, "is_correct": correct}}

    path = tmp_path / "solutions.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in (item("q1", "42", True), item("q2", "", False), item("q3", "7", "maybe"), item("q4", "9", False)):
            handle.write(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"row 2, field 'm1.solution': text is empty"):
        read_gsm8k_solutions(path)
    dataset = read_gsm8k_solutions(path, on_empty="skip", on_error="skip")
    assert [label.correct for label in dataset.labels] == [True, False] and len(dataset.prompts) == 2
    assert any("'m1.solution' text is empty (rows 2)" in note for note in dataset.notes)
    assert any("row 3 field 'm1.is_correct'" in note for note in dataset.notes)


def test_bad_policy_values_and_the_note_shows_only_a_few_examples(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "prefs.jsonl", [{"prompt": "p", "chosen": i, "rejected": "b"} for i in range(5)])
    with pytest.raises(DataError, match="on_error must be one of error, skip, not 'drop'"):
        load_source(path, on_error="drop")
    dataset = load_source(path, on_error="skip")
    (note,) = dataset.notes
    assert "skipped 5 bad row(s)" in note and "row 3 field" in note and "row 4 field" not in note and note.endswith("...")


def test_named_datasets_take_on_error() -> None:
    assert len(load_source("hh-harmless-demo", limit=50, on_error="skip").comparisons) == 50


def test_a_generic_file_name_is_titled_by_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "Natural"
    folder.mkdir()
    path = folder / "dataset.json"
    path.write_text(json.dumps([{"prompt": "p", "chosen": "a", "rejected": "b"}]), encoding="utf-8")
    assert dataset_title(path) == "Natural/dataset.json"
    assert load_feedback(path).name == "Natural/dataset.json"
    hh = write_jsonl(folder / "test.jsonl", [HH_PAIR])
    assert load_feedback(hh).name == "Natural/test.jsonl"
    assert dataset_title(folder / "prefs.jsonl.gz") == "prefs.jsonl.gz"  # a telling name stays as it is


def test_iter_records_reports_broken_rows_to_a_callback(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"a": 1}, "{nope", {"a": 3}])
    seen: list[DataError] = []
    assert [row for row, _ in iter_records(path, on_bad=seen.append)] == [1, 3]
    assert [error.row for error in seen] == [2]
    with pytest.raises(DataError, match="row 2: broken JSON"):
        list(iter_records(path))


def test_read_trl_names_its_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "prefs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert read_trl(path).name == "prefs.jsonl"
