"""The PRM study's fits (the ORM and a PRM per label mode) as Ray tasks (`experiment prm --ray`, `run_study(ray=...)`):
the same record as the serial run, times aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import run  # noqa: E402
from rewardlab.data.candidates import CANDIDATE_SOURCES  # noqa: E402
from rewardlab.data.registry import shared_data_dir  # noqa: E402
from rewardlab.studies.prm import make_config, run_study  # noqa: E402

GSM8K = shared_data_dir() / CANDIDATE_SOURCES["gsm8k"][0]


def _numbers(record: dict[str, Any]) -> str:
    """The record as JSON text without its times."""
    kept = {k: v for k, v in record.items() if k not in ("timing", "seconds")}
    kept["training"] = {name: {k: v for k, v in info.items() if "seconds" not in k}
                        for name, info in record["training"].items()}
    return json.dumps(kept, sort_keys=True, default=str)


@pytest.mark.skipif(not GSM8K.exists(), reason=f"the shared GSM8K pools are not at {GSM8K}")
def test_the_study_on_ray_gives_the_serial_record(local_ray, tmp_path: Path) -> None:
    settings = {"limit": 40, "encoder": "hashing:64", "n_resamples": 100}
    lines: list[str] = []
    serial = run_study(make_config(settings), str(tmp_path / "serial-cache"), log=lines.append)
    assert lines[-2:] == ["trained the PRM[computation] on " + lines[-2].rsplit(" on ", 1)[1],
                          "trained the PRM[computation+outcome] on " + lines[-1].rsplit(" on ", 1)[1]]
    code, output = run("experiment", "prm", "--limit", "40", "--encoder", "hashing:64", "--resamples", "100",
                       "--cache-dir", str(tmp_path / "ray-cache"), "--out", str(tmp_path / "report"), "--ray", "local",
                       "--quiet")
    assert code == 0, output
    assert any((tmp_path / "ray-cache").rglob("*")), "the Ray run embedded into its own cache"
    on_ray = json.loads((tmp_path / "report" / "results.json").read_text())
    assert _numbers(on_ray) == _numbers(json.loads(_numbers(serial)))
