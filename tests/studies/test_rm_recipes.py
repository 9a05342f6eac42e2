"""The recipe study end to end on tiny synthetic sets (hashing encoder), its selection rule on a hand-made
summary, its report files and its command."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_helpers import run
from rewardlab.data.parquet import write_parquet
from rewardlab.data.types import normalize_prompt
from rewardlab.errors import RewardlabError
from rewardlab.studies import rm_recipes
from rewardlab.studies.rm_recipes import PairSet, make_config, run_study
from rewardlab.studies.rm_recipes_report import FIGURE, README, RECORD, build_report, write
from rewardlab.studies.rm_recipes_verdicts import select_default
from synthetic import preference_dataset

GOOD = ["clear and correct answer with the steps shown", "a helpful, accurate reply", "correct, careful and kind"]
BAD = ["wrong", "an unhelpful rude reply that rambles on and on about nothing in particular at all", "no idea, sorry"]


def tiny_set(tmp_path: Path, name: str, topic: str, n: int = 16) -> str:
    rows = [(f"{topic} question {i}?", f"{GOOD[i % 3]} about {topic} {i}", f"{BAD[i % 3]} {i}") for i in range(n)]
    return str(write_parquet(preference_dataset(name, rows), tmp_path / name))


def tiny_probe(tmp_path: Path) -> str:
    items = {"length bias": [{"bias": "length bias", "instruction": f"Say hi {i}", "response1": "hi",
                              "response2": f"well, let me think about greetings at length {i}", "label": 1}
                             for i in range(3)],
             "concreteness": [{"bias": "concreteness", "instruction": f"Add {i} and 1", "response1": f"{i + 1}",
                               "response2": f"It is {i + 2}, trust me", "label": 1} for i in range(3)]}
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return str(path)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # three recipes of the grid, each with only a few epochs (enough for a smoke run)
    for name in ("interaction", "joint+debias", "interaction+off-topic"):
        recipe = rm_recipes.RECIPES[name]
        monkeypatch.setitem(rm_recipes.RECIPES, name, replace(recipe, head_params={**recipe.head_params, "max_epochs": 5}))
    return {"sets": (tiny_set(tmp_path, "cooking", "cooking"), tiny_set(tmp_path, "travel", "travel")),
            "recipes": ("interaction", "joint+debias", "interaction+off-topic"), "heads": ("bt-linear",), "encoder": "hashing:64",
            "probe": tiny_probe(tmp_path), "n_resamples": 50, "speed_probe": ()}


def test_every_cell_has_its_controls(tiny: dict[str, Any]) -> None:
    record = run_study(make_config(tiny))
    assert set(record["data"]) == {"cooking", "travel"}
    assert len(record["transfers"]) == 4 and sum(t["cross"] for t in record["transfers"]) == 2
    for t in record["transfers"]:
        assert t["pairs"] > 0 and t["controls"]["length_only_fit"].endswith(f"{t['train']}'s training pairs")
        for control in ("length_only", "prefer_longer", "prefer_shorter"):
            assert 0 <= t["controls"][control]["value"] <= 1
        assert [(m["recipe"], m["head"]) for m in t["models"]] == \
            [("interaction", "bt-linear"), ("joint+debias", "bt-linear"), ("interaction+off-topic", "bt-linear")]
        for m in t["models"]:
            for key in ("accuracy", "accuracy_minus_length_only", "length_balanced_accuracy"):
                assert m[key]["n"] == t["pairs"]
            acc, delta = m["accuracy"]["value"], m["accuracy_minus_length_only"]["value"]
            assert delta == pytest.approx(acc - t["controls"]["length_only"]["value"], abs=1e-4)
            assert "spearman_reward_length" in m
    (first, *_), probe = record["probe"]["results"], record["probe"]
    assert probe["bias_types"] == {"concreteness": 3, "length bias": 3} and len(probe["results"]) == 2
    assert set(first["by_bias"]) == {"concreteness", "length bias"} and first["overall"]["pairs"] == 6
    assert len(record["summary"]) == 3 and all(r["transfers"] == 2 for r in record["summary"])
    assert record["selection"]["chosen"] is not None and len(record["targets"]) == 4
    assert record["timing"]["total_seconds"] >= record["timing"]["fit_seconds"]


def test_the_rule_picks_as_the_summary_says() -> None:
    def row(recipe: str, head: str, balanced: float | None, delta: float | None) -> dict[str, Any]:
        return {"recipe": recipe, "head": head, "mean_balanced": balanced, "mean_delta": delta}

    # best balanced wins outright
    summary = [row("a", "h", 0.60, 0.05), row("b", "h", 0.65, -0.01), row("c", "h", 0.62, 0.09)]
    assert select_default(summary)["chosen"] == {"recipe": "b", "head": "h"}
    # within the tie margin of the best, the higher mean Δ wins
    summary = [row("a", "h", 0.650, 0.01), row("b", "h", 0.647, 0.04), row("c", "h", 0.640, 0.20)]
    choice = select_default(summary)
    assert choice["chosen"] == {"recipe": "b", "head": "h"}
    assert [r["recipe"] for r in choice["ranking"]] == ["b", "a", "c"]
    assert [r["tied_for_best"] for r in choice["ranking"]] == [True, True, False]
    # an exact tie goes to the combination listed first; an undefined one is never chosen
    summary = [row("x", "h", None, 0.5), row("a", "h2", 0.6, 0.02), row("a", "h1", 0.6, 0.02)]
    assert select_default(summary)["chosen"] == {"recipe": "a", "head": "h2"}
    assert select_default([row("x", "h", None, None)])["chosen"] is None


def test_test_pairs_on_prompts_the_training_set_saw_are_left_out() -> None:
    ds = preference_dataset("s", [("Same question?", "good", "bad"), ("Other one", "yes", "no")])
    pairs = PairSet.of(ds)
    seen = {"g_" + normalize_prompt("SAME question")}
    assert pairs.unseen_by(seen).tolist() == [False, True]
    assert len(pairs.take(pairs.unseen_by(seen))) == 1


def test_unknown_recipes_and_settings_are_refused() -> None:
    assert {"interaction", "joint+debias+off-topic"} <= set(rm_recipes.RECIPES) and len(rm_recipes.RECIPES) == 8
    with pytest.raises(RewardlabError, match="unknown recipe"):
        make_config({"recipes": ("interaction", "magic")})
    with pytest.raises(RewardlabError, match="unknown study settings"):
        make_config({"colour": "blue"})
    assert rm_recipes.RECIPES["interaction+debias"].model_params() == {"length_debias": True, "balance_length": True}
    assert rm_recipes.RECIPES["joint+off-topic"].model_params() == {"augment": "off-topic:0.5"}


def test_report_and_command(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, output = run("experiment", "rm-recipes", "--sets", ",".join(tiny["sets"]), "--recipes", ",".join(tiny["recipes"]),
                       "--heads", "bt-linear", "--encoder", "hashing:64", "--probe", tiny["probe"], "--resamples", "50",
                       "--speed-probe", "", "--out", str(out), "--quiet")
    assert code == 0, output
    assert "default:" in output and "report:" in output
    page = (out / README).read_text(encoding="utf-8")
    assert (out / "figures" / f"{FIGURE}.png").stat().st_size > 0
    record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    # the rule is written before the result it picks, and the page is what the record renders to
    assert page.index("Selection rule") < page.index("Chosen default")
    assert record["selection"]["rule"] in page
    assert "rm-recipes --sets" in page and "--heads bt-linear --encoder hashing:64" in page  # how to rerun it
    assert [f["recipe"] for f in record["fits"]] == list(tiny["recipes"]) * 2
    assert all((f["augmented_pairs"] or {}).get("off-topic", 0) > 0 for f in record["fits"] if "off-topic" in f["recipe"])
    # only interaction+off-topic has a twin in this grid (interaction, differing in augmentation alone)
    assert [(f["factor"], f["comparisons"]) for f in record["factor_effects"]] == [("augment", 2)]
    assert np.isfinite(record["timing"]["total_seconds"])
    again = build_report(record)
    assert again.filename == README
    assert write(record, tmp_path / "again").read_text(encoding="utf-8") == page
