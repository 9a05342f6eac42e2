"""The reports committed under docs/ are what the one renderer makes of their records: every number of each page,
in order, comes back when its results.json is rendered again (the Settings table the renderer adds aside)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rewardlab.report import Report, render_markdown
from rewardlab.studies import bon_noise_report, demo_reward, fine_grained_report, pluralistic_report, prm_report, prompt_oirl

DOCS = Path(__file__).resolve().parents[2] / "docs"
NUMBER = re.compile(r"[-−+]?\d+(?:\.\d+)?")


def rendered(folder: str, build: Callable[[dict[str, Any]], Report]) -> str:
    record = json.loads((DOCS / folder / "results.json").read_text(encoding="utf-8"))
    report = build(record)
    figures = {figure.name: f"figures/{figure.name}.png" for figure in report.figures()}
    return render_markdown(report, figures).split("\n## Settings\n")[0]


@pytest.mark.parametrize(("folder", "page", "build"), [("bon-noise", "report.md", bon_noise_report.build_report),
                                                       ("prompt-oirl", "table.md", prompt_oirl.build_report),
                                                       ("pluralistic", "report.md", pluralistic_report.build_report),
                                                       ("prm", "report.md", prm_report.build_report),
                                                       ("fine-grained", "report.md", fine_grained_report.build_report)])
def test_generated_pages_keep_every_number(folder: str, page: str, build: Callable[[dict[str, Any]], Report]) -> None:
    committed = (DOCS / folder / page).read_text(encoding="utf-8").split("\n## Settings\n")[0]
    again = rendered(folder, build)
    assert NUMBER.findall(again) == NUMBER.findall(committed)
    assert [line for line in committed.splitlines() if line.startswith("|")] == \
        [line for line in again.splitlines() if line.startswith("|")]


def test_the_demo_reward_page_quotes_the_rendered_table() -> None:
    """docs/demo-reward/results.md is written by hand around the study's table: the table is the rendered one."""
    page = (DOCS / "demo-reward" / "results.md").read_text(encoding="utf-8")
    again = rendered("demo-reward", demo_reward.build_report)
    table = again.split("## Held-out pairwise accuracy\n\n")[1].split("\n\n## ")[0]
    assert table.count("\n|") >= 5 and table in page
