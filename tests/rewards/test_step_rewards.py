"""The process reward model: learns which step went wrong from step labels, saves and loads as a directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data import FeedbackDataset, StepLabel
from rewardlab.errors import DataError, ModelError
from rewardlab.optimize.step_selection import aggregate_solutions
from rewardlab.rewards.step_rewards import StepRewardModel, step_examples

GOOD = ["add the apples", "count the pears", "sum both piles", "write the total"]
BAD = "divide by banana zebra"


def _solution(rng: np.random.Generator, bad_at: int | None) -> tuple[str, int | None]:
    lines = [GOOD[i] + f" {int(rng.integers(100))}" for i in range(4)]
    if bad_at is not None:
        lines[bad_at] = BAD + f" {int(rng.integers(100))}"
    return "\n".join(lines), bad_at


def synthetic_steps(n_questions: int, seed: int) -> FeedbackDataset:
    """Questions with one clean solution and one whose first bad step (a planted phrase) is labelled 0: the steps
    before it 1, the steps after it unlabelled, as the first-error rule leaves them."""
    rng = np.random.default_rng(seed)
    ds = FeedbackDataset("steps")
    for q in range(n_questions):
        pid = ds.add_prompt(f"question {q}: how many fruits?")
        for bad_at in (None, int(rng.integers(1, 4))):
            text, bad = _solution(rng, bad_at)
            rid = ds.add_response(pid, text)
            for step in range(4 if bad is None else bad + 1):
                ds.add(StepLabel(rid, step, 0.0 if step == bad else 1.0))
    return ds


@pytest.fixture(scope="module")
def trained() -> StepRewardModel:
    return StepRewardModel.create("outcome-logistic", encoder="hashing:256", features="response", seed=0,
                                   lr=0.05, max_epochs=60).fit(
        synthetic_steps(60, seed=0))


def test_recovers_the_bad_step(trained: StepRewardModel) -> None:
    rng = np.random.default_rng(7)
    clean = [_solution(rng, None)[0] for _ in range(20)]
    broken = [_solution(rng, int(rng.integers(1, 4))) for _ in range(20)]
    probs = trained.step_probabilities(["q"] * 40, clean + [t for t, _ in broken])
    assert all(len(p) == 4 for p in probs)
    for p, (_, bad) in zip(probs[20:], broken):
        assert bad is not None
        assert p[bad] < 0.5 < p[:bad].min()  # the step that went wrong is the one marked down
    by_min = aggregate_solutions(probs, "min")
    assert by_min[:20].min() > by_min[20:].max()  # min aggregation ranks every clean solution above every broken one
    assert trained.train_info["step_examples"] > trained.train_info["good_steps"] > 0


def test_save_and_load_give_the_same_step_probabilities(trained: StepRewardModel, tmp_path: Path) -> None:
    texts = ["add the apples 3\n" + BAD + " 4", "", "count the pears 1"]
    before = trained.step_probabilities(["q"] * 3, texts)
    loaded = StepRewardModel.load(trained.save(tmp_path / "prm"))
    after = loaded.step_probabilities(["q"] * 3, texts)
    assert [len(p) for p in after] == [2, 0, 1]
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert loaded.split == "line" and loaded.kind == "outcome-logistic" and loaded.features == "response"


def test_load_refuses_damaged_or_foreign_directories(trained: StepRewardModel, tmp_path: Path) -> None:
    path = trained.save(tmp_path / "prm")
    weights = next(p for p in (path / "head").iterdir() if p.name != "head.json")
    weights.write_bytes(weights.read_bytes()[:-4])
    with pytest.raises(ModelError, match="sha256|checksum|digest|SHA"):
        StepRewardModel.load(path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "format": "rewardlab.reward_model/1"}))
    with pytest.raises(ModelError, match="not a step reward model"):
        StepRewardModel.load(path)


def test_bad_labels_and_heads_are_clear_errors() -> None:
    ds = synthetic_steps(2, seed=1)
    rid = next(iter(ds.responses))
    ds.add(StepLabel(rid, 9, 1.0))
    with pytest.raises(DataError, match=r"row \d+.*step 9 of a response with 4 steps"):
        step_examples(ds)
    with pytest.raises(ModelError, match="learns from labels"):
        StepRewardModel.create("bt-mlp", encoder="hashing:32")
    only_good = FeedbackDataset("good")
    rid = only_good.add_response(only_good.add_prompt("q"), "a\nb")
    only_good.add(StepLabel(rid, 0, 1.0))
    with pytest.raises(ModelError, match="both good and bad steps"):
        StepRewardModel.create("outcome-logistic", encoder="hashing:32").fit(only_good)


def test_annotation_service_values_read_as_good_only_when_positive() -> None:
    """The `steps` task labels each non-blank line -1, 0 or 1: the same steps as the line split, neutral not good."""
    ds = FeedbackDataset("annotated")
    rid = ds.add_response(ds.add_prompt("q"), "first\n\n  second  \nthird")
    for step, value in enumerate((1, 0, -1)):
        ds.add(StepLabel(rid, step, value, annotator_id="ann"))
    questions, prefixes, targets, groups = step_examples(ds, "line")
    assert prefixes == ["first", "first\n\n  second", "first\n\n  second  \nthird"]
    assert targets.tolist() == [1.0, 0.0, 0.0] and questions == ["q"] * 3 and len(set(groups.tolist())) == 1
