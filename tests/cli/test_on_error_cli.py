"""`--on-error skip` through the shared data options: `train` gets past a bad row, counts it and says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli_helpers import demo_lines
from rewardlab.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 HH pairs as TRL rows, with a JSON boolean in row 5, a missing field in row 9 and a broken line at 12."""
    lines = [json.loads(line) for line in demo_lines(140)]
    rows: list[str] = []
    for record in lines:
        cut = record["chosen"].rfind("\n\nAssistant:")
        chosen, rejected = record["chosen"][cut + 12:].strip(), record["rejected"][cut + 12:].strip()
        if chosen and rejected and chosen != rejected and len(rows) < 120:
            rows.append(json.dumps({"prompt": record["chosen"][:cut], "chosen": chosen, "rejected": rejected}))
    rows[4] = json.dumps({"prompt": "p", "chosen": True, "rejected": "x"})
    rows[8] = json.dumps({"prompt": "p", "rejected": "x"})
    rows[11] = "{not json"
    path = tmp_path_factory.mktemp("data") / "broken.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_train_stops_at_a_bad_row_by_default(broken: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(broken), "--out", str(tmp_path / "m"), "--encoder", "hashing:64", "--quiet"])
    assert result.exit_code != 0
    assert "broken.jsonl, row 5, field 'chosen': expected text, got bool" in " ".join(result.output.split())


def test_train_skips_bad_rows_with_on_error_skip(broken: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(broken), "--out", str(tmp_path / "m"), "--encoder", "hashing:64",
                                 "--on-error", "skip", "--quiet"], terminal_width=250)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "skipped 3 bad row(s) (on_error='skip')" in output
    assert "row 5 field 'chosen': expected text, got bool" in output and "row 12: broken JSON" in output
    assert (tmp_path / "m" / "config.json").exists()


@pytest.mark.parametrize("command", ["train", "evaluate", "embed"])
def test_every_data_command_takes_on_error(command: str) -> None:
    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}  # type: ignore[attr-defined]
    assert params["on_error"].default == "error"
