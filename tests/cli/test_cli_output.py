"""What the CLI shows a newcomer: whole tables, one spelling of "error", flags without a type, warnings on thin data,
a sign of life while a head fits, and the feedback each head really learns from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.cli.console import print_table

runner = CliRunner()
NAMES = ["BT-MLP", "CLF-MLP", "CLF-LightGBM", "BT-MLP ensemble (5)"]


def crossval_like_table() -> Table:
    """The shape of `evaluate --folds` / quickstart's table: long learner names, wide numbers with CIs."""
    table = Table(title="HH-RLHF harmless, 5-fold CV by prompt")
    for column in ("learner", "accuracy [95% CI]", "Δ vs BT-MLP", "ECE", "Brier", "NLL", "n pairs", "fit s (all folds)"):
        table.add_column(column, justify="left" if column == "learner" else "right", overflow="fold")
    for name in NAMES:
        table.add_row(name, "0.623 [0.604, 0.641]", "+0.002 [-0.009, +0.013]", "0.023 [0.015, 0.047]",
                      "0.235 [0.230, 0.240]", "0.662 [0.652, 0.672]", "2308", "25.7")
    return table


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_tables_are_never_cut_and_names_stay_whole(width: int) -> None:
    console = Console(width=width, record=True, color_system=None)
    print_table(crossval_like_table(), console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for name in NAMES:  # each learner name on one line, so rows can be told apart
        assert re.search(rf"(^|[│\s]){re.escape(name)}(\s|$)", text, re.M), (name, text)
    for number in ("0.623", "[-0.009,", "+0.013]", "2308"):
        assert number in text  # numbers wrap at spaces only, never inside


def test_a_table_that_fits_is_printed_as_a_table() -> None:
    console = Console(width=200, record=True, color_system=None)
    print_table(crossval_like_table(), console)
    assert "┃ learner" in console.export_text()
    narrow = Console(width=60, record=True, color_system=None)
    print_table(crossval_like_table(), narrow)
    assert "┃" not in narrow.export_text()  # too narrow for the columns' longest words: stacked, one block per row


def walk(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = getattr(command, "commands", None)
    if commands is None:
        return [path]
    return [p for name, sub in commands.items() for p in walk(sub, (*path, name))]


@pytest.mark.parametrize("path", walk(typer.main.get_command(app)), ids=" ".join)
def test_flags_show_no_value_type(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert re.search(r"--help\s+-h\s+Show this message", result.output)  # the help flag itself, with no type


def test_usage_errors_and_our_errors_spell_error_alike(tmp_path: Path) -> None:
    usage = runner.invoke(app, ["train", "x.jsonl", "--out", str(tmp_path / "m"), "--bogus"])
    ours = runner.invoke(app, ["train", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m")])
    assert usage.exit_code == 2 and "─ error ─" in usage.output and "Error" not in usage.output
    assert ours.exit_code == 2 and "error:" in ours.output and "Error" not in ours.output


def test_training_on_one_comparison_warns_and_fitting_shows_progress(tmp_path: Path) -> None:
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"prompt": "hi", "chosen": "hello there", "rejected": "go away"}) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(data), "--head", "bt-linear", "--encoder", "hashing:16",
                                 "--out", str(tmp_path / "m")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "warning: one.jsonl: only 1 comparison on 1 prompt to learn from" in result.output
    assert "fitting bt-linear on 1 examples" in result.output  # the spinner line: no silent minutes while a head fits
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n"
                            for i in range(60)), encoding="utf-8")
    quiet = runner.invoke(app, ["train", str(many), "--head", "bt-linear", "--encoder", "hashing:16", "--quiet",
                                "--out", str(tmp_path / "m2")])
    assert quiet.exit_code == 0 and "warning" not in quiet.output and "fitting" not in quiet.output


def test_thin_data_warning_counts_what_the_head_learns_from() -> None:
    from rewardlab.data import FeedbackDataset
    from rewardlab.data.types import Ranking, Rating

    data = FeedbackDataset("ranked")
    pid = data.add_prompt("q")
    ids = tuple(data.add_response(pid, f"answer {i}") for i in range(4))
    data.add(Ranking(pid, ids))
    assert data.training_examples("comparisons") == 6  # a ranking of 4 is 6 ordered pairs
    assert "only 6 comparisons (rankings counted as their pairs) on 1 prompt" in str(data.thin_data_warning("comparisons"))
    assert data.thin_data_warning("comparisons", minimum=6) is None
    assert data.thin_data_warning("ratings") is None  # none at all: the head itself refuses
    data.add(Rating(ids[0], 4.0))
    assert "only 1 rating on 1 prompt" in str(data.thin_data_warning("ratings"))


def test_heads_say_what_they_learn_from_and_pairwise_heads_learn_from_rankings() -> None:
    """`heads` said "comparisons" while the README said "comparisons, rankings": the training set expands rankings."""
    import numpy as np

    from rewardlab.data import FeedbackDataset
    from rewardlab.data.types import Ranking
    from rewardlab.rewards.model import RewardModel

    listing = runner.invoke(app, ["heads"], env={"COLUMNS": "200"}).output
    for kind in ("bt-linear", "bt-mlp", "clf-logistic", "clf-mlp", "clf-lgbm"):
        assert re.search(rf"{kind}\s+│ comparisons, rankings", listing), kind
    assert re.search(r"rating-mlp\s+│ ratings ", listing) and re.search(r"outcome-mlp\s+│ labels ", listing)
    data = FeedbackDataset("rankings only")
    for i in range(40):
        pid = data.add_prompt(f"question {i}")
        ids = tuple(data.add_response(pid, f"{word} answer {i}") for word in ("excellent", "decent", "poor"))
        data.add(Ranking(pid, ids))
    model = RewardModel.create("bt-linear", encoder="hashing:64", features="response").fit(data)
    scores = model.score(["question x"] * 3, ["excellent answer x", "decent answer x", "poor answer x"])
    assert np.all(np.diff(scores) < 0)  # learned the rankings' order
