"""Agreement statistics: published worked examples, hand-computed fixtures, CIs and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from rewardlab.collect.agreement import (
    Estimate,
    Judgement,
    agreement_summary,
    alpha_with_ci,
    category_counts,
    fleiss_kappa,
    fleiss_with_ci,
    krippendorff_alpha,
    leave_one_out_agreement,
    position_bias,
    reliability_matrix,
)

N = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers × 12 units,
# values 1-5, missing data; unit 12 has a single value and is not pairable.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
)

# Fleiss (1971) as reproduced on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters each.
FLEISS_WIKIPEDIA = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def ratings_from_matrix(matrix: np.ndarray) -> list[Judgement]:
    """Ratings for a (coders × units) matrix, NaN = not rated."""
    coders, units = np.nonzero(~np.isnan(matrix))
    return [Judgement(f"item{u:03d}", f"coder{c}", float(matrix[c, u])) for c, u in zip(coders, units)]


def simulate(n_items: int, seed: int, careless: bool = False) -> list[Judgement]:
    """4 annotators who give the true label 85% of the time (else a random one), plus optionally a careless one."""
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    truth = rng.integers(0, 3, n_items)
    out = []
    for j in range(5 if careless else 4):
        right = rng.random(n_items) < (0.0 if j == 4 else 0.85)
        given = np.where(right, truth, rng.integers(0, 3, n_items))
        out += [Judgement(f"i{i}", f"ann{j}", labels[g]) for i, g in enumerate(given)]
    return out


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_2011_worked_example(level: str, expected: float) -> None:
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == expected


def test_alpha_from_ratings_matches_matrix() -> None:
    ratings = ratings_from_matrix(KRIPPENDORFF_2011)
    for level, expected in [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]:
        est = alpha_with_ci(ratings, level, n_resamples=200)
        assert round(est.value, 3) == expected
        assert est.n == 11  # unit 12 is not pairable


def test_alpha_hand_computed_nominal() -> None:
    # coder 1: a a b b a ; coder 2: a b b b - (unit 5 has one value: not pairable, ignored)
    # coincidences (each unit has m_u = 2, so each ordered pair counts 1/(m_u - 1) = 1):
    #   unit 1 (a,a): o_aa += 2; unit 2 (a,b): o_ab += 1, o_ba += 1; units 3, 4 (b,b): o_bb += 2 each
    #   o = [[2, 1], [1, 4]]   n_a = 3, n_b = 5, n = 8
    # alpha = 1 - (n - 1) * (o_ab + o_ba) / (n_a n_b + n_b n_a) = 1 - 7 * 2 / 30 = 8 / 15
    matrix = np.array([[0, 0, 1, 1, 0], [0, 1, 1, 1, N]])
    assert krippendorff_alpha(matrix) == pytest.approx(8 / 15)
    assert krippendorff_alpha(matrix[:, :4]) == pytest.approx(8 / 15)


def test_alpha_is_small_sample_scotts_pi_for_two_coders() -> None:
    # with 2 coders and no missing data, 1 - alpha = (1 - pi) (2N - 1) / (2N)
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 3, size=(2, 40)).astype(float)
    matrix[1, :25] = matrix[0, :25]
    p_o = np.mean(matrix[0] == matrix[1])
    p_e = np.sum((np.bincount(matrix.ravel().astype(int)) / matrix.size) ** 2)
    pi = (p_o - p_e) / (1 - p_e)
    assert krippendorff_alpha(matrix) == pytest.approx(1 - (1 - pi) * (2 * 40 - 1) / (2 * 40))


def test_fleiss_wikipedia_example() -> None:
    assert round(fleiss_kappa(FLEISS_WIKIPEDIA), 3) == 0.210


def test_fleiss_hand_computed() -> None:
    # P_i = 1, 1, (4 + 1 - 3) / 6 = 1/3 -> P_bar = 7/9; p = (5/9, 4/9) -> P_e = 41/81
    # kappa = (63/81 - 41/81) / (40/81) = 0.55
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [2, 1]])) == pytest.approx(0.55)
    # variable raters: n_i = 2, 3, 4; P_i = 1, 1/3, 1 -> P_bar = 7/9; p = (3/9, 6/9) -> P_e = 5/9; kappa = 0.5
    # a fourth item with one rating is ignored, also in the pooled shares
    assert fleiss_kappa(np.array([[2, 0], [1, 2], [0, 4], [1, 0]])) == pytest.approx(0.5)


def test_fleiss_constant_raters_equals_1971_formula() -> None:
    rng = np.random.default_rng(7)
    counts = np.array([rng.multinomial(6, rng.dirichlet([1, 1, 1, 1])) for _ in range(30)])
    n_items, n_raters = counts.shape[0], 6
    p_bar = (np.sum(counts**2) - n_items * n_raters) / (n_items * n_raters * (n_raters - 1))
    p_e = np.sum((counts.sum(axis=0) / (n_items * n_raters)) ** 2)
    assert fleiss_kappa(counts) == pytest.approx((p_bar - p_e) / (1 - p_e))


def test_perfect_agreement() -> None:
    matrix = np.tile([1.0, 2.0, 3.0, 1.0, 5.0], (3, 1))
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(matrix, level) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)


def test_no_possible_disagreement_is_nan() -> None:
    assert math.isnan(krippendorff_alpha(np.ones((2, 3))))
    assert math.isnan(fleiss_kappa(np.array([[2, 0], [3, 0]])))


def test_reliability_matrix_and_counts_layout() -> None:
    ratings = [Judgement("x", "bob", "tie"), Judgement("x", "amy", "A"), Judgement("y", "amy", "B")]
    matrix, annotators, items, values = reliability_matrix(ratings)
    assert annotators == ["amy", "bob"] and items == ["x", "y"] and values == ["A", "B", "tie"]
    np.testing.assert_array_equal(matrix, [[0, 1], [2, N]])
    counts, items, values = category_counts(ratings)
    np.testing.assert_array_equal(counts, [[1, 0, 1], [0, 1, 0]])
    numeric, _, _, values = reliability_matrix([Judgement("x", "amy", 4), Judgement("x", "bob", 2.5)])
    assert values == [2.5, 4.0]
    np.testing.assert_array_equal(numeric, [[4.0], [2.5]])


def test_leave_one_out_hand_computed() -> None:
    rows = {
        "i1": {"a": "x", "b": "x", "c": "x"},  # everyone agrees: a, b, c each hit
        "i2": {"a": "x", "b": "y", "c": "y"},  # a misses (others y, y); b and c see a tie (x vs y): skipped
        "i3": {"a": "y", "b": "y"},  # a and b hit
        "i4": {"c": "x"},  # nobody else rated it: skipped
        "i5": {"a": "x", "b": "y", "c": "z"},  # the others always tie: skipped for everyone
    }
    ratings = [Judgement(i, a, v) for i, row in rows.items() for a, v in row.items()]
    loo = leave_one_out_agreement(ratings)
    assert (loo["a"].value, loo["a"].n) == (pytest.approx(2 / 3), 3)
    assert (loo["b"].value, loo["b"].n) == (1.0, 2)
    assert (loo["c"].value, loo["c"].n) == (1.0, 1)
    # Wilson 95% for 2/3: hand value (0.2077, 0.9385), and scipy's independent implementation
    assert (loo["a"].low, loo["a"].high) == (pytest.approx(0.2077, abs=1e-4), pytest.approx(0.9385, abs=1e-4))
    ci = binomtest(2, 3).proportion_ci(0.95, method="wilson")
    assert (loo["a"].low, loo["a"].high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_leave_one_out_flags_careless_annotator() -> None:
    loo = leave_one_out_agreement(simulate(200, seed=11, careless=True))
    careful = [loo[f"ann{j}"].value for j in range(4)]
    assert loo["ann4"].value < min(careful) - 0.3
    assert loo["ann4"].high < min(loo[f"ann{j}"].low for j in range(4))


def test_position_bias_wilson() -> None:
    est = position_bias([True] * 7 + [False] * 3 + [None] * 2)
    assert (est.value, est.n) == (0.7, 10)
    # hand: z^2 = 3.8415, centre = (0.7 + 0.19207) / 1.38415, half = 1.95996 / 1.38415 * sqrt(0.021 + 0.009604)
    assert (est.low, est.high) == (pytest.approx(0.3968, abs=1e-4), pytest.approx(0.8922, abs=1e-4))
    ci = binomtest(7, 10).proportion_ci(0.95, method="wilson")
    assert (est.low, est.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    biased = position_bias([True] * 80 + [False] * 20)
    assert biased.low > 0.5


def test_cis_contain_estimate_and_narrow_with_items() -> None:
    small, large = simulate(40, seed=1), simulate(400, seed=1)
    for estimate in (alpha_with_ci, fleiss_with_ci):
        a, b = estimate(small, n_resamples=300), estimate(large, n_resamples=300)
        for est in (a, b):
            assert est.low <= est.value <= est.high
        assert (a.n, b.n) == (40, 400)
        assert b.high - b.low < 0.6 * (a.high - a.low)


def test_bootstrap_ci_width_matches_sampling_spread() -> None:
    # population kappa of `simulate`: a label is right w.p. 0.9, each wrong one 0.05, truth uniform over 3,
    # so P(two annotators agree) = 0.9^2 + 2 * 0.05^2 = 0.815, P_e = 1/3, kappa = (0.815 - 1/3) / (2/3)
    population = (0.815 - 1 / 3) / (2 / 3)
    for stat, estimate in ((fleiss_kappa, fleiss_with_ci), (krippendorff_alpha, alpha_with_ci)):
        spread = np.std([
            stat(category_counts(r)[0] if stat is fleiss_kappa else reliability_matrix(r)[0])
            for r in (simulate(100, seed=100 + k) for k in range(200))
        ])
        est = estimate(simulate(100, seed=5), n_resamples=1000)
        assert est.low < population < est.high
        assert 0.7 < (est.high - est.low) / (2 * 1.96 * spread) < 1.4


def test_ci_undefined_for_one_item() -> None:
    est = fleiss_with_ci([Judgement("x", "amy", "A"), Judgement("x", "bob", "B"), Judgement("y", "amy", "A")])
    assert est.n == 1 and math.isnan(est.low) and math.isnan(est.high)


def test_summary_is_json_ready() -> None:
    ratings = ratings_from_matrix(KRIPPENDORFF_2011)
    summary = agreement_summary(ratings, "ordinal", n_resamples=50)
    assert (summary["items"], summary["annotators"], summary["ratings"]) == (12, 4, 41)
    assert round(summary["alpha"]["value"], 3) == 0.815 and summary["alpha_level"] == "ordinal"
    assert round(summary["alpha_nominal"]["value"], 3) == 0.743
    assert 0 < summary["fleiss_kappa"]["value"] < 1  # κ on the categories, unequal raters per item
    assert summary["per_annotator"]["coder1"]["ratings"] == 11
    json.dumps(summary)
    nominal = agreement_summary(simulate(30, seed=2), "nominal", n_resamples=50)
    assert set(nominal["fleiss_kappa"]) == set(Estimate(0.0, 0.0, 0.0, 0).as_dict()) and "alpha_nominal" not in nominal


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match=r"item 'x', annotator 'amy'"):
        reliability_matrix([Judgement("x", "amy", "A"), Judgement("x", "amy", "B")])
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha(KRIPPENDORFF_2011, "ratio")
    with pytest.raises(ValueError, match="no pairable values"):
        krippendorff_alpha(np.array([[1.0, N], [N, 2.0]]))
    with pytest.raises(ValueError, match="mix strings and numbers"):
        category_counts([Judgement("x", "amy", "A"), Judgement("x", "bob", 1)])
    with pytest.raises(ValueError, match="numeric"):
        alpha_with_ci([Judgement("x", "amy", "A"), Judgement("x", "bob", "B")], "ordinal")
    with pytest.raises(ValueError, match="2 or more ratings"):
        fleiss_kappa(np.array([[1, 0], [0, 1]]))
    with pytest.raises(ValueError, match="non-tie"):
        position_bias([None, None])
    with pytest.raises(ValueError, match="no ratings"):
        agreement_summary([], "nominal")
