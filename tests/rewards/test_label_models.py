"""Label models (Davidson ties, strength-graded comparisons, Plackett-Luce rankings, ordinal ratings) recover the
known reward and their own parameters from data drawn from their own likelihood, and save/load exactly.

Recovery settings: linear heads fitted to convergence without weight decay or early stopping (120 epochs at lr
2e-2), i.e. the maximum-likelihood estimate, not a shrunk or stopped one (those pull every scale towards 0). At
3,000 examples, seeds 0-2 gave ν 0.74-0.80 (true 0.8), reward slopes 0.97-1.04, strength cutpoints within .02
(tie band) and .05, ordinal thresholds within .13 after the location is aligned; the tolerances are about 3× those
spreads, so sampling noise passes and a wrong likelihood (a ½-target reading of ties shrinks the scale by
2/(2+ν), a third) does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from label_model_data import davidson_pairs, graded_pairs, ordinal_ratings, pl_rankings

from rewardlab.data import Comparison, FeedbackDataset, Ranking, Rating
from rewardlab.errors import ModelError
from rewardlab.rewards import load_head, make_head
from rewardlab.rewards.likelihoods import davidson_log_likelihood, fit_davidson_nu
from rewardlab.rewards.training_set import build_training_set

MLE = {"weight_decay": 0.0, "lr": 2e-2, "val_fraction": 0.0, "max_epochs": 120}


def _slope(true: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(true, predicted, 1)
    return float(slope), float(intercept)


def test_davidson_recovers_reward_and_tie_parameter() -> None:
    data, true = davidson_pairs(3000, nu=0.8, seed=0)
    assert 0.15 < data.ties().mean() < 0.3  # the draw really has ties to learn from
    head = make_head("davidson-linear", **MLE).fit(data)
    assert np.corrcoef(head.predict(data.x), true)[0, 1] > 0.95
    slope, _ = _slope(true, head.predict(data.x))
    assert abs(slope - 1) < 0.12, slope  # the reward's scale too: Davidson's Δ is on the generating scale
    params = head.label_model_params()
    assert params["model"] == "davidson" and abs(params["nu"] - 0.8) < 0.15, params
    assert head.fit_log["label_model"]["nu"] == pytest.approx(params["nu"])


def test_graded_comparisons_recover_cutpoints_and_tie_band() -> None:
    data, true = graded_pairs(3000, tie_halfwidth=0.4, cutpoints=[1.5], strengths=[0.3, 0.9], seed=0)
    head = make_head("bt-strength-linear", **MLE).fit(data)
    assert np.corrcoef(head.predict(data.x), true)[0, 1] > 0.95
    params = head.label_model_params()
    assert params["strength_levels"] == pytest.approx([0.3, 0.9])
    assert params["cutpoints"] == pytest.approx([0.4, 1.5], abs=0.2), params


def test_graded_without_strengths_or_ties_is_bradley_terry() -> None:
    """No strength and no tie: every pair is censored to "a won", P = σ(Δ), the BT likelihood exactly."""
    data, _ = davidson_pairs(400, nu=0.8, seed=3)
    decided = ~data.ties()
    data.pair_a, data.pair_b, data.pair_target = data.pair_a[decided], data.pair_b[decided], data.pair_target[decided]
    data.pair_tie = data.pair_tie[decided]
    graded = make_head("bt-strength-linear", seed=1).fit(data)
    bt = make_head("bt-linear", seed=1).fit(data)
    assert graded.label_model_params()["cutpoints"] == [0.0]
    assert np.allclose(graded.predict(data.x), bt.predict(data.x), atol=1e-4)


def test_plackett_luce_recovers_reward_from_rankings() -> None:
    data, true = pl_rankings(800, per_prompt=4, seed=0, expand_pairs=False)
    x_new = np.random.default_rng(9).normal(size=(2000, data.dim)).astype(np.float32)
    head = make_head("pl-linear", **MLE).fit(data)
    w = np.linalg.lstsq(data.x, true, rcond=None)[0]
    assert np.corrcoef(head.predict(x_new), x_new @ w)[0, 1] > 0.95
    assert abs(_slope(true, head.predict(data.x))[0] - 1) < 0.1


def test_plackett_luce_treats_a_decided_comparison_as_a_ranking_of_two() -> None:
    """On comparisons alone (no ties) PL's likelihood is BT's: the same reward up to optimisation noise."""
    data, _ = davidson_pairs(400, nu=0.8, seed=3)
    pl = make_head("pl-linear", seed=1).fit(data)
    bt = make_head("bt-linear", seed=1).fit(data)
    assert np.corrcoef(pl.predict(data.x), bt.predict(data.x))[0, 1] > 0.98


def test_ordinal_recovers_reward_and_thresholds() -> None:
    thresholds = [-2.0, -0.5, 0.7, 2.0]
    data, true = ordinal_ratings(3000, thresholds, seed=0)
    head = make_head("ordinal-linear", **MLE).fit(data)
    predicted = head.predict(data.x)
    assert np.corrcoef(predicted, true)[0, 1] > 0.95
    slope, intercept = _slope(true, predicted)
    assert abs(slope - 1) < 0.12
    params = head.label_model_params()
    assert params["levels"] == [1.0, 2.0, 3.0, 4.0, 5.0] and params["scale"] == [1.0, 5.0]
    # the reward's location is free (the net's bias and the thresholds move together): compare on the true scale
    recovered = (np.array(params["thresholds"]) - intercept) / slope
    assert recovered == pytest.approx(thresholds, abs=0.25), recovered
    expected = head.expected_rating(data.x)
    assert ((expected >= 1) & (expected <= 5)).all()
    order = np.argsort(predicted)
    assert (np.diff(expected[order]) >= -1e-9).all()  # E[rating] rises with the reward
    assert abs(expected.mean() - data.rating_value.mean()) < 0.1


def test_davidson_beats_half_target_bradley_terry_on_held_out_ties() -> None:
    """Held-out log-likelihood under Davidson's three-outcome model (the ½-target BT gives ties no probability of
    its own, so its rewards get their best ν, fitted on the training pairs after training)."""
    data, _ = davidson_pairs(4000, nu=1.5, seed=1)
    in_train = np.arange(len(data.x)) < 4000  # the first 2,000 pairs train, the other 2,000 (same reward) test
    train, test = data._restrict(in_train), data._restrict(~in_train)
    scores = {}
    for kind in ("davidson-linear", "bt-linear"):
        head = make_head(kind, seed=0).fit(train)
        diff_train = head.predict(train.x[train.pair_a]) - head.predict(train.x[train.pair_b])
        outcome_train = np.rint(2 * train.pair_target).astype(int)
        nu = head.label_model_params()["nu"] if kind.startswith("davidson") else fit_davidson_nu(diff_train, outcome_train)
        diff = head.predict(test.x[test.pair_a]) - head.predict(test.x[test.pair_b])
        scores[kind] = davidson_log_likelihood(diff, np.rint(2 * test.pair_target).astype(int), nu).mean()
    assert scores["davidson-linear"] > scores["bt-linear"] + 0.01, scores


@pytest.mark.parametrize("kind", ["davidson-mlp", "bt-strength-mlp", "pl-mlp", "ordinal-mlp"])
def test_save_load_round_trip_keeps_the_label_model(kind: str, tmp_path: Path) -> None:
    if kind.startswith("ordinal"):
        data, _ = ordinal_ratings(300, [-1.0, 1.0], seed=2)
    elif kind.startswith("pl"):
        data, _ = pl_rankings(100, per_prompt=3, seed=2)
    else:
        data, _ = graded_pairs(300, tie_halfwidth=0.4, cutpoints=[1.5], strengths=[0.3, 0.9], seed=2)
    head = make_head(kind, seed=3, max_epochs=5).fit(data)
    head.save(tmp_path / "head")
    loaded = load_head(tmp_path / "head")
    assert np.array_equal(head.predict(data.x), loaded.predict(data.x))
    assert loaded.label_model_params() == head.label_model_params()
    if kind.startswith("ordinal"):
        assert np.array_equal(loaded.expected_rating(data.x), head.expected_rating(data.x))


def test_a_damaged_label_model_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file
    data, _ = ordinal_ratings(200, [-1.0, 1.0], seed=2)
    make_head("ordinal-linear", max_epochs=2).fit(data).save(tmp_path / "head")
    arrays = load_file(str(tmp_path / "head" / "head.safetensors"))
    del arrays["label.first_threshold"]
    save_file(arrays, str(tmp_path / "head" / "head.safetensors"))
    with pytest.raises(ModelError, match="label model's parameters are damaged"):
        load_head(tmp_path / "head")


def test_label_models_refuse_what_they_cannot_use() -> None:
    data, _ = ordinal_ratings(200, [-1.0, 1.0], seed=2)
    with pytest.raises(ModelError, match="Davidson head needs comparisons"):
        make_head("davidson-linear").fit(data)
    with pytest.raises(ModelError, match="not available with objective 'davidson'"):
        make_head("davidson-linear", length_debias=True).fit(davidson_pairs(100, 1.0, 0)[0])
    data.rating_scale = data.rating_scale.copy()
    data.rating_scale[:5] = np.nan
    with pytest.raises(ModelError, match="5 of 200 ratings have no scale"):
        make_head("ordinal-linear").fit(data)


def _feedback() -> FeedbackDataset:
    ds = FeedbackDataset("label-models")
    for p in range(12):
        pid = ds.add_prompt(f"question {p}")
        r = [ds.add_response(pid, f"answer {p}.{i}") for i in range(4)]
        ds.add(Comparison(pid, r[0], r[1], "tie" if p % 3 == 0 else "a", strength=None if p % 2 else 0.7))
        ds.add(Ranking(pid, (r[3], r[2], r[0])))
        ds.add(Rating(r[1], 4.0, (1.0, 5.0)))
    return ds


def test_training_set_keeps_ties_strengths_rankings_and_scales_through_splits() -> None:
    ds = _feedback()
    rows = {rid: np.full(3, i, np.float32) for i, rid in enumerate(sorted(ds.responses))}
    data = build_training_set(ds, rows)
    n_comparisons = len(ds.comparisons)
    assert data.ties()[:n_comparisons].sum() == 4 and not data.ties()[n_comparisons:].any()
    assert np.isnan(data.strengths()[n_comparisons:]).all() and np.nanmax(data.strengths()) == pytest.approx(0.7)
    assert data.from_rankings().sum() == 12 * 3 and len(data.rankings) == 12
    assert [data.response_ids[i] for i in data.rankings[0]] == list(ds.rankings[0].response_ids)
    assert data.rating_scales().tolist() == [[1.0, 5.0]] * 12
    train, val = data.split_by_group(0.25, seed=0)
    assert len(train.rankings) + len(val.rankings) == 12
    assert len(train.pair_tie) == len(train.pair_a) == len(train.pair_strength) == len(train.pair_from_ranking)
    for part in (train, val):  # each kept ranking still names its items, best first
        kept_ids = {tuple(part.response_ids[i] for i in r) for r in part.rankings}
        assert kept_ids <= {tuple(r.response_ids) for r in ds.rankings}
    # a ranking loses the items that do not survive, and goes when fewer than two are left
    keep = np.ones(len(data.x), dtype=bool)
    first = data.rankings[0]
    keep[first[0]] = False
    shrunk = data._restrict(keep)
    assert [shrunk.response_ids[i] for i in shrunk.rankings[0]] == [data.response_ids[i] for i in first[1:]]
    keep[first[1]] = False
    assert len(data._restrict(keep).rankings) == 11


def test_plackett_luce_refuses_pair_weights_it_cannot_apply() -> None:
    data, _ = pl_rankings(50, per_prompt=3, seed=2)
    data.pair_weight = np.linspace(0.5, 1.5, len(data.pair_a)).astype(np.float32)
    with pytest.raises(ModelError, match="annotator weights"):
        make_head("pl-linear", max_epochs=2).fit(data)
    davidson, true = davidson_pairs(400, 1.0, 0)
    davidson.pair_target = davidson.pair_target.copy()
    davidson.pair_target[200:] = 1 - davidson.pair_target[200:]  # half the labels reversed ...
    davidson.pair_weight = (np.arange(400) < 200).astype(np.float32)  # ... and weighing nothing
    weighted = make_head("davidson-linear", seed=0, **MLE).fit(davidson)
    assert np.corrcoef(weighted.predict(davidson.x), true)[0, 1] > 0.9
    davidson.pair_weight = np.zeros(0, np.float32)
    unweighted = make_head("davidson-linear", seed=0, **MLE).fit(davidson)
    assert abs(np.corrcoef(unweighted.predict(davidson.x), true)[0, 1]) < 0.5
