"""Heads report how far their fit has got, so `train` shows a moving bar instead of minutes of silence."""

from __future__ import annotations

import pytest

from rewardlab.rewards.heads import make_head
from synthetic import synthetic_problem


@pytest.mark.parametrize("kind, ensemble, unit", [("bt-mlp", 0, 200), ("clf-lgbm", 0, 500), ("bt-linear", 3, 200)])
def test_fit_reports_rising_progress_that_ends_done(kind: str, ensemble: int, unit: int) -> None:
    data, _ = synthetic_problem(n_prompts=300)
    calls: list[tuple[int, int]] = []
    make_head(kind, ensemble=ensemble).fit(data, lambda done, total: calls.append((done, total)))
    total = unit * (ensemble or 1)
    assert calls and all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == total and len(set(done)) > 2


def test_an_ensemble_reports_each_member_in_turn() -> None:
    data, _ = synthetic_problem(n_prompts=200)
    calls: list[int] = []
    make_head("bt-linear", ensemble=2).fit(data, lambda done, total: calls.append(done))
    assert 200 in calls and calls[-1] == 400 and any(200 < d < 400 for d in calls)
