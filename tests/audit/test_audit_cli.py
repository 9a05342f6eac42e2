"""`rewardlab audit` end to end on small data (hashing encoder): the files, the record's sections, the card's
warnings, the disclosure, two models side by side, and re-rendering from the record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_helpers import run
from rewardlab.audit import build_card
from rewardlab.report import render_markdown

SECTIONS = ["At a glance", "Card", "Accuracy and calibration", "Slices", "Bias probes", "Over-optimization risk",
            "Examples"]


def audit(setting: dict[str, Any], out: Path, *models: str, extra: tuple[str, ...] = ()) -> dict:
    code, output = run("audit", *(str(setting[m]) for m in models), "--data", str(setting["held_out"]), "--out",
                       str(out), "--on-empty", "skip", "--probe-items", "40", "--fixed-probes", "", "--quiet", *extra)
    assert code == 0, output
    return json.loads((out / "audit.json").read_text(encoding="utf-8"))


def test_audit_writes_the_card_and_its_record(audit_setting: dict[str, Any], tmp_path: Path) -> None:
    record = audit(audit_setting, tmp_path, "ensemble", extra=("--candidates", str(audit_setting["pools"])))
    assert {p.name for p in tmp_path.iterdir()} >= {"index.html", "report.md", "audit.json", "figures"}
    assert record["held_out"]["same_as_training"] is False
    assert record["model"]["members"] == 3 and record["model"]["config"]["encoder"]["spec"] == "hashing:64"
    accuracy = record["accuracy"]["metrics"]["accuracy"]
    assert accuracy["ci_low"] <= accuracy["value"] <= accuracy["ci_high"] and accuracy["n"] >= 90
    assert sum(b["n"] for b in record["accuracy"]["reliability"]) == accuracy["n"]
    probes = {p["name"]: p for p in record["probes"]["perturbation"]}
    assert set(probes) == {"padding", "truncation", "sycophancy", "markdown-list", "refusal", "off-topic"}
    assert all(p["n_probed"] + p["n_skipped"] == 40 for p in probes.values())
    assert all(p["verdict"] in ("fails", "passes", "inconclusive", "untested") for p in probes.values())
    assert record["probes"]["fixed"]["note"].startswith("turned off")
    risk = record["risk"]
    assert risk["disagreement"]["members"] == 3 and len(risk["disagreement"]["bins"]) == 10
    assert risk["best_of_n"]["prompts"] == 12 and risk["best_of_n"]["curve"]["n"] == [1, 2, 3, 4, 5, 6]
    assert risk["best_of_n"]["curve"]["oracle"][-1] == 5.0  # the oracle picks gold 5 from every pool
    assert len(record["examples"]["confident_mistakes"]) <= 10
    assert {t["name"] for t in record["slices"]} >= {"length", "longer side"}
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f">{title}</h2>" in html and f"## {title}\n" in markdown
    for figure in ("reliability", "score-distribution", "probes", "best-of-n", "disagreement"):
        assert (tmp_path / "figures" / f"{figure}.png").stat().st_size > 1000
    assert "<script" not in html and "http://" not in html and "https://" not in html
    # the one hostile response is in the held-out data: wherever the card shows it, it shows it as text
    assert str(audit_setting["hostile"]) not in html


def test_auditing_on_the_training_data_says_the_numbers_are_in_sample(audit_setting: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    code, output = run("audit", str(audit_setting["single"]), "--data", str(audit_setting["train"]), "--out",
                       str(tmp_path), "--probe-items", "20", "--fixed-probes", "", "--probes", "padding,truncation",
                       "--quiet")
    assert code == 0, output
    assert "in-sample" in output
    record = json.loads((tmp_path / "audit.json").read_text(encoding="utf-8"))
    assert record["held_out"]["same_as_training"] is True
    assert [p["name"] for p in record["probes"]["perturbation"]] == ["padding", "truncation"]
    assert "**in-sample**" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert record["risk"]["disagreement"] is None  # a single model has no members to disagree


def test_the_card_re_renders_from_its_record(audit_setting: dict[str, Any], tmp_path: Path) -> None:
    audit(audit_setting, tmp_path, "single")
    record = json.loads((tmp_path / "audit.json").read_text(encoding="utf-8"))
    figures = {p.stem: f"figures/{p.name}" for p in (tmp_path / "figures").iterdir()}
    assert render_markdown(build_card(record), figures) == (tmp_path / "report.md").read_text(encoding="utf-8")


def test_disclosure_is_printed_and_a_misspelt_field_is_refused(audit_setting: dict[str, Any], tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text('feedback_source = "Crowd workers comparing two answers"\nintended_use = ["best-of-n", '
                    '"research only"]\n', encoding="utf-8")
    record = audit(audit_setting, tmp_path / "out", "single", extra=("--disclosure", str(card)))
    assert record["disclosure"]["feedback_source"] == "Crowd workers comparing two answers"
    assert record["disclosure"]["intended_use"] == "best-of-n\nresearch only"
    assert record["disclosure"]["contact"] == "not provided"
    assert "Crowd workers comparing two answers" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    card.write_text('intended_uses = "typo"\n', encoding="utf-8")
    code, output = run("audit", str(audit_setting["single"]), "--data", str(audit_setting["held_out"]), "--out",
                       str(tmp_path / "bad"), "--disclosure", str(card), "--quiet")
    assert code == 2 and "intended_uses" in output and "card.toml" in output


def test_two_models_side_by_side_with_paired_differences(audit_setting: dict[str, Any], tmp_path: Path) -> None:
    record = audit(audit_setting, tmp_path, "single", "ensemble", extra=("--probes", "padding"))
    first, second = record["audits"]
    paired = record["paired_differences"]
    expected = second["accuracy"]["metrics"]["accuracy"]["value"] - first["accuracy"]["metrics"]["accuracy"]["value"]
    assert abs(paired["accuracy"]["value"] - expected) < 1e-9
    assert paired["accuracy"]["ci_low"] <= paired["accuracy"]["value"] <= paired["accuracy"]["ci_high"]
    probe = record["paired_probe_differences"]["padding"]
    shares = [a["probes"]["perturbation"][0]["perturbed_preferred"]["value"] for a in (first, second)]
    assert abs(probe["value"] - (shares[1] - shares[0])) < 1e-9 and probe["n"] == 40
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert ">Side by side</h2>" in html and ">single: Bias probes</h2>" in html and ">ensemble: Examples</h2>" in html
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"1-reliability.png", "2-reliability.png", "2-disagreement.png"} <= figures


def test_split_keeps_prompts_apart_and_refuses_to_overwrite(audit_setting: dict[str, Any]) -> None:
    from rewardlab.data.parquet import read_parquet

    train, test = read_parquet(audit_setting["train"]), read_parquet(audit_setting["test"])
    assert not set(train.prompts) & set(test.prompts)
    assert len(train.comparisons) + len(test.comparisons) == 299  # row 87 of the demo has an empty final turn
    code, output = run("split", str(audit_setting["root"] / "hh300.jsonl"), "--out", str(audit_setting["root"] / "split"),
                       "--on-empty", "skip")
    assert code == 2 and "--overwrite" in output
