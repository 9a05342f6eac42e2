"""Simulated annotators: their empirical label rates match the model they claim, and their datasets train."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit as sigmoid

from rewardlab.collect.simulate import SimulatedAnnotator, simulate_comparisons
from rewardlab.data.candidates import CandidateSet
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.model import RewardModel


def two_candidate_sets(n_sets: int, gold_gap: float) -> list[CandidateSet]:
    """Each prompt has a better and a worse answer, ``gold_gap`` apart; gold std over the pool = gap / 2."""
    return [CandidateSet(f"prompt {i}", (f"good answer {i}", f"bad answer {i}"), np.array([gold_gap, 0.0]))
            for i in range(n_sets)]


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_flip_rate_matches_bradley_terry(beta: float) -> None:
    sets = two_candidate_sets(50, gold_gap=2.0)  # standardised gap Δ = 2 / 1 = 2
    n = 20000
    data = simulate_comparisons(sets, n, SimulatedAnnotator(beta=beta), seed=1)
    good = {s.response_ids()[0] for s in sets}
    worse_wins = np.mean([(c.a if c.outcome == "a" else c.b) not in good for c in data.comparisons])
    expected = float(sigmoid(np.array(-beta * 2.0)))
    assert abs(worse_wins - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def test_label_flips_and_position_bias() -> None:
    sets = two_candidate_sets(50, gold_gap=2.0)
    n = 20000
    flips = simulate_comparisons(sets, n, SimulatedAnnotator(beta=np.inf, flip_rate=0.2), seed=2)
    good = {s.response_ids()[0] for s in sets}
    wrong = np.mean([(c.a if c.outcome == "a" else c.b) not in good for c in flips.comparisons])
    assert abs(wrong - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n)
    # β = 0 (no gold signal) and a position bias: the first-shown response wins σ(bias) of the time
    biased = simulate_comparisons(sets, n, SimulatedAnnotator(beta=0.0, position_bias=1.0), seed=3)
    first = np.mean([c.outcome == "a" for c in biased.comparisons])
    assert abs(first - sigmoid(np.array(1.0))) < 4 * np.sqrt(0.25 / n)


def test_length_bias_prefers_longer() -> None:
    sets = [CandidateSet(f"q{i}", ("short", "a much longer answer " * 5), np.array([0.0, 0.0])) for i in range(20)]
    data = simulate_comparisons(sets, 4000, SimulatedAnnotator(beta=1.0, length_bias=2.0), seed=0)
    longer_wins = np.mean([len(data.responses[c.a if c.outcome == "a" else c.b].text) > 10 for c in data.comparisons])
    assert longer_wins > 0.8


def test_pairings_budget_and_annotator_ids() -> None:
    rng = np.random.default_rng(0)
    sets = [CandidateSet(f"prompt {i}", tuple(f"answer {i}.{j}" for j in range(5)), rng.normal(size=5)) for i in range(10)]
    team = [SimulatedAnnotator("ann-1", beta=1.0), SimulatedAnnotator("ann-2", beta=5.0)]
    same = simulate_comparisons(sets, 300, team, pairing="same-prompt", seed=0)
    cross = simulate_comparisons(sets, 300, team, pairing="cross-prompt", seed=0)
    assert len(same.comparisons) == len(cross.comparisons) == 300
    assert set(same.annotators()) == {"ann-1", "ann-2"}
    for c in same.comparisons:
        assert same.responses[c.a].prompt_id == same.responses[c.b].prompt_id == c.prompt_id and c.a != c.b
    for c in cross.comparisons:
        assert cross.responses[c.a].prompt_id == c.prompt_id != cross.responses[c.b].prompt_id
        assert c.meta["prompt_b"] == cross.responses[c.b].prompt_id
    # a split by prompt keeps only cross-prompt pairs with both prompts on its side
    train, test = cross.split(test_size=0.3, seed=0)
    for part in (train, test):
        for c in part.comparisons:
            assert part.responses[c.a].prompt_id in part.prompts and part.responses[c.b].prompt_id in part.prompts


def test_identical_texts_are_never_paired() -> None:
    sets = [CandidateSet(f"p{i}", ("same", "same", "other"), np.array([1.0, 1.0, 0.0])) for i in range(5)]
    data = simulate_comparisons(sets, 500, seed=0)
    assert all(c.a != c.b for c in data.comparisons)


def test_learners_train_on_simulated_cross_prompt_data() -> None:
    """Cross-prompt pairs go through the ordinary training path (validation split included) and learn gold."""
    rng = np.random.default_rng(0)
    words = ["excellent", "good", "fine", "poor", "awful"]
    sets = []
    for i in range(60):
        picks = rng.permutation(5)
        sets.append(CandidateSet(f"question {i}", tuple(f"{words[k]} reply {i}" for k in picks),
                                 np.array([4.0 - k for k in picks])))
    data = simulate_comparisons(sets, 3000, SimulatedAnnotator(beta=3.0), pairing="cross-prompt", seed=0)
    features, _ = featurize_dataset(data, _hashing(), "response")
    for kind in ("bt-linear", "clf-logistic"):
        model = RewardModel.create(kind, encoder="hashing:256", features="response", seed=0).fit(data, feature_rows=features)
        scores = model.score(["question 0"] * 5, [f"{w} reply 0" for w in words])
        assert np.all(np.diff(scores) < 0), kind


def _hashing():  # noqa: ANN202
    from rewardlab.embed.base import make_encoder

    return make_encoder("hashing:256")
