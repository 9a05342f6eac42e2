"""The best-of-n noise study end to end on a small slice of AlpacaEval, and its prompt split."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data.candidates import CandidateSet, load_candidates
from rewardlab.data.types import normalize_prompt
from rewardlab.evaluate.best_of_n import best_of_n
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.studies.bon_noise import BonNoiseConfig, label_utilities, length_rules_for_record, run_study, split_candidates
from rewardlab.studies.bon_noise_length import (
    length_rules_cell,
    length_rules_reference,
    pool_length_spearman,
    study_length_rules,
)


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


def _tiny_pools() -> list[CandidateSet]:
    """Two pools of 16 candidates, lengths 1..16: gold grows with length in the first, falls in the second."""
    rng = np.random.default_rng(3)
    pools = []
    for sign in (1, -1):
        gold = np.sort(rng.normal(size=16))[:: sign]
        pools.append(CandidateSet(f"q{sign}", tuple("z" * k for k in range(1, 17)), gold))
    return pools


def _brute_force(gold_by_length: np.ndarray, n: int, longest: bool) -> float:
    """Mean gold of the longest (or shortest) of every n-subset of a pool sorted by length: no estimator involved."""
    picks = [gold_by_length[max(c) if longest else min(c)] for c in itertools.combinations(range(len(gold_by_length)), n)]
    return float(np.mean(picks))


def test_length_rules_match_a_brute_force_count() -> None:
    pools = _tiny_pools()
    rules = study_length_rules(pools, 16)
    bootstrap = GroupBootstrap(np.arange(2), n_resamples=50, seed=0)
    reference = length_rules_reference(rules, bootstrap, (1, 4, 16, "max"), paired=True)
    for n in (1, 4, 16):
        for rule, longest in (("longest", True), ("shortest", False)):
            hand = np.mean([_brute_force(p.require_gold(), n, longest) for p in pools])
            assert reference["n"][str(n)][rule]["value"] == pytest.approx(hand, abs=1e-5)
            assert reference["curve"][rule][n - 1] == pytest.approx(hand, abs=1e-5)
    assert reference["n"]["max"]["longest"]["value"] == pytest.approx((pools[0].gold[-1] + pools[1].gold[-1]) / 2, abs=1e-5)
    assert reference["n"]["1"]["better_rule"] == "either"  # best-of-1 is a random pick for both rules
    assert reference["unit"] == "characters" and reference["paired"] is True
    # a "learner" whose scores are the lengths picks what "pick the longest" picks: Δ vs that rule is 0 and ρ is 1;
    # its mirror image scores minus length: ρ = −1, and Δ is the shortest rule's gold minus the better rule's
    for sign in (1, -1):
        scores = [sign * np.arange(1.0, 17) for _ in pools]
        rho = pool_length_spearman(pools, scores)
        cell = length_rules_cell(best_of_n(pools, scores), rules, [rho, None], bootstrap, (4, 16, "max"))
        assert cell["spearman_reward_length"]["value"] == pytest.approx(sign)
        for n in ("4", "16", "max"):
            better = reference["n"][n]["better_rule"]
            own = reference["n"][n]["longest" if sign == 1 else "shortest"]["value"]
            expected = own - reference["n"][n][better]["value"]
            assert cell["n"][n]["gold_minus_better_rule"]["value"] == pytest.approx(expected, abs=2e-5)


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
    # the length rules, on the learners' pools and bootstrap; each learner's Δ vs the better one paired by prompt
    rules = record["length_rules"]
    assert rules["paired"] is True and set(rules["n"]) == {"1", "4", "16", "max"}
    assert rules["n"]["1"]["longest"]["value"] == pytest.approx(record["reference"]["random"]["value"], abs=1e-5)
    for row in record["grid"]:
        for n in ("4", "16", "max"):
            delta, rule = row["length_rules"]["n"][n]["gold_minus_better_rule"], rules["n"][n]
            better = rule[rule["better_rule"]]["value"]
            assert delta["value"] == pytest.approx(row["metrics"][n]["gold"]["value"] - better, abs=2e-5)
            assert delta["ci_low"] <= delta["value"] <= delta["ci_high"]
        assert -1 <= row["length_rules"]["spearman_reward_length"]["value"] <= 1
    # an old record (no length rules) gets the same rules back from its config, with unpaired Δ
    old = {k: v for k, v in record.items() if k != "length_rules"}
    old["grid"] = [{k: v for k, v in row.items() if k != "length_rules"} for row in record["grid"]]
    again = length_rules_for_record(old)
    assert again["length_rules"]["n"] == rules["n"] and again["length_rules"]["paired"] is False
    for row, new in zip(record["grid"], again["grid"]):
        unpaired = new["length_rules"]["n"]["max"]["gold_minus_better_rule"]
        assert unpaired["value"] == pytest.approx(row["length_rules"]["n"]["max"]["gold_minus_better_rule"]["value"],
                                                  abs=2e-5)
        assert "ci_low" not in unpaired and "spearman_reward_length" not in new["length_rules"]
    assert "length_rules" not in old and "length_rules" not in old["grid"][0]  # the input is left as it was


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
