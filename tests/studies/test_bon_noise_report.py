"""The best-of-n noise report built from a synthetic record: tables, formatting of NaN/inf, figures that exist."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from rewardlab.report import render_markdown, write_report
from rewardlab.studies.bon_noise_report import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NS = ("1", "4", "16", "max")
AGGS = ("single", "mean", "min", "lcb")
SIGNIFICANT = {"value": 0.0234, "ci_low": 0.0112, "ci_high": 0.0351, "n": 40}
NOT_SIGNIFICANT = {"value": 0.0071, "ci_low": -0.0048, "ci_high": 0.0193, "n": 40}


def _est(value: float, half: float = 0.02) -> dict:
    return {"value": value, "ci_low": value - half, "ci_high": value + half, "n": 40}


def _curve(top: float, max_n: int = 20) -> dict:
    n = list(range(1, max_n + 1))
    return {"n": n, "kl": [math.log(k) - (k - 1) / k for k in n], "gold": [top * (1 - 1 / k**0.5) for k in n]}


def synthetic_record() -> dict:
    betas, budgets, pairings, learners = [1.0, 10.0], [100, 400], ["same-prompt", "cross-prompt"], ["bt-mlp", "clf-mlp"]
    grid = []
    for beta in betas:
        for budget in budgets:
            for pairing in pairings:
                for i, learner in enumerate(learners):
                    top = 0.3 + 0.1 * math.log10(beta) + budget / 4000 + 0.05 * i
                    grid.append({
                        "beta": beta, "budget": budget, "pairing": pairing, "learner": learner, "seeds": 2,
                        "label_accuracy": 0.6 + 0.1 * math.log10(beta),
                        "metrics": {**{n: {"gold": _est(top * k / 4), "oracle": _est(0.9 * k / 4),
                                           "oracle_gain_fraction": _est(top)} for k, n in enumerate(NS, start=1)},
                                    "all": {"random": _est(0.0),
                                            "spearman": {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
                                            if learner == "clf-mlp" else _est(0.4)}},
                        "seed_sd": {n: 0.01 for n in NS},
                        "curve": _curve(top),
                        "soft": {"temperature_in_reward_std": [4.0, 1.0, 0.1], "kl": [0.01, 0.4, 2.0],
                                 "gold": [0.05, top / 2, top]},
                        "fit_seconds": 0.5,
                    })
    paired = [
        {"comparison": "clf-mlp - bt-mlp", "beta": 1.0, "budget": 100, "pairing": "same-prompt", "n": "max", "diff": SIGNIFICANT},
        {"comparison": "clf-mlp - bt-mlp", "beta": 10.0, "budget": 100, "pairing": "same-prompt", "n": "max",
         "diff": NOT_SIGNIFICANT},
        {"comparison": "clf-mlp - bt-mlp", "beta": 1.0, "budget": 100, "pairing": "same-prompt", "n": "4",
         "diff": _est(0.777, 0.001)},
        {"comparison": "cross-prompt - same-prompt", "beta": 1.0, "budget": 400, "learner": "bt-mlp", "n": "max",
         "diff": _est(-0.0123, 0.004)},
    ]
    ensemble = {
        "learner": "bt-mlp", "beta": 1.0, "budget": 400, "pairing": "same-prompt", "members": 3, "lam": 1.0,
        "curves": {a: _curve(0.4 + 0.02 * i) for i, a in enumerate(AGGS)},
        "fits": {"single": {"alpha": 0.3, "beta": -0.01, "peak_kl": math.inf},
                 **{a: {"alpha": 0.3, "beta": 0.05, "peak_kl": 9.0} for a in AGGS[1:]}},
        "at_max": {a: _est(0.4 + 0.02 * i) for i, a in enumerate(AGGS)},
        "at_16": {a: _est(0.35) for a in AGGS},
        "diff_vs_single_at_max": {a: _est(0.02 * i, 0.01) for i, a in enumerate(AGGS) if a != "single"},
        "peak_n": {a: 20 for a in AGGS},
    }
    return {
        "kind": "bon-noise",
        "config": {"candidates": "synthetic", "betas": betas, "budgets": budgets, "pairings": pairings, "learners": learners,
                   "seeds": 2, "ensemble_members": 3, "ensemble_learners": ["bt-mlp"], "ensemble_budget": 400,
                   "ensemble_pairing": "same-prompt", "lam": 1.0, "encoder": "minilm:int8", "features": "interaction",
                   "test_fraction": 0.3, "split_seed": 0, "n_resamples": 200, "limit_prompts": None},
        "data": {"source": "synthetic", "train_prompts": 70, "test_prompts": 30, "train_candidates": 1400,
                 "test_candidates": 600, "pool_size_min": 20, "pool_size_max": 20},
        "timing": {"total_seconds": 12.3, "embed_seconds": 1.2, "fit_seconds": 9.9},
        "reference": {"random": _est(0.0), "oracle": {n: _est(0.9 * k / 4) for k, n in enumerate(NS, start=1)},
                      "oracle_curve": {"kl": _curve(0.9)["kl"], "gold": _curve(0.9)["gold"]}},
        "grid": grid,
        "paired": paired,
        "ensembles": [ensemble],
        "findings": [{"claim": "classification beats Bradley-Terry under noisy labels", "verdict": "inconclusive",
                      "evidence": "1 of 2 conditions significantly better"},
                     {"claim": "cross-prompt pairs beat same-prompt pairs", "verdict": "not reproduced",
                      "evidence": "0 of 1 significantly better, 1 worse"}],
    }


def test_write_report_renders_tables_and_figures(tmp_path: Path) -> None:
    record = synthetic_record()
    path = write_report(build_report(record), tmp_path / "out", record)
    assert path == tmp_path / "out" / "report.md"
    md = path.read_text(encoding="utf-8")

    for learner in record["config"]["learners"]:
        assert learner in md
    for finding in record["findings"]:
        assert finding["claim"] in md and finding["verdict"] in md
    gold = record["grid"][0]["metrics"]["max"]["gold"]
    assert f"{gold['value']:.3f} [{gold['ci_low']:.3f}, {gold['ci_high']:.3f}]" in md
    assert "n/a [n/a, n/a]" in md  # the NaN Spearman
    assert "∞" in md  # the single model's Gao fit never turns down

    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(f).name for f in figures} >= {"bon_curves.png", "gold_vs_kl.png", "soft_bon.png", "noise_grid.png"}
    for rel in figures:
        data = (path.parent / rel).read_bytes()
        assert len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC)

    loaded = json.loads((path.parent / "results.json").read_text(encoding="utf-8"))
    assert loaded.keys() == record.keys()
    assert loaded["grid"][0].keys() == record["grid"][0].keys()
    assert loaded["ensembles"][0]["fits"]["single"]["peak_kl"] == math.inf
    assert math.isnan(loaded["grid"][1]["metrics"]["all"]["spearman"]["value"])


def test_paired_rows_bold_only_when_ci_excludes_zero() -> None:
    md = render_markdown(build_report(synthetic_record()))
    significant, not_significant = "0.023 [0.011, 0.035]", "0.007 [-0.005, 0.019]"
    assert f"**{significant}**" in md
    assert not_significant in md and f"**{not_significant}**" not in md
    assert "**-0.012 [-0.016, -0.008]**" in md  # significantly negative counts too
    assert "0.777 [0.776, 0.778]" not in md  # only n = max rows go in the paired table


def test_report_without_ensembles(tmp_path: Path) -> None:
    record = synthetic_record()
    record["ensembles"] = []
    md = write_report(build_report(record), tmp_path, record).read_text(encoding="utf-8")
    assert "gold_vs_kl.png" not in md and "## Ensembles" not in md
    assert (tmp_path / "figures" / "noise_grid.png").exists()


def _with_length_rules(record: dict, paired: bool) -> dict:
    """The synthetic record with length rules: pick-the-longest is the better rule at every n > 1."""
    rules = {"unit": "characters", "paired": paired,
             "n": {n: {"longest": _est(0.2 * k), "shortest": _est(0.01 * k), "better_rule": "either" if n == "1" else "longest"}
                   for k, n in enumerate(NS, start=1)},
             "curve": {"n": list(range(1, 21)), "kl": _curve(0.9)["kl"], "longest": _curve(0.6)["gold"],
                       "shortest": [-0.01 * k for k in range(20)]}}
    grid = []
    for g in record["grid"]:
        deltas = {n: {"gold_minus_better_rule": SIGNIFICANT if paired else {"value": -0.0456, "n": 40}} for n in NS}
        own = {"n": deltas, **({"spearman_reward_length": _est(0.61, 0.05)} if paired else {})}
        grid.append({**g, "length_rules": own})
    return {**record, "grid": grid, "length_rules": rules}


def test_length_rules_rows_paired_and_unpaired(tmp_path: Path) -> None:
    plain = render_markdown(build_report(synthetic_record()))
    assert "Length controls" not in plain and "pick the longest" not in plain  # an old record renders without them

    paired = write_report(build_report(_with_length_rules(synthetic_record(), True)), tmp_path, None)
    md = paired.read_text(encoding="utf-8")
    assert "## Length controls: gold of a length-only pick" in md
    assert ("| pick the longest | 0.200 [0.180, 0.220] | 0.400 [0.380, 0.420] | 0.600 [0.580, 0.620] "
            "| 0.800 [0.780, 0.820] |") in md
    assert "| better rule | either | longest | longest | longest |" in md
    # one row per condition: gold@16, the better rule's gold@16, paired Δ (bold: its CI excludes 0), ..., ρ
    first = synthetic_record()["grid"][0]
    gold16 = first["metrics"]["16"]["gold"]
    row = (f"| 1 | 100 | same-prompt | bt-mlp | {gold16['value']:.3f} [{gold16['ci_low']:.3f}, {gold16['ci_high']:.3f}] "
           f"| 0.600 [0.580, 0.620] | **0.023 [0.011, 0.035]** |")
    assert row in md and "0.610 [0.560, 0.660] |" in md and "Δ@max (paired)" in md
    for name in ("bon_curves", "noise_grid"):
        assert (tmp_path / "figures" / f"{name}.png").read_bytes().startswith(PNG_MAGIC)

    unpaired = render_markdown(build_report(_with_length_rules(synthetic_record(), False)))
    assert "Δ@16 (unpaired, no CI)" in unpaired and "**unpaired, without a CI**" in unpaired
    assert "| 0.600 [0.580, 0.620] | -0.046 |" in unpaired and "**0.023" not in unpaired.split("## Length controls")[1]
