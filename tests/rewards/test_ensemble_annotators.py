"""An ensemble of annotator-aware heads scores per annotator: member-averaged rewards, the same fallback, saved."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from test_annotator_head import two_group_problem

from rewardlab.errors import ModelError
from rewardlab.rewards.annotator_aware import UnknownAnnotatorWarning
from rewardlab.rewards.annotator_scoring import is_annotator_aware
from rewardlab.rewards.base import load_head
from rewardlab.rewards.ensemble import EnsembleHead
from rewardlab.rewards.heads import make_head


@pytest.fixture(scope="module")
def ensemble() -> tuple[EnsembleHead, np.ndarray, list[str]]:
    data, _, _, minority_ids = two_group_problem(n_prompts=600)
    head = make_head("bt-mlp-annotator", seed=0, ensemble=2, hidden=16, max_epochs=20)
    assert isinstance(head, EnsembleHead)
    return head.fit(data), data.x[:50], minority_ids


def test_an_annotator_is_scored_by_the_mean_of_the_members(ensemble) -> None:
    head, x, minority_ids = ensemble
    assert head.annotator_aware and is_annotator_aware(head)
    assert head.annotators == [f"ann{i}" for i in range(10)]
    for annotator in ("ann0", minority_ids[-1], "ann9"):
        members = [m.predict_for(x, annotator) for m in head.members_]
        assert np.allclose(head.predict_for(x, annotator), np.mean(members, axis=0))
    assert not np.allclose(head.predict_for(x, "ann0"), head.predict_for(x, "ann9"))  # members disagree per person
    stats = head.predict_distribution(x)
    assert set(stats) == {"mean", "std", "q10", "q50", "q90"}
    assert np.allclose(stats["mean"], head.predict_annotators(x).mean(0))
    assert (stats["q10"] <= stats["q90"]).all()
    p = head.prob_prefers(x[:25], x[25:])
    assert np.allclose(p, np.mean([m.prob_prefers(x[:25], x[25:]) for m in head.members_], axis=0))


def test_an_unknown_annotator_gets_the_population_with_a_warning(ensemble) -> None:
    head, x, _ = ensemble
    with pytest.warns(UnknownAnnotatorWarning, match="'nobody'"):
        scores = head.predict_for(x, "nobody")
    assert np.allclose(scores, head.predict(x))


def test_saved_and_loaded_it_scores_the_same(ensemble, tmp_path: Path) -> None:
    head, x, _ = ensemble
    head.save(tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert isinstance(loaded, EnsembleHead) and loaded.annotators == head.annotators
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(loaded.predict_for(x, "ann3"), head.predict_for(x, "ann3"))


def test_an_ensemble_of_plain_heads_is_not_annotator_aware() -> None:
    data, _, _, _ = two_group_problem(n_prompts=100)
    head = make_head("bt-linear", seed=0, ensemble=2, max_epochs=2)
    assert isinstance(head, EnsembleHead)
    assert not head.annotator_aware and not is_annotator_aware(head)
    head.fit(data)
    assert not is_annotator_aware(head)
    with pytest.raises(ModelError, match="do not score per annotator"):
        head.predict_for(data.x[:3], "ann0")
