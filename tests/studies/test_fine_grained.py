"""`rewardlab experiment fine-grained` on a few QA-Feedback questions with the hashing encoder: the report's files,
every estimate with n and a CI, paired differences that are the differences, deciders that follow their definition,
an AUC that is the AUC, and the committed report rendered again from its record alone."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.data.objectives_qa import default_path
from rewardlab.errors import RewardlabError
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.span_detection import auc_estimate, weighted_auc
from rewardlab.report import render_markdown
from rewardlab.studies.fine_grained import MODELS, make_config
from rewardlab.studies.fine_grained_metrics import deciders, pair_correct
from rewardlab.studies.fine_grained_report import build_report

needs_data = pytest.mark.skipif(not default_path().exists(), reason=f"QA-Feedback is not at {default_path()}")
FIGURES = {"accuracy": "figures/accuracy.png", "objectives": "figures/objectives.png"}


def estimates(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "value" in node and "ci_low" in node:
            yield path, node
        else:
            for key, child in node.items():
                yield from estimates(child, f"{path}/{key}")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("fine_grained") / "report"
    code, output = run("experiment", "fine-grained", "--limit", "30", "--encoder", "hashing:64", "--folds", "3",
                       "--seeds", "0", "--resamples", "200", "--out", str(out), "--quiet")
    assert code == 0, output
    return out, json.loads((out / "results.json").read_text(encoding="utf-8")), output


@needs_data
def test_the_study_writes_its_report(study: tuple[Path, dict[str, Any], str]) -> None:
    out, record, output = study
    for name in ("report.md", "index.html", "results.json", *FIGURES.values()):
        assert (out / name).stat().st_size > 0, name
    assert record["config"]["limit"] == 30 and record["config"]["seeds"] == [0]
    assert record["questions"] == 30 and record["answers"] == 120 and record["pairs"] == 180
    assert record["objective_labels"] == {"relevance": 30, "factuality": 30, "completeness": 30}
    assert len(record["training"]) == 3 and "multi-objective, gated" in output
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "Which objective decided" in text and "Each objective as a detector" in text
    assert "Span rewards: error detection" in text and "(control: position, length)" in text
    spans = record["spans"]
    assert spans["counts"]["folds"] == record["config"]["folds"]
    assert {row["kind"] for row in spans["detection"]} == {"relevance", "factuality"}
    assert spans["difference"]["n"] == spans["counts"]["decided_pairs"]
    assert render_markdown(build_report(record), FIGURES) == text


@needs_data
def test_every_number_has_n_and_a_ci_and_differences_are_paired(study: tuple[Path, dict[str, Any], str]) -> None:
    _, record, _ = study
    found = list(estimates({k: v for k, v in record.items() if k not in ("config", "training")}))
    assert len(found) > 40
    for where, e in found:
        assert isinstance(e["n"], int) and e["n"] > 0, where
        if not math.isnan(e["value"]):
            assert e["ci_low"] <= e["value"] + 1e-9 <= e["ci_high"] + 2e-9, where
    acc = record["accuracy"]
    assert set(MODELS) <= set(acc) and all(e["n"] == record["decided_pairs"] for e in acc.values())
    for name, gap in record["minus_bt"].items():
        assert math.isclose(gap["value"], acc[name]["value"] - acc["direct BT"]["value"], abs_tol=1e-9), name
    gap = record["gated_minus_fixed"]["value"]
    assert math.isclose(gap, acc["multi-objective, gated"]["value"] - acc["multi-objective, fixed"]["value"],
                        abs_tol=1e-9)
    for scalarization, by_objective in record["deciders"].items():
        total = sum(d["share"]["value"] for d in by_objective.values())
        assert 0.9 <= total <= 1.0 + 1e-9, scalarization  # every pair the model does not score level has one
    for w in record["weights"].values():
        assert math.isclose(sum(v["share"]["value"] for v in w.values()), 1.0, abs_tol=1e-6)


def test_pair_correct_counts_level_rewards_as_half() -> None:
    reward = np.array([1.0, 0.0, 0.0, 2.0])
    a, b = np.array([0, 1, 1]), np.array([1, 2, 3])
    assert pair_correct(reward, a, b, np.array([1.0, 1.0, 0.0])).tolist() == [1.0, 0.5, 1.0]


def test_the_decider_is_the_largest_agreeing_weighted_difference() -> None:
    objectives = np.array([[3.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    weights = np.array([[1.0, 3.0, 0.5]] * 4)
    # pair 0: contributions (3, -3, 0.5), total 0.5 > 0: relevance decides (the larger agreeing one)
    # pair 1: contributions (-2, 3, 0), total 1 > 0: factuality; pair 2: identical answers: no decider
    got = deciders(objectives, weights, np.array([0, 2, 2]), np.array([1, 0, 3]))
    assert got.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    swapped = deciders(objectives, np.array([[1.0, 1.0, 5.0]] * 4), np.array([0]), np.array([1]))
    assert swapped.tolist() == [[0, 0, 1]]  # contributions (3, -1, 5): completeness


def test_weighted_auc_is_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, size=40).astype(float), (rng.random(40) < 0.4).astype(float)
    counts = rng.poisson(1.0, size=(3, 40)).astype(float)
    for row in counts:
        num = den = 0.0
        for i, j in product(range(40), range(40)):
            if labels[i] == 1 and labels[j] == 0:
                w = row[i] * row[j]
                num += w * ((scores[i] > scores[j]) + 0.5 * (scores[i] == scores[j]))
                den += w
        assert weighted_auc(scores, labels, row[None, :])[0] == pytest.approx(num / den)
    estimate = auc_estimate(scores, labels, GroupBootstrap(np.arange(40), 300, 0))
    assert estimate.low <= estimate.value <= estimate.high and estimate.n == 40
    assert math.isnan(auc_estimate(scores, np.ones(40), GroupBootstrap(np.arange(40), 10, 0)).value)


@pytest.mark.parametrize("settings", [{"features": "response"}, {"folds": 1}, {"seeds": ()}, {"limit": 5},
                                      {"unknown": 1}])
def test_bad_settings_are_refused_before_any_work(settings: dict[str, Any]) -> None:
    with pytest.raises(RewardlabError, match="bad study settings"):
        make_config(settings)


def test_the_committed_report_is_its_record_rendered() -> None:
    """docs/fine-grained/report.md is what the renderer makes of docs/fine-grained/results.json."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "fine-grained"
    record = json.loads((docs / "results.json").read_text(encoding="utf-8"))
    text = (docs / "report.md").read_text(encoding="utf-8")
    assert render_markdown(build_report(record), FIGURES) == text
    assert record["questions"] == 500 and record["config"]["limit"] is None
    assert "spans" in record and record["config"]["spans"] is True
