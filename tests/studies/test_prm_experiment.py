"""`rewardlab experiment prm` on a slice of the shared GSM8K pools with the hashing encoder: the report's files, every
estimate with n and a CI, paired differences that are the differences, verdicts that follow the CIs, and the report
rendered again from its record alone."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run
from rewardlab.data.candidates import CANDIDATE_SOURCES
from rewardlab.data.registry import shared_data_dir
from rewardlab.errors import RewardlabError
from rewardlab.report import render_markdown
from rewardlab.studies.prm import make_config
from rewardlab.studies.prm_report import build_report, verdict

GSM8K = shared_data_dir() / CANDIDATE_SOURCES["gsm8k"][0]
needs_gsm8k = pytest.mark.skipif(not GSM8K.exists(), reason=f"the shared GSM8K pools are not at {GSM8K}")


def estimates(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every estimate in a record (a dict with a value and a CI), with where it is."""
    if isinstance(node, dict):
        if "value" in node and ("ci_low" in node or "ci_high" in node):
            yield path, node
        else:
            for key, child in node.items():
                yield from estimates(child, f"{path}/{key}")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("prm") / "report"
    code, output = run("experiment", "prm", "--limit", "40", "--encoder", "hashing:64", "--resamples", "200",
                       "--out", str(out), "--quiet")
    assert code == 0, output
    return out, json.loads((out / "results.json").read_text(encoding="utf-8")), output


@needs_gsm8k
def test_the_study_writes_its_report(study: tuple[Path, dict[str, Any], str]) -> None:
    out, record, output = study
    for name in ("report.md", "index.html", "results.json", "figures/accuracy.png"):
        assert (out / name).stat().st_size > 0, name
    assert record["config"]["limit"] == 40 and record["config"]["encoder"] == "hashing:64"
    assert record["pools"] == 40 and record["pool_size"] == 4
    assert record["questions"]["train"] + record["questions"]["test"] == 40
    assert "majority vote" in output and "PRM[computation] min" in output  # names survive rich's markup
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "Against Lightman et al." in text and "78.2" in text and "The checker's reach" in text
    assert render_markdown(build_report(record), {"accuracy": "figures/accuracy.png"}) == text
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html and "data:image/png;base64," in html


@needs_gsm8k
def test_every_number_has_n_and_a_ci(study: tuple[Path, dict[str, Any], str]) -> None:
    _, record, _ = study
    found = list(estimates({k: v for k, v in record.items() if k != "config"}))
    assert len(found) > 40
    for where, e in found:
        assert isinstance(e["n"], int) and e["n"] > 0, where
        assert e["ci_low"] <= e["value"] + 1e-12 and e["value"] <= e["ci_high"] + 1e-12, where
    tested = record["questions"]["test"]
    assert all(e["n"] == tested for e in record["accuracy"].values())
    for name, gap in record["minus_orm"].items():  # paired: the mean difference is the difference of the means
        expected = record["accuracy"][name]["value"] - record["accuracy"]["ORM"]["value"]
        assert math.isclose(gap["value"], expected, abs_tol=1e-9), name
    for name, gap in record["minus_majority"].items():
        expected = record["accuracy"][name]["value"] - record["accuracy"]["majority vote"]["value"]
        assert math.isclose(gap["value"], expected, abs_tol=1e-9), name
    rows = [line for line in (study[0] / "report.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and "[" in line]
    assert rows and all("]" in row for row in rows)


def test_verdicts_follow_the_ci() -> None:
    assert verdict({"value": 0.1, "ci_low": 0.02, "ci_high": 0.2, "n": 9}).startswith("holds")
    assert verdict({"value": -0.1, "ci_low": -0.2, "ci_high": -0.01, "n": 9}).startswith("reversed")
    assert verdict({"value": 0.1, "ci_low": -0.02, "ci_high": 0.2, "n": 9}).startswith("not resolved")
    assert verdict(None) == "not measured"


def test_the_committed_report_is_its_record_rendered() -> None:
    """docs/prm/report.md is what the renderer makes of docs/prm/results.json (so every number in it is measured)."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "prm"
    record = json.loads((docs / "results.json").read_text(encoding="utf-8"))
    text = (docs / "report.md").read_text(encoding="utf-8")
    assert render_markdown(build_report(record), {"accuracy": "figures/accuracy.png"}) == text
    assert record["questions"]["test"] == 660 and record["config"]["limit"] is None


@pytest.mark.parametrize("settings", [{"split": "word"}, {"test_size": 1.0}, {"label_modes": ("reasoning",)},
                                      {"label_modes": ()}, {"limit": 1}])
def test_bad_settings_are_refused_before_any_work(settings: dict[str, Any]) -> None:
    with pytest.raises(RewardlabError, match="bad study settings"):
        make_config(settings)
