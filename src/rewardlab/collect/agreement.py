"""Inter-annotator agreement: how far human feedback can be trusted before a reward model learns from it.

Labels are `Judgement`s (an annotator's value for an item): pairwise A/B/tie outcomes, Likert scores or binary
correct/incorrect verdicts. Krippendorff's α (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability")
handles any number of annotators, missing labels and nominal/ordinal/interval data; Fleiss' κ is the familiar
nominal statistic. Both get percentile-bootstrap CIs over items, since items, not labels, are the sampled unit.
Per-annotator agreement with the others' majority flags careless annotators; `position_bias` checks whether
the response shown on the left wins more often than chance.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from statistics import NormalDist
from typing import Any

import numpy as np

from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import Estimate

LEVELS = ("nominal", "ordinal", "interval")


@dataclass(frozen=True)
class Judgement:
    """One label: ``annotator`` gave ``value`` to ``item``."""

    item: str
    annotator: str
    value: float | str  # a category (str or number); ordinal and interval levels need numbers


@dataclass(frozen=True)
class _Indexed:
    """Ratings as integer indices, shared by every function that starts from a list of `Judgement`s."""

    items: list[str]
    annotators: list[str]
    values: list[float | str]  # sorted distinct values; ``code`` indexes into it
    numeric: bool
    item: np.ndarray
    annotator: np.ndarray
    code: np.ndarray


def _index(ratings: Sequence[Judgement]) -> _Indexed:
    if len(ratings) == 0:
        raise InvalidValueError("no ratings given")
    dupes = [pair for pair, k in Counter((r.item, r.annotator) for r in ratings).items() if k > 1]
    if dupes:
        shown = ", ".join(f"(item {i!r}, annotator {a!r})" for i, a in dupes[:5])
        more = f" and {len(dupes) - 5} more" if len(dupes) > 5 else ""
        raise InvalidValueError(f"each annotator may rate an item once; duplicated: {shown}{more}")
    is_str = [isinstance(r.value, str) for r in ratings]
    for r in ratings:
        if not isinstance(r.value, str | Real):
            raise InvalidValueError(f"rating value must be a str or a number, got {r.value!r} (item {r.item!r})")
    if any(is_str) and not all(is_str):
        raise InvalidValueError("rating values mix strings and numbers; use one kind for all ratings")
    numeric = not is_str[0]
    raw: list[Any] = [float(r.value) if numeric else r.value for r in ratings]
    if numeric and not np.all(np.isfinite(raw)):
        raise InvalidValueError("numeric rating values must be finite (NaN means 'missing' in the matrix)")
    values = sorted(set(raw))
    items, annotators = sorted({r.item for r in ratings}), sorted({r.annotator for r in ratings})
    pos = {v: k for k, v in enumerate(values)}
    item_pos, ann_pos = {v: k for k, v in enumerate(items)}, {v: k for k, v in enumerate(annotators)}
    return _Indexed(
        items=items,
        annotators=annotators,
        values=values,
        numeric=numeric,
        item=np.array([item_pos[r.item] for r in ratings], dtype=np.intp),
        annotator=np.array([ann_pos[r.annotator] for r in ratings], dtype=np.intp),
        code=np.array([pos[v] for v in raw], dtype=np.intp),
    )


def reliability_matrix(ratings: Sequence[Judgement]) -> tuple[np.ndarray, list[str], list[str], list[float | str]]:
    """(annotators × items) matrix for `krippendorff_alpha`, NaN where an annotator did not rate an item.

    Returns the matrix, annotator ids, item ids (both sorted) and the sorted distinct values. Numeric values
    are stored as themselves (so interval distances are real distances); string values are stored as their
    index into the sorted list, which is fine for the nominal level only.
    """
    ix = _index(ratings)
    matrix = np.full((len(ix.annotators), len(ix.items)), np.nan)
    matrix[ix.annotator, ix.item] = np.asarray(ix.values, dtype=np.float64)[ix.code] if ix.numeric else ix.code
    return matrix, ix.annotators, ix.items, ix.values


def category_counts(ratings: Sequence[Judgement]) -> tuple[np.ndarray, list[str], list[float | str]]:
    """(items × categories) counts for `fleiss_kappa`, with the item ids and the sorted categories."""
    ix = _index(ratings)
    counts = np.zeros((len(ix.items), len(ix.values)))
    np.add.at(counts, (ix.item, ix.code), 1.0)
    return counts, ix.items, ix.values


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise InvalidValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _unit_counts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(units × values) counts of each distinct value within each unit (column), and the sorted values."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise InvalidValueError(f"reliability matrix must be 2-D (coders × units), got shape {m.shape}")
    if np.isinf(m).any():
        raise InvalidValueError("reliability matrix holds infinite values")
    present = ~np.isnan(m)
    values, codes = np.unique(m[present], return_inverse=True)
    counts = np.zeros((m.shape[1], values.size))
    np.add.at(counts, (np.nonzero(present)[1], codes), 1.0)  # nonzero and boolean indexing share C order
    return counts, values


def _alpha_from_counts(counts: np.ndarray, values: np.ndarray, level: str) -> float:
    """α from per-unit value counts, via the coincidence matrix o (values × values)."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    if counts.shape[0] == 0:
        raise InvalidValueError("no pairable values: every unit has fewer than 2 values")
    weighted = counts / (m - 1)[:, None]
    # o_ck = Σ_u n_uc (n_uk − [c = k]) / (m_u − 1): every ordered pair of values within a unit, weighted
    o = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(values.size)
    elif level == "interval":
        delta = (values[:, None] - values[None, :]) ** 2
    else:
        # Krippendorff's ordinal distance (Σ_{g=c..k} n_g − (n_c + n_k)/2)² is the squared gap between the
        # mid-ranks cumsum(n) − n/2 of the two values, so ordinal α is interval α on mid-ranks.
        mid = np.cumsum(n_c) - n_c / 2
        delta = (mid[:, None] - mid[None, :]) ** 2
    expected = n_c @ delta @ n_c
    if expected <= 0:
        return math.nan  # one value only: no disagreement is possible, so reliability is undefined
    return float(1.0 - (n - 1) * np.sum(o * delta) / expected)


def krippendorff_alpha(matrix: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's α for a (coders × units) matrix with NaN for missing values.

    Units with fewer than 2 values are not pairable and are ignored. Ordinal α uses only the order of the
    values, interval α their differences. Returns NaN when every pairable value is the same, since then the
    expected disagreement is 0 and α = 1 − D_o / D_e is undefined. Raises ValueError for an unknown level
    or when no unit has 2 values.
    """
    _check_level(level)
    counts, values = _unit_counts(matrix)
    return _alpha_from_counts(counts, values, level)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' κ from (items × categories) counts, allowing a different number of raters per item.

    P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)) is averaged over items; category shares p_j pool all ratings.
    With a constant number of raters this is Fleiss (1971). Items with fewer than 2 ratings are ignored.
    Returns NaN when every rating falls in one category (chance agreement is 1).
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2:
        raise InvalidValueError(f"counts must be 2-D (items × categories), got shape {c.shape}")
    if not np.all(np.isfinite(c)) or (c < 0).any() or not np.array_equal(c, np.round(c)):
        raise InvalidValueError("counts must be non-negative whole numbers")
    n_i = c.sum(axis=1)
    c, n_i = c[n_i >= 2], n_i[n_i >= 2]
    if c.shape[0] == 0:
        raise InvalidValueError("no item has 2 or more ratings, so agreement cannot be measured")
    p_bar = np.mean(((c**2).sum(axis=1) - n_i) / (n_i * (n_i - 1)))
    p_e = np.sum((c.sum(axis=0) / n_i.sum()) ** 2)
    if p_e >= 1.0:
        return math.nan
    return float((p_bar - p_e) / (1.0 - p_e))


def _bootstrap_ci(
    statistic: Callable[[np.ndarray], float], rows: np.ndarray, n_resamples: int, seed: int, confidence: float
) -> tuple[float, float]:
    """Percentile CI of ``statistic`` over resamples of ``rows`` (one row per item) with replacement."""
    if rows.shape[0] < 2 or n_resamples == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, rows.shape[0], size=(n_resamples, rows.shape[0]))
    stats = np.array([statistic(rows[i]) for i in idx])
    stats = stats[~np.isnan(stats)]
    if stats.size < 2:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return float(low), float(high)


def _check_ci_args(n_resamples: int, confidence: float) -> None:
    if n_resamples < 0:
        raise InvalidValueError(f"n_resamples must be >= 0, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise InvalidValueError(f"confidence must be in (0, 1), got {confidence}")


def alpha_with_ci(
    ratings: Sequence[Judgement], level: str = "nominal", n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Estimate:
    """Krippendorff's α with a percentile-bootstrap CI over items; ``n`` counts pairable items."""
    _check_level(level)
    _check_ci_args(n_resamples, confidence)
    matrix, _, _, values = reliability_matrix(ratings)
    if level != "nominal" and values and isinstance(values[0], str):
        raise InvalidValueError(f"{level} alpha needs numeric rating values; got strings such as {values[0]!r}")
    counts, unique = _unit_counts(matrix)
    counts = counts[counts.sum(axis=1) >= 2]
    value = _alpha_from_counts(counts, unique, level)
    low, high = _bootstrap_ci(lambda c: _alpha_from_counts(c, unique, level), counts, n_resamples, seed, confidence)
    return Estimate(value, low, high, int(counts.shape[0]))


def fleiss_with_ci(ratings: Sequence[Judgement], n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """Fleiss' κ with a percentile-bootstrap CI over items; ``n`` counts items with 2 or more ratings."""
    _check_ci_args(n_resamples, confidence)
    counts, _, _ = category_counts(ratings)
    counts = counts[counts.sum(axis=1) >= 2]
    value = fleiss_kappa(counts)
    low, high = _bootstrap_ci(fleiss_kappa, counts, n_resamples, seed, confidence)
    return Estimate(value, low, high, int(counts.shape[0]))


def _wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval: unlike the normal approximation it stays inside [0, 1] and works near 0 or 1."""
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _proportion(successes: int, n: int, confidence: float) -> Estimate:
    low, high = _wilson(successes, n, confidence)
    return Estimate(successes / n if n else math.nan, low, high, n)


def leave_one_out_agreement(ratings: Sequence[Judgement], confidence: float = 0.95) -> dict[str, Estimate]:
    """Per annotator: the share of their labels that match the majority label of the other annotators.

    Only items that someone else also rated count, and items where the others' majority is tied are
    skipped; ``n`` is the number of items compared (NaN value and CI when it is 0). Values are compared
    exactly, so this suits categorical labels. A careless annotator scores well below the rest.
    """
    _check_ci_args(0, confidence)
    ix = _index(ratings)
    counts = np.zeros((len(ix.items), len(ix.values)))
    np.add.at(counts, (ix.item, ix.code), 1.0)
    rows = np.arange(ix.code.size)
    others = counts[ix.item]  # (ratings × values): the item's counts without this rating's own label
    others[rows, ix.code] -= 1.0
    top = others.max(axis=1)
    compared = (others.sum(axis=1) >= 1) & ((others == top[:, None]).sum(axis=1) == 1)
    hits = compared & (others[rows, ix.code] == top)
    n = np.bincount(ix.annotator, weights=compared, minlength=len(ix.annotators)).astype(int)
    k = np.bincount(ix.annotator, weights=hits, minlength=len(ix.annotators)).astype(int)
    return {a: _proportion(int(k[j]), int(n[j]), confidence) for j, a in enumerate(ix.annotators)}


def position_bias(shown_left_won: Sequence[bool | None], confidence: float = 0.95) -> Estimate:
    """Share of non-tie pairwise comparisons won by the response shown on the left, with a Wilson CI.

    True = left preferred, False = right preferred, None = tie (excluded). Unbiased annotators give about
    0.5 when positions are randomised; a CI that excludes 0.5 is evidence of position bias.
    """
    _check_ci_args(0, confidence)
    for v in shown_left_won:
        if v is not None and not isinstance(v, bool | np.bool_):
            raise InvalidValueError(f"entries must be True, False or None (tie), got {v!r}")
    decided = [bool(v) for v in shown_left_won if v is not None]
    if not decided:
        raise InvalidValueError("no non-tie comparisons: position bias is undefined")
    return _proportion(sum(decided), len(decided), confidence)


def agreement_summary(ratings: Sequence[Judgement], level: str, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Everything above for one batch of ratings, as a JSON-ready dict (undefined numbers are NaN)."""
    _check_level(level)
    ix = _index(ratings)
    summary: dict[str, Any] = {
        "items": len(ix.items),
        "annotators": len(ix.annotators),
        "ratings": len(ratings),
        "alpha": alpha_with_ci(ratings, level, n_resamples, seed).as_dict(),
        "alpha_level": level,
    }
    summary["fleiss_kappa"] = fleiss_with_ci(ratings, n_resamples, seed).as_dict()
    if level != "nominal":
        summary["alpha_nominal"] = alpha_with_ci(ratings, "nominal", n_resamples, seed).as_dict()
    per_rater = np.bincount(ix.annotator, minlength=len(ix.annotators))
    loo = leave_one_out_agreement(ratings)
    summary["per_annotator"] = {
        a: {"ratings": int(per_rater[j]), "agreement_with_others": loo[a].as_dict()} for j, a in enumerate(ix.annotators)
    }
    return summary


def consensus(ratings: Sequence[Judgement]) -> dict[str, float | str | None]:
    """Per item, the most common value among its labels; None where two or more values share the top count."""
    by_item: dict[str, Counter[float | str]] = {}
    for r in ratings:
        by_item.setdefault(r.item, Counter())[r.value] += 1
    result: dict[str, float | str | None] = {}
    for item, counts in by_item.items():
        ranked = counts.most_common(2)
        result[item] = None if len(ranked) == 2 and ranked[0][1] == ranked[1][1] else ranked[0][0]
    return result


def compare_sources(ours: Sequence[Judgement], theirs: Sequence[Judgement], level: str, n_resamples: int = 1000,
                    seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """How two label sources (e.g. an AI judge and humans) agree on the items both labelled.

    Each source is reduced to its consensus label per item (`consensus`; items without a clear majority in either
    source are left out and counted). Reported: the share of shared items whose consensus labels are equal (Wilson
    CI), Krippendorff's α with the two sources as two coders (bootstrap CI over items), and per annotator of
    ``ours`` the share of their labels equal to the other source's consensus. Values are compared exactly, so both
    sources must use the same coding (e.g. pairwise a/tie/b as 1/0/−1, oriented the same way).
    """
    _check_level(level)
    _check_ci_args(n_resamples, confidence)
    mine, other = consensus(ours), consensus(theirs)
    shared = sorted(set(mine) & set(other))
    decided = [item for item in shared if mine[item] is not None and other[item] is not None]
    result: dict[str, Any] = {"items_ours": len(mine), "items_theirs": len(other), "items_shared": len(shared),
                              "no_majority": len(shared) - len(decided)}
    if not decided:
        raise InvalidValueError(f"the two label sources share no item with a clear label on both sides "
                                f"({len(mine)} and {len(other)} items, {len(shared)} shared)")
    equal = sum(mine[item] == other[item] for item in decided)
    result["agreement"] = _proportion(equal, len(decided), confidence).as_dict()
    pair = [Judgement(item, side, value) for item in decided
            for side, value in (("ours", mine[item]), ("theirs", other[item])) if value is not None]
    try:
        result["alpha"] = alpha_with_ci(pair, level, n_resamples, seed, confidence).as_dict()
    except InvalidValueError as error:
        result["alpha_error"] = str(error)
    per: dict[str, list[bool]] = {}
    for r in ours:
        target = other.get(r.item)
        if target is not None:
            per.setdefault(r.annotator, []).append(r.value == target)
    result["per_annotator"] = {who: _proportion(sum(hits), len(hits), confidence).as_dict()
                               for who, hits in sorted(per.items())}
    return result
