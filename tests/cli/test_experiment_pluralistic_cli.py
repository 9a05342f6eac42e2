"""`rewardlab experiment pluralistic` end to end on a tiny candidate file (hashing encoder): record, findings, report,
and the report rendered again from its record alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cli_helpers import run
from rewardlab.report import render_markdown
from rewardlab.studies.pluralistic_report import build_report


def test_pluralistic_study_runs_and_reports(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pools = tmp_path / "pools.jsonl"
    with open(pools, "w", encoding="utf-8") as handle:
        for i in range(30):
            words = rng.integers(1, 6, size=4)
            handle.write(json.dumps({"prompt": f"question {i} about topic {i % 3}",
                                     "responses": [" ".join(["good"] * int(k)) + f" {i}.{j}" for j, k in enumerate(words)],
                                     "gold": [float(k) for k in words]}) + "\n")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"label_scale": "gold", "per_prompt": 4, "careless_items": 80, "n_resamples": 100,
                                    "aware_learners": ["bt-mlp-annotator"]}))
    out = tmp_path / "report"
    code, output = run("experiment", "pluralistic", "--candidates", str(pools), "--config", str(settings), "--prompts",
                       "30", "--pairs", "300", "--seeds", "1", "--encoder", "hashing:32", "--real", "", "--out", str(out),
                       "--quiet")  # simulated only: the real-data part has its own test (tests/studies)
    assert code == 0, output
    assert "minority accuracy" in output and "Dawid–Skene" in output
    record = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert record["data"]["pools"] == 30 and record["data"]["test_pools"] == 9
    minority = record["minority"]["against"]["preference"]["bt-mlp-annotator"]
    assert {"group:minority", "group:majority", "pooled", "macro", "worst"} <= set(minority)
    for stat in minority.values():
        assert abs(stat["difference"]["value"] - (stat["model"]["value"] - stat["baseline"]["value"])) < 1e-12
    assert "group:minority" in record["minority"]["against"]["label"]["bt-mlp-minority-only"]
    assert {f["verdict"] for f in record["findings"]} <= {"met", "not met", "not measurable (the loss's CI includes 0)"}
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "minority group" in text and "recovered share" in text
    assert render_markdown(build_report(record), {"people": "figures/people.png"}) == text
    assert (out / "figures" / "people.png").stat().st_size > 0
