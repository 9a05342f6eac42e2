"""The one renderer: layout of titles, sections, tables and figures, number formatting, what write_report writes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rewardlab.report import (
    Figure,
    Report,
    Section,
    Table,
    difference,
    estimate,
    findings_table,
    number,
    render_markdown,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def line_plot(plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 3], [1, 4, 9])
    return fig


def sample_report() -> Report:
    return Report("A study", [
        Section(None, ["Opening paragraph."]),
        Section("Findings", [findings_table([{"claim": "x beats y", "verdict": "reproduced", "evidence": "3 of 4"}])]),
        Section("Results", ["Two lines\nof one paragraph.", Table(["name", "value"], [["a|b", "1"], ["c", "2"]])]),
        Section("Figures", [Figure("curve", "A curve", line_plot)]),
    ], settings={"seed": 0, "grid": (1, 2), "empty": (), "model": None, "sft": {"steps": 3}})


def test_markdown_layout() -> None:
    md = render_markdown(sample_report(), {"curve": "figures/curve.png"})
    assert md.startswith("# A study\n\nOpening paragraph.\n\n## Findings\n\n| claim | verdict | evidence |\n|---|---|---|\n")
    assert "## Results\n\nTwo lines\nof one paragraph.\n\n| name | value |\n|---|---|\n| a\\|b | 1 |\n| c | 2 |" in md
    assert "## Figures\n\n### A curve\n\n![A curve](figures/curve.png)" in md
    assert md.endswith("## Settings\n\n| setting | value |\n|---|---|\n| seed | 0 |\n| grid | 1, 2 |\n| empty | — |\n"
                       "| model | — |\n| sft.steps | 3 |\n")


def test_figures_that_were_not_drawn_leave_no_empty_section() -> None:
    md = render_markdown(sample_report())
    assert "## Figures" not in md and "A curve" not in md and "## Results" in md


def test_numbers_and_estimates() -> None:
    assert number(0.12345) == "0.123" and number(7) == "7" and number(2.5, 1) == "2.5"
    assert number(None) == number(math.nan) == "n/a" and number(math.inf) == "∞" and number(-math.inf) == "−∞"
    assert estimate({"value": 0.6123, "ci_low": 0.585, "ci_high": 0.642, "n": 10}) == "0.612 [0.585, 0.642]"
    assert estimate({"value": 1, "ci_low": 1, "ci_high": 1}) == "1.000 [1.000, 1.000]"  # JSON ints are still estimates
    assert estimate(None) == estimate({}) == "—"
    assert estimate({"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}) == "n/a [n/a, n/a]"
    assert difference({"value": -0.02, "ci_low": -0.03, "ci_high": -0.01}) == "**-0.020 [-0.030, -0.010]**"
    assert difference({"value": 0.01, "ci_low": -0.01, "ci_high": 0.03}) == "0.010 [-0.010, 0.030]"
    assert difference({"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}) == "n/a [n/a, n/a]"


def test_write_report_writes_markdown_figures_and_record(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    record = {"kind": "test", "value": math.inf, "missing": math.nan, "text": "β ≤ 1"}
    path = write_report(sample_report(), tmp_path / "out", record)
    assert path == tmp_path / "out" / "report.md"
    assert "![A curve](figures/curve.png)" in path.read_text(encoding="utf-8")
    assert (tmp_path / "out" / "figures" / "curve.png").read_bytes().startswith(PNG_MAGIC)
    saved = (tmp_path / "out" / "results.json").read_text(encoding="utf-8")
    assert "β ≤ 1" in saved and json.loads(saved)["value"] == math.inf and math.isnan(json.loads(saved)["missing"])
    assert plt.get_fignums() == []  # every figure closed after saving


def test_a_failing_figure_is_closed_too(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    def broken(plt: Any) -> Any:
        plt.subplots()
        raise RuntimeError("no data")

    report = Report("r", [Section("Figures", [Figure("bad", "Bad", broken)])], filename="page.md")
    with pytest.raises(RuntimeError, match="no data"):
        write_report(report, tmp_path)
    assert plt.get_fignums() == [] and not (tmp_path / "results.json").exists()
