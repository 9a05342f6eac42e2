"""The pluralistic study end to end on a tiny candidate file (hashing encoder): record, findings, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rewardlab.report import write_report
from rewardlab.studies.pluralistic import make_config, run_study
from rewardlab.studies.pluralistic_report import build_report


def test_study_runs_and_reports(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "pools.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(30):
            words = rng.integers(1, 6, size=4)
            handle.write(json.dumps({"prompt": f"question {i} about topic {i % 3}",
                                     "responses": [" ".join(["good"] * int(k)) + f" {i}.{j}" for j, k in enumerate(words)],
                                     "gold": [float(k) for k in words]}) + "\n")
    config = make_config({"candidates": str(path), "label_scale": "gold", "prompts": 30, "per_prompt": 4,
                          "encoder": "hashing:32", "pairs": 300, "careless_items": 80, "seeds": 1,
                          "n_resamples": 100, "aware_learners": ("bt-mlp-annotator",)})
    record = run_study(config)
    assert record["data"]["pools"] == 30 and record["data"]["test_pools"] == 9
    minority = record["minority"]["against"]["preference"]["bt-mlp-annotator"]
    assert {"group:minority", "group:majority", "pooled", "macro", "worst"} <= set(minority)
    for stat in minority.values():
        assert stat["difference"]["value"] == stat["model"]["value"] - stat["baseline"]["value"]
    assert {f["verdict"] for f in record["findings"]} <= {"met", "not met", "not measurable (nothing lost)"}
    json.dumps(record, allow_nan=True)
    report = write_report(build_report(record), tmp_path / "report", record)
    text = Path(report).read_text(encoding="utf-8")
    assert "minority group" in text and "Dawid–Skene" in text
