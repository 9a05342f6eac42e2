"""ConvAbuse: every (annotator, item) row of the long file is one ordinal `Rating` of a user turn, annotator kept."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path

import pytest

from rewardlab.data.convabuse import SCALE, read_convabuse
from rewardlab.data.registry import load_named
from rewardlab.errors import DataError

COLUMNS = ["example_no", "annotator_id", "conv_id", "prev_agent", "prev_user", "agent", "user", "bot", "is_abuse.1",
           "is_abuse.0", "is_abuse.-1", "is_abuse.-2", "is_abuse.-3", "type.sexist", "target.individual"]


def test_the_real_file_gives_every_rating_with_its_annotator(shared_data_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_data_dir / "convabuse").is_dir():
        pytest.skip(f"no convabuse under {shared_data_dir}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    data = load_named("convabuse")
    assert len(data.ratings) == 12768
    assert ["repeat an earlier row" in note for note in data.notes] == [True]  # repeated judgements are kept
    assert Counter(r.value for r in data.ratings) == {1.0: 10068, 0.0: 671, -1.0: 813, -2.0: 934, -3.0: 282}
    assert {r.annotator_id for r in data.ratings} == {f"Annotator{i}" for i in range(1, 9)}
    assert all(r.scale == SCALE for r in data.ratings)
    first = data.ratings[0]
    response = data.responses[first.response_id]
    assert response.text == "do you rember japan" and response.source == "E.L.I.Z.A."
    assert data.prompts[response.prompt_id].text == ("Agent: Does that question interest you?\n"
                                                     "User: because my finger is happy\n"
                                                     "Agent: Why do you say your finger is happy?")
    assert first.meta["conv_id"] == "245846.0" and first.meta["flags"] == []
    assert any("type.sexist" in r.meta["flags"] for r in data.ratings)
    assert len(load_named("convabuse", limit=10).ratings) == 10


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "0") for c in COLUMNS})
    return path


def row(**values: str) -> dict[str, str]:
    base = {"example_no": "0", "annotator_id": "Annotator1", "conv_id": "7", "prev_agent": "Hello.", "prev_user": "hi",
            "agent": "How are you?", "user": "fine thanks", "bot": "CarbonBot", "is_abuse.1": "1"}
    return {**base, **values}


def test_bad_rows_are_errors_naming_row_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "ConvAbuseEMNLPfull.csv.gz",
                 [row(), row(**{"is_abuse.1": "0"}), row(**{"is_abuse.-2": "1"}), row(**{"type.sexist": "yes"}),
                  row(annotator_id=""), row(user=" "), row(**{"is_abuse.1": "0", "is_abuse.-3": "1"})])
    with pytest.raises(DataError, match=r"row 2, field 'is_abuse': expected exactly one .* found 0"):
        read_convabuse(path)
    data = read_convabuse(tmp_path, on_empty="skip", on_error="skip")  # the folder finds the file
    assert [r.value for r in data.ratings] == [1.0, -3.0]
    notes = " ".join(data.notes)
    assert "skipped 1 row(s) whose 'user' text is empty (rows 6)" in notes
    assert "skipped 4 bad row(s)" in notes and "found 2 (is_abuse.1, is_abuse.-2)" in notes
    with pytest.raises(DataError, match="row 4, field 'type.sexist': expected 0 or 1"):
        read_convabuse(write(tmp_path / "b.csv.gz", [row(), row(), row(), row(**{"type.sexist": "yes"})]))
    with pytest.raises(DataError, match="row 1, field 'annotator_id': text is empty"):
        read_convabuse(write(tmp_path / "c.csv.gz", [row(annotator_id=" ")]))
