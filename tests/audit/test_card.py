"""The card's wording from a record (the committed example card's audit.json, edited): what the first section says
about best-of-n and in-sample data, and example texts shown exactly as written."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rewardlab.audit import build_card
from rewardlab.audit.card import literal
from rewardlab.report import render_html, render_markdown

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "audit" / "audit.json"


@pytest.fixture
def record() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def glance(record: dict[str, Any]) -> str:
    return render_markdown(build_card(record)).split("## Card")[0]


@pytest.mark.parametrize(("alpha", "beta", "peak", "within", "says"), [
    (-0.03, -0.01, float("inf"), False, "gains nothing over a random pick"),
    (0.2, -0.05, float("inf"), False, "does not turn down"),
    (0.2, 0.1, 1.0, True, "within the measured range: over-optimization shows"),
    (0.2, 0.01, 100.0, False, "beyond the measured range"),
])
def test_best_of_n_line_follows_the_fit(record: dict[str, Any], alpha: float, beta: float, peak: float, within: bool,
                                        says: str) -> None:
    record["risk"]["best_of_n"]["gao_fit"] = {"alpha": alpha, "beta": beta, "peak_kl": peak,
                                              "turns_down_within_range": within}
    assert says in glance(record)


def test_in_sample_data_is_called_out_first(record: dict[str, Any]) -> None:
    assert "in-sample" not in glance(record)
    record["held_out"]["same_as_training"] = True
    assert "**in-sample**" in glance(record)


def test_example_texts_are_shown_exactly_as_written(record: dict[str, Any]) -> None:
    record = copy.deepcopy(record)
    text = "**not bold** `not code` [not a link](#x) a_b_c\nsecond line <b>not bold either</b>"
    record["examples"]["top_rewarded"][0]["response"] = text
    html = render_html(build_card(record))
    shown = "**not bold** `not code` [not a link](#x) a_b_c ↵ second line &lt;b&gt;not bold either&lt;/b&gt;"
    assert shown in html and "<strong>not bold" not in html and "<b>not bold" not in html
    assert literal(" a|b\r\n") == "a|b"  # "|" is the table renderer's to escape; ends trimmed
