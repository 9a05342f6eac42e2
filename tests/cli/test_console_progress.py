"""`reading_progress`: a bar for the record files read in its block, none with --quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.cli import console
from rewardlab.data import streaming
from rewardlab.data.records import iter_records


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"i": i, "text": "x" * 50}) + "\n" for i in range(300)))
    return path


def test_quiet_reads_with_no_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with console.reading_progress(quiet=True):
        assert streaming.READ_PROGRESS.get() is None
        assert len(list(iter_records(_file(tmp_path)))) == 300
    assert capsys.readouterr().err == ""


def test_a_bar_follows_the_read_to_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "PROGRESS_EVERY", 10)
    made: list[console.Bars] = []

    class Kept(console.Bars):
        def __init__(self, quiet: bool) -> None:
            super().__init__(quiet)
            made.append(self)

    monkeypatch.setattr(console, "Bars", Kept)
    path = _file(tmp_path)
    with console.reading_progress(quiet=False):
        list(iter_records(path))
    assert streaming.READ_PROGRESS.get() is None  # reset after the block
    assert made and made[0].progress is not None
    task = made[0].progress.tasks[0]
    assert task.completed == task.total == streaming.kb(path.stat().st_size)
