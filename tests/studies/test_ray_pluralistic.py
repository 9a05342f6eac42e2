"""The pluralistic study's fits as Ray tasks (`experiment pluralistic --ray`, `run_study(ray=...)`): the same record
as the serial run, times aside (minority and careless questions, WMT raters, ConvAbuse annotators)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import run  # noqa: E402
from rewardlab.studies.pluralistic import make_config, run_study  # noqa: E402

#: the smallest run that still has two seeds of every simulated fit, every WMT learner and the ConvAbuse head
SETTINGS: dict[str, Any] = {"encoder": "hashing:32", "prompts": 12, "pairs": 60, "careless_items": 30, "seeds": 2,
                            "aware_learners": ["bt-mlp-annotator"], "n_resamples": 50, "wmt_segments": 3,
                            "convabuse_ratings": 300, "real_seeds": 1}


def _numbers(record: dict[str, Any]) -> str:
    """The record as JSON text without its times (NaN equals itself there)."""
    return json.dumps({k: v for k, v in record.items() if k != "timing"}, sort_keys=True, default=str)


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_the_study_on_ray_gives_the_serial_record(shared_data: Path, monkeypatch: pytest.MonkeyPatch, local_ray,
                                                  tmp_path: Path) -> None:
    for folder in ("alpaca-eval-weighted-gpt4-turbo", "wmt-mqm-human-evaluation", "convabuse"):
        if not (shared_data / folder).is_dir():
            pytest.skip(f"no {folder} under {shared_data}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    monkeypatch.setenv("REWARDLAB_CACHE_DIR", str(tmp_path / "cache"))  # so the Ray run embeds again, on Ray
    steps: list[tuple[int, int]] = []
    threads = torch.get_num_threads()
    serial = run_study(make_config(SETTINGS), on_step=lambda _, done, total: steps.append((done, total)))
    assert torch.get_num_threads() == threads  # each serial fit ran on one thread, as a Ray task does; then restored
    assert steps[-1] == (17, 17)  # 2 seeds × (unimodal, conditioned, minority-only, 3 careless) + 4 WMT + ConvAbuse
    (tmp_path / "study.json").write_text(json.dumps(SETTINGS))
    code, output = run("experiment", "pluralistic", "--config", str(tmp_path / "study.json"), "--out",
                       str(tmp_path / "report"), "--ray", "local", "--quiet")
    assert code == 0, output
    on_ray = json.loads((tmp_path / "report" / "results.json").read_text())
    assert _numbers(on_ray) == _numbers(json.loads(_numbers(serial)))
