"""Empty responses: a named dataset brings its own policy (the README's `train alpaca-eval-ratings` stopped at row
18574); `on_empty` overrides it, and mapped files honour it too. Skipped rows are counted, never dropped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardlab.data.load import load_feedback
from rewardlab.data.mapping import ColumnMapping
from rewardlab.data.registry import REGISTRY, load_named
from rewardlab.data.source import load_source
from rewardlab.errors import DataError


def test_alpaca_eval_ratings_skips_its_empty_outputs_by_default(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    assert REGISTRY["alpaca-eval-ratings"].on_empty == "skip"
    dataset = load_named("alpaca-eval-ratings", limit=18600)
    assert len(dataset.ratings) == 18600 - 2  # rows 18574 and 18597 have an empty output
    assert any("skipped 2 row(s) whose 'output' text is empty (rows 18574, 18597)" in note for note in dataset.notes)
    # the CLI path (a name, no --on-empty) is the same; --on-empty error brings the error back, naming the row
    assert len(load_source("alpaca-eval-ratings", limit=18600).ratings) == 18598
    with pytest.raises(DataError, match=r"row 18574.*'output'.*text is empty"):
        load_source("alpaca-eval-ratings", on_empty="error", limit=18600)


def test_named_datasets_take_on_empty(tmp_path: Path) -> None:
    demo = load_named("hh-harmless-demo")  # its own policy: skip the 4 pairs with an empty final turn
    assert len(demo.comparisons) == 2308 and any("empty final assistant turn" in note for note in demo.notes)
    with pytest.raises(DataError, match="row 87"):
        load_named("hh-harmless-demo", on_empty="error")
    with pytest.raises(DataError, match="on_empty must be one of error, skip"):
        load_source("hh-harmless-demo", on_empty="drop")


def test_mapped_files_skip_empty_responses_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    rows = [{"q": "a", "r": "fine", "s": 3}, {"q": "b", "r": "  ", "s": 1}, {"q": "c", "r": "good", "s": 5}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mapping = ColumnMapping(prompt="q", response="r", rating="s")
    with pytest.raises(DataError, match=r"row 2, field 'r'.*text is empty"):
        load_feedback(path, mapping=mapping)
    dataset = load_feedback(path, mapping=mapping, on_empty="skip")
    assert [r.value for r in dataset.ratings] == [3, 5]
    assert dataset.notes == [f"{path}: skipped 1 row(s) whose 'r' text is empty (rows 2)"]
    # the file reader defaults to an error; a missing field stays an error even when skipping
    assert len(load_source(path, mapping="prompt=q,response=r,rating=s", on_empty="skip").ratings) == 2
    path.write_text(json.dumps({"q": "a", "s": 3}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown column 'r'"):
        load_feedback(path, mapping=mapping, on_empty="skip")


@pytest.mark.parametrize("command", ["train", "evaluate", "embed"])
def test_the_cli_leaves_the_choice_to_the_dataset_unless_told(command: str) -> None:
    """`--on-empty` defaults to None (a file: error; a dataset name: its own policy), not to a blanket "error"
    that would stop `rewardlab train alpaca-eval-ratings` at row 18574 again."""
    import typer

    from rewardlab.cli import app

    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}  # type: ignore[attr-defined]
    assert params["on_empty"].default is None
