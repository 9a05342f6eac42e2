"""The recipe study's fits as Ray tasks (`run_study(ray=...)`, `experiment rm-recipes --ray`): the same record as
the serial run, times aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import run  # noqa: E402
from rewardlab.studies.rm_recipes import make_config, run_study  # noqa: E402
from rewardlab.studies.rm_recipes_report import RECORD  # noqa: E402
from synthetic import tiny_recipe_study  # noqa: E402

RECIPES = ("interaction", "joint+debias", "interaction+off-topic")



@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Two small synthetic sets; three recipes (one augmented) of 5 epochs, two heads."""
    return tiny_recipe_study(tmp_path, monkeypatch, RECIPES)


def _numbers(record: dict[str, Any]) -> str:
    """The record without what may differ between runs: times, the machine, where the fits ran."""
    kept = {k: v for k, v in record.items() if k not in ("timing", "machine")}
    kept["fits"] = [{k: v for k, v in fit.items() if k != "seconds"} for fit in record["fits"]]
    return json.dumps(kept, sort_keys=True, default=str)


def test_the_study_on_ray_gives_the_serial_record(local_ray, tiny: dict[str, Any], tmp_path: Path) -> None:
    serial = run_study(make_config(tiny))
    steps: list[tuple[str, int, int]] = []
    on_ray = run_study(make_config(tiny), on_step=lambda *step: steps.append(step), ray="local")
    assert _numbers(on_ray) == _numbers(serial)
    assert on_ray["timing"]["fits_on"] == "Ray tasks (local)" and serial["timing"]["fits_on"] == "this process"
    assert [s[1:] for s in steps] == [(i, 12) for i in range(1, 13)]
    assert steps[0][0] == "cooking interaction bt-linear"  # the serial order
    assert any(fit["augmented_pairs"] for fit in on_ray["fits"])  # the augmented recipe ran on Ray too

    code, output = run("experiment", "rm-recipes", "--sets", ",".join(tiny["sets"]), "--recipes", ",".join(RECIPES),
                       "--heads", "bt-linear,bt-mlp", "--encoder", "hashing:64", "--probe", "", "--resamples", "50",
                       "--speed-probe", "", "--out", str(tmp_path / "report"), "--ray", "local", "--quiet")
    assert code == 0, output
    from_cli = json.loads((tmp_path / "report" / RECORD).read_text())
    assert json.loads(_numbers(from_cli))["transfers"] == json.loads(_numbers(serial))["transfers"]
