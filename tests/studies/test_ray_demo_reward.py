"""The demonstration-reward study's three reward models as Ray tasks (`experiment demo-reward --ray`,
`run_study(ray=...)`): the same record as the serial run, times aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import run  # noqa: E402
from rewardlab.optimize.sft import SftConfig  # noqa: E402
from rewardlab.studies.demo_reward import DemoRewardConfig, run_study  # noqa: E402


def _numbers(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "timing_seconds"}, sort_keys=True, default=str)


def test_the_study_on_ray_gives_the_serial_record(shared_data: Path, tiny_model: Path, local_ray, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hh = shared_data / "hh-rlhf-harmless-base-test" / "test.jsonl.gz"
    if not hh.exists():
        pytest.skip("shared HH-RLHF data not present")
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(tmp_path / "cache"))  # so the Ray run embeds, on Ray
    # the CLI's batch sizes and bootstrap, so that its run reuses these samples and this fine-tuned policy
    config = DemoRewardConfig(data=str(hh), train_prompts=16, model=str(tiny_model), max_new_tokens=6,
                              sft=SftConfig(steps=2, trainable_layers=1), encoder="hashing:64")
    serial = run_study(config, tmp_path / "run")
    (tmp_path / "cache").rename(tmp_path / "serial-cache")
    code, output = run("experiment", "demo-reward", "--data", str(hh), "--train-prompts", "16", "--model",
                       str(tiny_model), "--max-new-tokens", "6", "--sft-steps", "2", "--sft-layers", "1", "--encoder",
                       "hashing:64", "--out", str(tmp_path / "run"), "--ray", "local", "--quiet")
    assert code == 0, output
    assert (tmp_path / "cache").exists()  # embedded again, on Ray
    on_ray = json.loads((tmp_path / "run" / "results.json").read_text())
    assert _numbers(on_ray) == _numbers(json.loads(_numbers(serial)))
