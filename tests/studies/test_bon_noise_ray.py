"""The noise study's fits, ensemble members included, as Ray tasks (`run_study(ray=...)`, `experiment bon-noise
--ray`): the same record as the serial run, times aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import run  # noqa: E402
from rewardlab.studies.bon_noise import BonNoiseConfig, run_study  # noqa: E402


def _text(value: Any) -> str:
    """``value`` without its times, as JSON text (NaN, which the record has where a correlation is undefined, is
    equal to itself there)."""
    return json.dumps(_without_times(value), sort_keys=True, default=str)


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if "second" not in k and k != "timing"}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_the_study_on_ray_gives_the_serial_record(shared_data: Path, monkeypatch: pytest.MonkeyPatch, local_ray,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    settings = {"betas": (3.0,), "budgets": (200,), "pairings": ("same-prompt",), "learners": ("bt-linear", "clf-logistic"),
                "seeds": 1, "ensemble_learners": ("bt-linear",), "ensemble_members": 3, "ensemble_budget": 200,
                "ensemble_pairing": "same-prompt", "n_resamples": 100, "limit_prompts": 20, "encoder": "hashing:64"}
    serial = run_study(BonNoiseConfig(**settings))
    steps: list[tuple[str, int, int]] = []
    on_ray = run_study(BonNoiseConfig(**settings), on_step=lambda *step: steps.append(step), ray="local")
    assert _text(on_ray) == _text(serial)
    assert steps == [("β=3 n=200 same-prompt bt-linear seed 0", 3, 4),  # its 3 ensemble members report as one step
                     ("β=3 n=200 same-prompt clf-logistic seed 0", 4, 4)]
    (ensemble,) = on_ray["ensembles"]
    assert ensemble["members"] == 3

    config = tmp_path / "study.json"
    config.write_text(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}))
    code, output = run("experiment", "bon-noise", "--config", str(config), "--out", str(tmp_path / "r"), "--ray",
                       "local", "--quiet")
    assert code == 0, output
    from_cli = json.loads((tmp_path / "r" / "results.json").read_text())
    assert _text(from_cli["grid"]) == _text(json.loads(json.dumps(serial["grid"])))
