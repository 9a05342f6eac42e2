"""The pluralistic study's real-data part: WMT23 MQM raters and ConvAbuse annotators, on a small limit (hashing
encoder), and the per-annotator ordinal thresholds it fits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Rating
from rewardlab.errors import RewardlabError
from rewardlab.report import render_markdown
from rewardlab.studies.pluralistic import make_config, run_study
from rewardlab.studies.pluralistic_real import conversation_split, fit_annotator_thresholds, level_probabilities
from rewardlab.studies.pluralistic_report import build_report

VERDICTS = {"better", "worse", "no difference resolved (CI includes 0)"}


def test_per_annotator_thresholds_recover_a_known_annotator() -> None:
    rng = np.random.default_rng(0)
    reward = rng.normal(scale=2.0, size=4000)
    truth, scale = np.array([-2.0, -0.5, 0.5, 2.5]), 1.5
    cdf = 1 / (1 + np.exp(-(truth[None, :] - scale * reward[:, None])))
    level = (rng.random(len(reward))[:, None] > cdf).sum(1)
    theta, fitted_scale = fit_annotator_thresholds(reward, level, population=np.array([-1.0, 0.0, 1.0, 2.0]))
    assert np.allclose(theta, truth, atol=0.25) and abs(fitted_scale - scale) < 0.15
    p = level_probabilities(reward[:5], theta)
    assert p.shape == (5, 5) and np.allclose(p.sum(1), 1.0)


def test_the_conversation_split_keeps_each_conversation_on_one_side() -> None:
    data = FeedbackDataset("tiny")
    for conv in range(20):
        for turn in range(3):
            pid = data.add_prompt(f"conversation {conv} before turn {turn}")
            rid = data.add_response(pid, f"turn {turn} of {conv}")
            for annotator in ("A1", "A2"):
                data.add(Rating(rid, 1.0, (-3.0, 1.0), annotator_id=annotator, meta={"conv_id": str(conv)}))
    test, cluster = conversation_split(data, 0.3)
    held = {cluster[pid] for pid in test}
    assert len(held) == 6 and len(test) == 18
    assert all((cluster[pid] in held) == (pid in test) for pid in data.prompts)


def test_real_settings_are_checked() -> None:
    with pytest.raises(RewardlabError, match="unknown real data set"):
        make_config({"real": ("wmt", "imdb")})
    with pytest.raises(RewardlabError, match="nothing to run"):
        make_config({"real": (), "simulated": False})


def test_the_real_data_part_runs_and_reports(shared_data: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in ("wmt-mqm-human-evaluation", "convabuse"):
        if not (shared_data / folder).is_dir():
            pytest.skip(f"no {folder} under {shared_data}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))
    config = make_config({"simulated": False, "encoder": "hashing:32", "wmt_segments": 12, "convabuse_ratings": 900,
                          "n_resamples": 100, "aware_learners": ("bt-mlp-annotator",)})
    steps: list[tuple[int, int]] = []
    record = run_study(config, on_step=lambda _, done, total: steps.append((done, total)))
    assert steps[-1] == (5, 5)  # 4 WMT learners (unimodal, conditioned, DS- and agreement-weighted) + the ordinal head
    wmt = record["real"]["wmt"]
    assert wmt["learners"] == ["bt-mlp", "bt-mlp-annotator", "bt-mlp+dawid-skene", "bt-mlp+agreement"]
    assert wmt["data"]["prompts"] == 24 and wmt["data"]["raters"] >= 6
    for stats in wmt["against_unimodal"].values():
        assert set(stats) == {"pooled", "macro", "worst"}
        for s in stats.values():
            assert abs(s["difference"]["value"] - (s["model"]["value"] - s["baseline"]["value"])) < 1e-12
            assert 0 <= s["model"]["value"] <= 1 and s["difference"]["n"] > 0
    assert set(wmt["per_rater"]["bt-mlp"]) == {r for r in wmt["per_rater"]["bt-mlp-annotator"]}
    assert set(wmt["reliability"]) == {"dawid-skene", "agreement"}
    assert "bt-mlp-annotator" in wmt["split_calibration"]
    abuse = record["real"]["convabuse"]
    assert abuse["data"]["ratings"] == 900 and abuse["data"]["train_ratings"] + abuse["data"]["test_ratings"] == 900
    assert set(abuse["metrics"]) == {"exact", "abusive", "log_likelihood"}
    assert abuse["metrics"]["log_likelihood"]["pooled"]["model"]["value"] < 0
    assert set(abuse["annotator_thresholds"]) <= {f"Annotator{i}" for i in range(1, 9)}
    assert {f["verdict"] for f in record["findings"]} <= VERDICTS and len(record["findings"]) >= 6
    report = build_report(json.loads(json.dumps(record)))  # from the JSON record alone
    figures = {figure.name: f"figures/{figure.name}.png" for figure in report.figures()}
    assert set(figures) == {"wmt-raters"}
    text = render_markdown(report, figures)
    assert "WMT rater" in text and "ConvAbuse" in text and "attention checks" in text and "ende:rater" in text
