"""The Prompt-OIRL study on a slice of the real logs: every subset of prompts, and its report."""

from __future__ import annotations

from dataclasses import asdict
from math import comb
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.prompt_logs import read_prompt_oirl
from rewardlab.optimize.prompt_opt import embed_logs
from rewardlab.report import write_report
from rewardlab.studies.prompt_oirl import OirlConfig, build_report, llama_confidence, run_split


@pytest.fixture
def oirl_dir(shared_data: Path) -> Path:
    return shared_data / "prompt-oirl"


def test_subsets_are_enumerated_exactly_and_reported(oirl_dir: Path, tmp_path: Path) -> None:
    logs = read_prompt_oirl("gsm8k", oirl_dir)
    keep = np.concatenate([logs.rows("train")[:300], logs.rows("test")[:120]])
    small = logs.take(keep)
    q, p = embed_logs(small, "hashing:64")
    confidence = llama_confidence(oirl_dir, "gsm8k", 1000, 16)[:120]
    config = OirlConfig(datasets=("gsm8k",), splits=("paper",), ks=(1, 2, 3, 6), n_resamples=100, encoder="hashing:64")
    result = run_split(small, small.split, q, p, confidence, config)
    for k, entry in result["by_k"].items():
        assert entry["subsets"] == comb(6, int(k))
        for method in ("best_prompt", "self_confidence", "ours", "ours_heldout", "oracle_k"):
            assert 0 <= entry[method]["value"] <= result["oracle_16"]["value"] + 1e-12
        assert entry["ours"]["value"] <= entry["oracle_k"]["value"] + 1e-12
    assert result["by_k"]["1"]["ours"]["value"] == pytest.approx(result["by_k"]["1"]["best_prompt"]["value"])
    assert result["train_prompts"] == [0, 1, 2, 3, 4, 5] and result["heldout_prompts"] == list(range(6, 16))

    record = {"kind": "prompt-oirl", "config": asdict(config), "seconds": 1.0,
              "datasets": {"gsm8k": {"rows": len(small.queries), "embed_seconds": 0.1, "paper": result}}}
    path = write_report(build_report(record), tmp_path, record)
    md = path.read_text(encoding="utf-8")
    assert path.name == "table.md" and (tmp_path / "results.json").exists()
    ours = result["by_k"]["6"]["ours"]
    assert "| 6 | " in md and f"**{ours['value']:.3f} [{ours['ci_low']:.3f}, {ours['ci_high']:.3f}]**" in md
    assert "## Against the paper (its split)" in md and "| gsm8k | 6 |" in md
    assert "| encoder | hashing:64 |" in md  # the settings the table was made with
