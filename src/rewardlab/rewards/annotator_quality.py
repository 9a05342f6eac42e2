"""Annotator quality from overlapping pairwise labels: per-annotator reliabilities with CIs, and pair weights.

Two estimators, both on the comparisons of a `FeedbackDataset` (rankings are not used to estimate):

- ``dawid-skene``: the one-coin Dawid–Skene model (Dawid & Skene 1979, one accuracy per annotator). Each item
  (an unordered pair of responses) has a latent true winner; annotator j reports it with probability p_j and
  the other side otherwise. EM alternates the posterior of every item's winner with the annotators' accuracies.
  It starts from the majority vote, so it settles on the solution where most annotators are better than chance.
- ``agreement``: the share of an annotator's labels that match the leave-one-out majority of the others on the
  same item (`rewardlab.collect.agreement.leave_one_out_agreement`). Simpler, but pulled towards 0.5, since
  the others' majority is itself sometimes wrong.

Decisions, stated once:

- **Ties** carry no direction, so the one-coin model on "which side won" has nothing to say about them: tie labels
  are left out of both estimates (an annotator's tie pairs still get that annotator's weight in training).
- **Items labelled once** say nothing about who is right and are left out of the estimate. An annotator none of
  whose labels overlaps another annotator's gets the *population* reliability (the label-weighted mean of the
  others), and a note says so. Rows without an annotator id count as one annotator, ``(none)``.
- **CIs**: percentile bootstrap over items (the sampled unit), refitting the estimator on each resample.
- **Weights**: w_j = max(0, log(r_j / (1 − r_j))), r_j clipped to at most `MAX_RELIABILITY`. Under the one-coin
  model the posterior log-odds of an item's winner is the sum of its annotators' votes, each weighted by exactly this
  log-odds, so these are the Bayes-optimal vote weights. An annotator at or below chance gets 0: below-chance
  labels would only help if deliberately inverted, which a reward model should not do silently, and an estimate
  near 0.5 is mostly noise. The weights are scaled to mean 1 over the labelled comparisons, so a weighted loss keeps
  its scale beside unweighted examples (synthetic pairs, unknown annotators: weight 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import ModelError
from rewardlab.evaluate.bootstrap import Estimate

METHODS = ("none", "agreement", "dawid-skene")
NO_ANNOTATOR = "(none)"
#: reliabilities are clipped here before taking log-odds, so one perfect annotator does not get infinite weight
MAX_RELIABILITY = 0.99
EM_ITERATIONS = 200
EM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class PairLabels:
    """Directional pairwise labels as integer arrays: label ``value`` (1 = the first side of ``item`` won)."""

    items: list[tuple[str, str]]  # (lower response id, higher response id)
    annotators: list[str]
    item: np.ndarray
    annotator: np.ndarray
    value: np.ndarray  # 0/1
    ties: int = 0  # tie labels left out
    repeats: int = 0  # second and later labels of one annotator on one item, left out

    def overlapping(self) -> np.ndarray:
        """Mask of labels on items labelled by at least two different annotators."""
        pairs = np.unique(np.stack([self.item, self.annotator]), axis=1)
        per_item = np.bincount(pairs[0], minlength=len(self.items))
        return per_item[self.item] >= 2


def pair_labels(dataset: FeedbackDataset) -> PairLabels:
    """The decided comparisons of ``dataset`` oriented by response id, so the same pair labelled in either order is
    one item. Ties are left out (see the module docstring), and so is an annotator's second label of the same item
    (one person's repeat is not a second opinion); both are counted."""
    item_ids: dict[tuple[str, str], int] = {}
    ann_ids: dict[str, int] = {}
    item, annotator, value = [], [], []
    seen: set[tuple[int, int]] = set()
    ties = repeats = 0
    for comp in dataset.comparisons:
        ann = ann_ids.setdefault(comp.annotator_id or NO_ANNOTATOR, len(ann_ids))
        if comp.outcome == "tie":
            ties += 1
            continue
        low, high = sorted((comp.a, comp.b))
        winner = comp.a if comp.outcome == "a" else comp.b
        it = item_ids.setdefault((low, high), len(item_ids))
        if (it, ann) in seen:
            repeats += 1
            continue
        seen.add((it, ann))
        item.append(it)
        annotator.append(ann)
        value.append(1 if winner == low else 0)
    return PairLabels(list(item_ids), list(ann_ids), np.array(item, dtype=np.intp),
                      np.array(annotator, dtype=np.intp), np.array(value, dtype=np.float64), ties, repeats)


def dawid_skene(item: np.ndarray, annotator: np.ndarray, value: np.ndarray, n_annotators: int,
                iterations: int = EM_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """One-coin Dawid–Skene by EM: (accuracy per annotator (NaN for one without labels), P(first side won) per item).

    ``item`` must index 0..n_items-1 densely. A Beta(2, 2)-like smoothing (one agreeing and one disagreeing
    pseudo-label) keeps accuracies off 0 and 1, where the log-likelihood would be infinite.
    """
    n_items = int(item.max()) + 1 if len(item) else 0
    votes = np.bincount(item, weights=value, minlength=n_items)
    counts = np.bincount(item, minlength=n_items)
    posterior = (votes + 0.5) / (counts + 1.0)  # soft majority vote as the start
    accuracy = np.full(n_annotators, np.nan)
    for _ in range(iterations):
        agree = posterior[item] * value + (1 - posterior[item]) * (1 - value)
        hits = np.bincount(annotator, weights=agree, minlength=n_annotators)
        n = np.bincount(annotator, minlength=n_annotators)
        new_accuracy = np.where(n > 0, (hits + 1.0) / (n + 2.0), np.nan)
        prior = float(np.clip(posterior.mean(), 1e-3, 1 - 1e-3))
        log_odds = np.log(new_accuracy / (1 - new_accuracy))
        vote = np.where(value == 1, 1.0, -1.0) * log_odds[annotator]
        logit = np.bincount(item, weights=vote, minlength=n_items) + math.log(prior / (1 - prior))
        posterior = 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))
        done = np.allclose(new_accuracy, accuracy, atol=EM_TOLERANCE, equal_nan=True)
        accuracy = new_accuracy
        if done:
            break
    n = np.bincount(annotator, minlength=n_annotators)
    if n.sum() and np.average(np.nan_to_num(accuracy), weights=n) < 0.5:
        # the model is symmetric under swapping every winner and every p_j ↔ 1 − p_j; keep the solution in which
        # labels are mostly right (EM drifts to the other one on small resamples now and then)
        accuracy, posterior = 1 - accuracy, 1 - posterior
    return accuracy, posterior


def _agreement(item: np.ndarray, annotator: np.ndarray, value: np.ndarray, n_annotators: int) -> np.ndarray:
    """Leave-one-out majority agreement per annotator (NaN where never compared), via `leave_one_out_agreement`."""
    from rewardlab.collect.agreement import Judgement, leave_one_out_agreement

    labels = [Judgement(str(i), str(a), int(v)) for i, a, v in zip(item.tolist(), annotator.tolist(), value.tolist())]
    if not labels:
        return np.full(n_annotators, np.nan)
    shares = leave_one_out_agreement(labels)
    return np.array([shares[str(j)].value if str(j) in shares else np.nan for j in range(n_annotators)])


def _estimate(method: str, item: np.ndarray, annotator: np.ndarray, value: np.ndarray, n_annotators: int) -> np.ndarray:
    _, dense = np.unique(item, return_inverse=True)
    if method == "dawid-skene":
        return dawid_skene(dense, annotator, value, n_annotators)[0]
    return _agreement(dense, annotator, value, n_annotators)


def reliability_weights(reliability: np.ndarray) -> np.ndarray:
    """Unscaled vote weights max(0, log-odds of reliability), reliability clipped at `MAX_RELIABILITY`."""
    r = np.clip(np.asarray(reliability, dtype=np.float64), 0.5, MAX_RELIABILITY)
    return np.log(r / (1 - r))


@dataclass
class AnnotatorQuality:
    """Per-annotator reliability (with CI), the pair weight each annotator's comparisons get, and notes."""

    method: str
    reliability: dict[str, Estimate]
    weights: dict[str, float]
    population: float
    n_items: int  # items labelled by two or more annotators: what the estimate rests on
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``train_info["annotator_quality"]``)."""
        return {"method": self.method, "population_reliability": self.population, "overlapping_items": self.n_items,
                "annotators": {a: {"reliability": e.as_dict(), "weight": self.weights[a]}
                               for a, e in self.reliability.items()},
                "notes": list(self.notes)}

def estimate_annotator_quality(dataset: FeedbackDataset, method: str, *, n_resamples: int = 200, seed: int = 0,
                               confidence: float = 0.95) -> AnnotatorQuality:
    """Reliabilities of the annotators of ``dataset``'s comparisons by ``method`` (``dawid-skene`` or ``agreement``),
    with percentile-bootstrap CIs over items, and the pair weights they give (see the module docstring).

    Raises `ModelError` when no item is labelled by two annotators (nothing to estimate from) or when every
    annotator is at or below chance (every weight would be 0)."""
    if method not in METHODS or method == "none":
        raise ModelError(f"unknown annotator-quality method {method!r}; expected dawid-skene or agreement")
    labels = pair_labels(dataset)
    shared = labels.overlapping()
    n_ann = len(labels.annotators)
    item, annotator, value = labels.item[shared], labels.annotator[shared], labels.value[shared]
    if not shared.any():
        raise ModelError(f"{dataset.name}: no pair is labelled by two different annotators, so annotator reliability "
                         "cannot be estimated; train with --annotator-weights none")
    point = _estimate(method, item, annotator, value, n_ann)
    n_shared = np.bincount(annotator, minlength=n_ann)
    known = ~np.isnan(point)
    population = float(np.average(point[known], weights=n_shared[known]))
    samples = np.full((n_resamples, n_ann), np.nan)
    rng = np.random.default_rng(seed)
    # the labels of each item, contiguous: item k's labels are by_item[start[k]:start[k] + size[k]]
    items, position, size = np.unique(item, return_inverse=True, return_counts=True)
    by_item = np.argsort(position, kind="stable")
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    for s in range(n_resamples):
        drawn = rng.integers(len(items), size=len(items))
        copy = np.repeat(np.arange(len(drawn)), size[drawn])  # an item drawn twice counts as two items
        first = np.cumsum(size[drawn]) - size[drawn]  # where each drawn item's labels begin in the resample
        rows = by_item[np.repeat(start[drawn], size[drawn]) + np.arange(len(copy)) - np.repeat(first, size[drawn])]
        samples[s] = _estimate(method, copy, annotator[rows], value[rows], n_ann)
    tail = (1 - confidence) / 2
    reliability: dict[str, Estimate] = {}
    weights = np.empty(n_ann)
    notes = []
    alone = [labels.annotators[j] for j in range(n_ann) if not known[j]]
    if alone:
        notes.append(f"{len(alone)} annotator(s) never labelled a pair someone else labelled "
                     f"({', '.join(sorted(alone)[:5])}{'...' if len(alone) > 5 else ''}); "
                     f"they get the population reliability {population:.3f}")
    for j, name in enumerate(labels.annotators):
        col = samples[:, j][~np.isnan(samples[:, j])]
        low, high = (float(np.quantile(col, tail)), float(np.quantile(col, 1 - tail))) if len(col) >= 2 else (math.nan,
                                                                                                              math.nan)
        reliability[name] = Estimate(float(point[j]), low, high, int(n_shared[j]))
        weights[j] = reliability_weights(np.array([point[j] if known[j] else population]))[0]
    index = {name: j for j, name in enumerate(labels.annotators)}
    per_label = weights[[index[c.annotator_id or NO_ANNOTATOR] for c in dataset.comparisons]]
    if not np.any(per_label > 0):
        raise ModelError(f"{dataset.name}: every annotator is estimated at or below chance ({method}), so every pair "
                         "weight would be 0; check the labels or train with --annotator-weights none")
    weights = weights / per_label.mean()
    if labels.ties:
        notes.append(f"{labels.ties} tie(s) left out of the estimate; they train with their annotator's weight")
    if labels.repeats:
        notes.append(f"{labels.repeats} repeated label(s) (an annotator labelling the same pair again) left out of the "
                     "estimate; they train with their annotator's weight")
    return AnnotatorQuality(method, reliability, {a: float(w) for a, w in zip(labels.annotators, weights)},
                            population, int(len(items)), notes)


def quality_rows(info: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) for printing an `AnnotatorQuality.as_dict` (as stored in ``train_info``): annotator,
    reliability, 95% CI, n labels on shared items, pair weight; least reliable first."""
    header = ["annotator", f"reliability ({info['method']})", "95% CI", "n", "weight"]
    rows = []
    annotators = info["annotators"]
    population = info["population_reliability"]
    for name in sorted(annotators, key=lambda a: (annotators[a]["reliability"]["value"]
                                                  if not math.isnan(annotators[a]["reliability"]["value"])
                                                  else population)):
        r = annotators[name]["reliability"]
        value = f"{r['value']:.3f}" if not math.isnan(r["value"]) else f"{population:.3f} (population)"
        ci = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if not math.isnan(r["ci_low"]) else "-"
        rows.append([name, value, ci, str(r["n"]), f"{annotators[name]['weight']:.2f}"])
    return header, rows


def annotator_key(annotator_id: str | None) -> str:
    """The key a row's annotator has in `AnnotatorQuality.weights`."""
    return annotator_id or NO_ANNOTATOR


__all__: Sequence[str] = ["METHODS", "NO_ANNOTATOR", "AnnotatorQuality", "PairLabels", "annotator_key", "dawid_skene",
                          "estimate_annotator_quality", "pair_labels", "quality_rows", "reliability_weights"]
