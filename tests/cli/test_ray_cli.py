"""`quickstart --ray` and `evaluate --ray` run their fits as Ray tasks and print the numbers of the serial run; an
address where nothing answers is one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import demo_lines, run  # noqa: E402


def _numbers(record: dict[str, Any]) -> dict[str, Any]:
    """A record's learners without their times (the only part allowed to differ)."""
    return {name: {k: v for k, v in learner.items() if "second" not in k} for name, learner in record["learners"].items()}


def test_quickstart_on_ray_gives_the_serial_numbers(local_ray, tmp_path: Path) -> None:
    records = []
    for extra in ([], ["--ray", "local"]):
        runs = tmp_path / ("ray" if extra else "serial")
        code, output = run("quickstart", "--encoder", "hashing:64", "--limit", "120", "--folds", "2", "--workers", "1",
                           "--runs", str(runs), "--cache-dir", str(tmp_path / "cache"), "--quiet", *extra)
        assert code == 0, output
        (run_dir,) = list(runs.iterdir())
        records.append(json.loads((run_dir / "record.json").read_text()))
    assert _numbers(records[1]) == _numbers(records[0])
    assert len(records[0]["learners"]) == 5


def test_evaluate_on_ray_writes_the_serial_predictions(local_ray, tmp_path: Path) -> None:
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(demo_lines(100)), encoding="utf-8")
    files = []
    for extra in ([], ["--ray", "local"]):
        predictions = tmp_path / f"predictions{len(extra)}.jsonl"
        code, output = run("evaluate", str(data), "--heads", "bt-linear,clf-lgbm", "--folds", "3", "--encoder",
                           "hashing:64", "--on-empty", "skip", "--workers", "1", "--cache-dir", str(tmp_path / "cache"),
                           "--predictions", str(predictions), "--quiet", *extra)
        assert code == 0, output
        files.append(predictions.read_bytes())
    assert files[1] == files[0] and files[0]


def test_an_unreachable_address_is_one_line(tmp_path: Path) -> None:
    code, output = run("quickstart", "--encoder", "hashing:64", "--limit", "40", "--folds", "2", "--runs",
                       str(tmp_path), "--quiet", "--ray", "127.0.0.1:9")
    assert code != 0
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in output
    assert "Traceback" not in output and len(output.strip().splitlines()) <= 2
