"""Step reader and automatic step labels: splits are exact slices, statements re-computed, first error flagged."""

from __future__ import annotations

import pytest

from rewardlab.data import FeedbackDataset, Label
from rewardlab.data.step_labels import check_solution, check_statements, first_wrong_step, label_steps, matches
from rewardlab.data.steps import count_steps, split_steps, step_prefixes
from rewardlab.errors import InvalidValueError

SOLUTION = ("Janet eats 3 + 4 = <<3+4=7>>7 eggs\n\n"
            "She sells 16 - 7 = <<16-7=9>>9 eggs. Each costs $2.50 today.\n"
            "She makes 9 * 2 = $<<9*2=17>>17\n"
            "So 17 + 1 = 18\n"
            "A: 18\n")


def test_line_steps_skip_blank_lines_and_are_exact_slices() -> None:
    steps = split_steps(SOLUTION, "line")
    assert [s.text for s in steps][0] == "Janet eats 3 + 4 = <<3+4=7>>7 eggs"
    assert len(steps) == 5 and [s.index for s in steps] == list(range(5))
    for step in steps:
        assert SOLUTION[step.start:step.end] == step.text
    assert step_prefixes(SOLUTION)[-1] == SOLUTION.rstrip()


def test_sentence_steps_split_after_full_stops_not_decimal_points() -> None:
    texts = [s.text for s in split_steps(SOLUTION, "sentence")]
    assert "She sells 16 - 7 = <<16-7=9>>9 eggs." in texts
    assert "Each costs $2.50 today." in texts
    assert count_steps(SOLUTION, "sentence") == 6
    assert split_steps("   \n\n", "line") == []
    with pytest.raises(InvalidValueError, match="unknown step split"):
        split_steps(SOLUTION, "paragraph")


@pytest.mark.parametrize(("text", "ok"), [
    ("7 * 8 = 56", [True]), ("7 * 8 = 55", [False]), ("100 / 3 = 33.33", [True]), ("2 / 3 = 0.66", [True]),
    ("2 / 3 = 0.65", [False]), ("$1,000 - $200 = $800", [True]), ("50 * 20% = 10", [True]),
    ("2 x 3 = 6 and 6 + 1 = 7 = 8", [True, True, False]), ("(3 + 4) * 2 = 14 apples", [True]),
    ("<<13*2=24>>", [False]), ("so 5 + 3 = 8", [True]),
    ("$350 000 x 5/100 = $<<350000*5/100=17500.0>>17 500.", [True]),  # the annotation only: the prose is grouped
])
def test_statements_are_recomputed(text: str, ok: list[bool]) -> None:
    assert [s.ok for s in check_statements(text)] == ok


@pytest.mark.parametrize("text", ["x = 5", "2x + 5 = 11", "A: 18", "the total = many", "1 / 0 = 3", "2 ** 999 = 1",
                                  "In 2019 5 + 3 = 8", "5 + 3 = 8 000"])
def test_what_cannot_be_read_is_skipped_not_flagged(text: str) -> None:
    assert check_statements(text) == []


def test_matches_allows_shown_rounding_only() -> None:
    assert matches(100 / 3, 33.0, 0) and matches(100 / 3, 34.0, 0)  # rounded up or down to the digits shown
    assert not matches(56.0, 55.0, 0)


def test_first_wrong_step_is_flagged_and_later_steps_are_unknown() -> None:
    checks = check_solution(SOLUTION)
    assert [c.status for c in checks] == ["ok", "ok", "wrong", "unknown", "unknown"]
    assert first_wrong_step(checks) == 2
    assert not [s for s in checks[3].statements]  # nothing after the first error is even checked


def _dataset(correct: bool, text: str = SOLUTION) -> tuple[FeedbackDataset, str]:
    ds = FeedbackDataset("t")
    rid = ds.add_response(ds.add_prompt("How many dollars?"), text)
    ds.add(Label(rid, correct))
    return ds, rid


def test_computation_labels_stop_at_the_first_error() -> None:
    ds, rid = _dataset(False)
    ds, stats = label_steps(ds)
    assert [(s.step, s.value) for s in ds.step_labels] == [(0, 1.0), (1, 1.0), (2, 0.0)]
    assert all(s.response_id == rid and s.meta["source"] == "computation" for s in ds.step_labels)
    assert stats.flagged == {"correct": 0, "incorrect": 1, "unlabelled": 0}
    assert stats.checked_steps == 3 and stats.wrong_statements == 2


def test_outcome_labels_fill_in_what_the_check_cannot_say() -> None:
    clean = "He has 2 + 3 = 5 apples\nHe is happy\nA: 5"
    ds, _ = label_steps(_dataset(True, clean)[0], use_outcome=True)
    assert [(s.step, s.value, s.meta["source"]) for s in ds.step_labels] == [
        (0, 1.0, "computation"), (1, 1.0, "outcome"), (2, 1.0, "outcome")]
    ds, _ = label_steps(_dataset(False, clean)[0], use_outcome=True)
    assert [(s.step, s.value) for s in ds.step_labels] == [(0, 1.0), (2, 0.0)]  # the middle step stays unknown
    ds, _ = label_steps(_dataset(False, clean)[0], use_outcome=False)
    assert [(s.step, s.value) for s in ds.step_labels] == [(0, 1.0)]
