"""The best-of-n noise study end to end on a small slice of AlpacaEval, and its prompt split."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data.candidates import CandidateSet, load_candidates
from rewardlab.data.types import normalize_prompt
from rewardlab.studies.bon_noise import BonNoiseConfig, label_utilities, run_study, split_candidates


def test_splits_never_share_a_prompt() -> None:
    rng = np.random.default_rng(0)
    # prompts 0-9 each appear twice up to case and punctuation: such twins must land on one side
    prompts = [f"Question number {i}?" for i in range(40)] + [f"question NUMBER {i}" for i in range(10)]
    sets = [CandidateSet(p, ("a", "b"), rng.normal(size=2)) for p in prompts]
    for seed in range(5):
        train, test = split_candidates(sets, 0.3, seed)
        assert len(train) + len(test) == len(sets)
        assert not {normalize_prompt(s.prompt) for s in train} & {normalize_prompt(s.prompt) for s in test}
        assert 0.2 < len(test) / len(sets) < 0.4


def test_judge_logit_labels() -> None:
    s = CandidateSet("q", ("a", "b", "c"), np.array([1.0, 1.5, 2.0]))
    (logit,) = label_utilities([s], "judge-logit")
    assert logit.gold[1] == pytest.approx(0.0) and logit.gold[0] == pytest.approx(-math.log(1e4 - 1))
    assert logit.gold[2] == pytest.approx(-logit.gold[0])
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        label_utilities([CandidateSet("q", ("a",), np.array([3.0]))], "judge-logit")


def test_config_rejects_an_ensemble_condition_outside_the_grid() -> None:
    with pytest.raises(ValueError, match="ensemble condition"):
        BonNoiseConfig(budgets=(1000,), ensemble_budget=5000)
    with pytest.raises(ValueError, match="among learners"):
        BonNoiseConfig(learners=("clf-mlp",), ensemble_learners=("bt-mlp",))
    with pytest.raises(ValueError, match="pairing"):
        BonNoiseConfig(pairings=("diagonal",))


@pytest.fixture
def alpaca_slice(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data))


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_study_on_a_slice(alpaca_slice: None) -> None:
    config = BonNoiseConfig(limit_prompts=30, betas=(1.0, 10.0), budgets=(300,), learners=("bt-linear", "clf-logistic"),
                            seeds=2, ensemble_members=3, ensemble_learners=("bt-linear",), ensemble_budget=300,
                            encoder="hashing:128", n_resamples=200)
    steps: list[int] = []
    record = run_study(config, on_step=lambda _, done, total: steps.append(total - done))
    assert steps[-1] == 0 and len(steps) == config.n_fits() - 2 * 2  # ensemble members report with their grid step
    assert record["data"]["train_prompts"] + record["data"]["test_prompts"] == 30
    assert record["data"]["label_scale"] == "judge-logit"
    assert len(record["grid"]) == 2 * 1 * 2 * 2
    sets = [s.without_sources({"NullModel"}) for s in load_candidates("alpaca-eval", 30)]
    assert record["data"]["excluded_sources"] == ["NullModel"]
    for row in record["grid"]:
        metrics = row["metrics"]
        assert metrics["1"]["gold"]["value"] == pytest.approx(record["reference"]["random"]["value"])
        for n in ("4", "16", "max"):
            e = metrics[n]["gold"]
            assert e["ci_low"] <= e["value"] <= e["ci_high"]
            assert e["value"] <= metrics[n]["oracle"]["value"] + 1e-9
        assert 0.5 < row["label_accuracy"] <= 1.0
        assert row["curve"]["n"][0] == 1 and len(row["curve"]["n"]) == min(len(s) for s in sets)
    # β = 10 labels are cleaner than β = 1 labels
    accuracy = {row["beta"]: row["label_accuracy"] for row in record["grid"]}
    assert accuracy[10.0] > accuracy[1.0]
    assert {d["comparison"] for d in record["paired"]} == {"clf-logistic - bt-linear", "cross-prompt - same-prompt"}
    (ensemble,) = [e for e in record["ensembles"] if e["beta"] == 1.0]
    assert set(ensemble["curves"]) == {"single", "mean", "min", "lcb"} and ensemble["members"] == 3
    assert {f["verdict"] for f in record["findings"]} <= {"reproduced", "not reproduced", "inconclusive"}


@pytest.mark.filterwarnings("ignore:.*exact repeats")
def test_cli_study_writes_report(alpaca_slice: None, tmp_path: Path) -> None:
    config = tmp_path / "study.json"
    config.write_text(json.dumps({"betas": [3], "budgets": [200], "learners": ["bt-linear", "clf-logistic"],
                                  "ensemble_learners": ["bt-linear"], "ensemble_members": 2, "ensemble_budget": 200,
                                  "n_resamples": 100, "limit_prompts": 20}))
    result = CliRunner().invoke(app, ["experiment", "bon-noise", "--config", str(config), "--seeds", "1",
                                      "--encoder", "hashing:64", "--pairings", "same-prompt", "--out", str(tmp_path / "r"),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "r" / "results.json").read_text())
    assert record["config"]["seeds"] == 1 and record["config"]["betas"] == [3]  # option beats file, file beats default
    assert record["config"]["pairings"] == ["same-prompt"]
    assert (tmp_path / "r" / "report.md").read_text().count("bt-linear") > 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"betaz": [1]}))
    result = CliRunner().invoke(app, ["experiment", "bon-noise", "--config", str(bad)])
    assert result.exit_code == 2 and "betaz" in result.output and str(bad) in result.output
