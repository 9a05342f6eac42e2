"""Length controls: does a reward model judge the answer, or only its length?

Every pairwise accuracy is shown beside rules that see nothing but length, on the same pairs and the same
bootstrap resamples, so the comparison is paired:

- prefer-longer and prefer-shorter;
- a length-only head: Bradley-Terry with one weight on the log-length difference, P(a ≻ b) =
  σ(w · (log(1 + len a) − log(1 + len b))), fitted on training pairs only (per fold in CV; cross-fitted by
  prompt on held-out data, see `cross_fit_length_head`);
- per model: Δ accuracy vs the length-only head, length-balanced accuracy (pairs where the better response is
  the longer one, pairs where it is the shorter one, and their mean; equal lengths are left out and counted),
  and the Spearman correlation between reward and length over the scored responses.

Length is counted in characters: it needs no tokenizer, so the controls are the same whatever the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.rewards.training_set import OUTCOME_TARGET, length_winners

#: what `response_length` counts
LENGTH_UNIT = "characters"
#: folds by prompt for cross-fitting the length-only head on held-out data
CROSS_FIT_FOLDS = 5


def response_lengths(dataset: FeedbackDataset, response_ids: Sequence[str]) -> np.ndarray:
    """Length in characters of each response (the unit is encoder-free, so every model gets the same control)."""
    return np.array([len(dataset.responses[rid].text) for rid in response_ids], dtype=np.float64)


def log_length(lengths: np.ndarray) -> np.ndarray:
    return np.log1p(np.asarray(lengths, dtype=np.float64))


@dataclass(frozen=True)
class LengthHead:
    """The length-only reward r(y) = weight · log(1 + len y); weight > 0 means it learned "longer wins"."""

    weight: float

    def score(self, lengths: np.ndarray) -> np.ndarray:
        return self.weight * log_length(lengths)


def fit_length_head(length_a: np.ndarray, length_b: np.ndarray, target: np.ndarray, l2: float = 1e-3) -> LengthHead:
    """Maximum-likelihood BT weight on the log-length difference (Newton's method; ``l2`` keeps it finite
    when length separates the training pairs). Labelled ties (target .5) count as half a win each way."""
    if l2 < 0:
        raise InvalidValueError(f"l2 must be >= 0, got {l2}")
    d = log_length(length_a) - log_length(length_b)
    y = np.asarray(target, dtype=np.float64)
    if len(d) == 0 or not np.any(d):
        return LengthHead(0.0)
    w = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(w * d, -50, 50)))
        gradient = float(np.dot(d, p - y)) + l2 * w
        hessian = float(np.dot(d * d, p * (1 - p))) + l2
        if hessian <= 1e-12:
            break
        step = gradient / hessian
        w -= step
        if abs(step) < 1e-10 * max(1.0, abs(w)):
            break
    return LengthHead(float(w))


def fit_length_head_on(dataset: FeedbackDataset, l2: float = 1e-3) -> LengthHead:
    """The length-only head fitted on the pairs a pairwise head learns from: the comparisons, and each ranking as
    all its ordered pairs (as `build_training_set` makes them; read directly, since that also groups prompts)."""
    length = {rid: len(r.text) for rid, r in dataset.responses.items()}
    pairs = [(length[c.a], length[c.b], OUTCOME_TARGET[c.outcome]) for c in dataset.comparisons]
    for ranking in dataset.rankings:
        ids = ranking.response_ids
        pairs += [(length[ids[i]], length[ids[j]], 1.0) for i in range(len(ids)) for j in range(i + 1, len(ids))]
    a, b, target = (np.array(column, dtype=np.float64) for column in zip(*pairs)) if pairs else (np.zeros(0),) * 3
    return fit_length_head(a, b, target, l2)


def cross_fit_length_head(length_a: np.ndarray, length_b: np.ndarray, target: np.ndarray, pair_fold: np.ndarray,
                          l2: float = 1e-3) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Scores of both sides from a length head fitted on the other folds' pairs, so no pair is scored by a fit
    that saw it: the control for a saved model evaluated on data whose training set is not at hand."""
    score_a, score_b = np.zeros(len(target)), np.zeros(len(target))
    weights = []
    for fold in np.unique(pair_fold):
        test = pair_fold == fold
        head = fit_length_head(length_a[~test], length_b[~test], target[~test], l2)
        score_a[test], score_b[test] = head.score(length_a[test]), head.score(length_b[test])
        weights.append(head.weight)
    return score_a, score_b, weights


@dataclass(frozen=True)
class LengthControls:
    """Rules that see only length, scored on the evaluated pairs; the pair counts say how balanced they are."""

    prefer_longer: Estimate
    prefer_shorter: Estimate
    length_only: Estimate
    length_only_weights: tuple[float, ...]
    length_only_fit: str
    longer_wins: int  # decided pairs whose better response is the longer one
    shorter_wins: int
    equal_length: int  # decided pairs of equal length: left out of length-balanced accuracy

    def as_dict(self) -> dict[str, object]:
        return {"unit": LENGTH_UNIT, "prefer_longer": self.prefer_longer.as_dict(),
                "prefer_shorter": self.prefer_shorter.as_dict(), "length_only": self.length_only.as_dict(),
                "length_only_weights": list(self.length_only_weights), "length_only_fit": self.length_only_fit,
                "pairs_longer_wins": self.longer_wins, "pairs_shorter_wins": self.shorter_wins,
                "pairs_equal_length_excluded": self.equal_length}


@dataclass(frozen=True)
class LengthAudit:
    """One model's scores read against length, paired with the length-only head."""

    minus_length_only: Estimate
    longer_wins: Estimate  # accuracy on pairs where the better response is the longer one
    shorter_wins: Estimate
    balanced: Estimate  # mean of the two
    spearman: float  # reward vs length over the scored responses
    spearman_n: int

    def as_dict(self) -> dict[str, object]:
        return {"accuracy_minus_length_only": self.minus_length_only.as_dict(),
                "accuracy_longer_wins": self.longer_wins.as_dict(), "accuracy_shorter_wins": self.shorter_wins.as_dict(),
                "length_balanced_accuracy": self.balanced.as_dict(),
                "spearman_reward_length": {"value": self.spearman, "n_responses": self.spearman_n, "unit": LENGTH_UNIT}}


@dataclass(frozen=True)
class PairLengths:
    """The evaluated pairs as length sees them: lengths of both sides, the label, and the length-only scores."""

    length_a: np.ndarray
    length_b: np.ndarray
    target: np.ndarray
    length_score_a: np.ndarray
    length_score_b: np.ndarray

    @property
    def decided(self) -> np.ndarray:
        return self.target != 0.5

    @property
    def better_is_longer(self) -> np.ndarray:
        return length_winners(self.length_a, self.length_b, self.target)[0]

    @property
    def better_is_shorter(self) -> np.ndarray:
        return length_winners(self.length_a, self.length_b, self.target)[1]

    def length_only_correct(self) -> np.ndarray:
        return pairwise_correct(self.length_score_a, self.length_score_b, self.target)


def mean_of_means(bootstrap: GroupBootstrap, values: np.ndarray, masks: Sequence[np.ndarray]) -> Estimate:
    """Unweighted mean over ``masks`` of the mean of ``values`` within each, on ``bootstrap``'s resamples (so it
    is paired with its other estimates); n counts the rows in any mask. NaN when a mask is empty."""
    values = np.asarray(values, dtype=np.float64)
    keep = np.zeros(len(values), dtype=bool)
    columns = []  # per-group numerator and denominator of each mask, resampled in one product
    for mask in masks:
        mask = np.asarray(mask, dtype=bool)
        keep |= mask
        columns.append(np.bincount(bootstrap.group_index, weights=np.where(mask, values, 0.0),
                                   minlength=bootstrap.n_groups))
        columns.append(np.bincount(bootstrap.group_index, weights=mask.astype(np.float64), minlength=bootstrap.n_groups))
    per_group = np.stack(columns, axis=1)
    resampled = bootstrap.weights @ per_group
    totals = per_group.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = float(np.mean(totals[0::2] / totals[1::2]))
        samples = (resampled[:, 0::2] / resampled[:, 1::2]).mean(1)
    finite = samples[np.isfinite(samples)]
    if not np.isfinite(value) or len(finite) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), int(keep.sum()))
    tail = (1 - bootstrap.level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Estimate(float(value), float(low), float(high), int(keep.sum()))


def length_controls(pairs: PairLengths, bootstrap: GroupBootstrap, weights: Sequence[float], fit: str) -> LengthControls:
    """Accuracy of prefer-longer, prefer-shorter and the length-only head on the decided pairs."""
    decided = pairs.decided
    longer = pairwise_correct(pairs.length_a, pairs.length_b, pairs.target)
    shorter = pairwise_correct(-pairs.length_a, -pairs.length_b, pairs.target)
    return LengthControls(
        prefer_longer=bootstrap.mean(longer, decided),
        prefer_shorter=bootstrap.mean(shorter, decided),
        length_only=bootstrap.mean(pairs.length_only_correct(), decided),
        length_only_weights=tuple(float(w) for w in weights),
        length_only_fit=fit,
        longer_wins=int(pairs.better_is_longer.sum()),
        shorter_wins=int(pairs.better_is_shorter.sum()),
        equal_length=int((decided & (pairs.length_a == pairs.length_b)).sum()),
    )


def length_audit(score_a: np.ndarray, score_b: np.ndarray, pairs: PairLengths, bootstrap: GroupBootstrap,
                 spearman: tuple[float, int]) -> LengthAudit:
    """Δ vs the length-only head (paired: same pairs, same resamples) and length-balanced accuracy."""
    correct = pairwise_correct(score_a, score_b, pairs.target)
    longer, shorter = pairs.better_is_longer, pairs.better_is_shorter
    return LengthAudit(
        minus_length_only=bootstrap.mean(correct - pairs.length_only_correct(), pairs.decided),
        longer_wins=bootstrap.mean(correct, longer),
        shorter_wins=bootstrap.mean(correct, shorter),
        balanced=mean_of_means(bootstrap, correct, [longer, shorter]),
        spearman=spearman[0],
        spearman_n=spearman[1],
    )


def reward_length_spearman(ids_a: Sequence[str], ids_b: Sequence[str], score_a: np.ndarray, score_b: np.ndarray,
                           length_a: np.ndarray, length_b: np.ndarray,
                           strata: np.ndarray | None = None) -> tuple[float, int]:
    """Spearman ρ(reward, length) over the distinct scored responses, and their number. With ``strata`` (the CV
    fold of each pair) ρ is computed within each stratum and averaged weighted by size: rewards of different fold
    models are on different scales, so ranking them together would mix the scales."""
    seen: dict[str, tuple[float, float, int]] = {}
    stratum = np.zeros(len(ids_a), dtype=np.int64) if strata is None else np.asarray(strata)
    for i, (a, b) in enumerate(zip(ids_a, ids_b)):
        seen.setdefault(a, (float(score_a[i]), float(length_a[i]), int(stratum[i])))
        seen.setdefault(b, (float(score_b[i]), float(length_b[i]), int(stratum[i])))
    if not seen:
        return float("nan"), 0
    values = np.array(list(seen.values()))
    total, weight = 0.0, 0
    for s in np.unique(values[:, 2]):
        rows = values[values[:, 2] == s]
        if len(rows) < 3 or np.ptp(rows[:, 0]) == 0 or np.ptp(rows[:, 1]) == 0:
            continue
        from scipy.stats import spearmanr  # scipy.stats takes seconds to import: only when needed

        rho = float(spearmanr(rows[:, 0], rows[:, 1]).statistic)
        total += rho * len(rows)
        weight += len(rows)
    return (total / weight if weight else float("nan")), len(values)
