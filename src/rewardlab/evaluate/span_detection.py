"""Span-level error detection, per error kind: precision, recall, F1 and ROC AUC, each with n and a cluster-bootstrap
95% CI by question.

Spans of one question share its passages and its annotator, so they are resampled together (`GroupBootstrap`):
precision, recall and F1 are ratios of sums (F1 = 2·TP / (2·TP + FP + FN)), and AUC is computed on each resample
with every span weighted by how often its question was drawn, so all four CIs come from the same draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap

DETECTION_METRICS = ("precision", "recall", "f1", "auc")


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` for ``labels`` under each row of ``weights`` ((R, n): a weight per row per resample):
    P(score of a positive > score of a negative), ties counting half. One sort serves every resample."""
    order = np.argsort(scores, kind="stable")
    s, y, w = scores[order], labels[order].astype(bool), np.asarray(weights, np.float64)[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # blocks of equal scores
    pos = np.add.reduceat(np.where(y, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(y, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray((pos * (below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1)))


def auc_estimate(scores: np.ndarray, labels: np.ndarray, bootstrap: GroupBootstrap) -> Estimate:
    """AUC with the percentile CI of its cluster-bootstrap resamples."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return Estimate(float("nan"), float("nan"), float("nan"), len(labels))
    value = float(weighted_auc(scores, labels, np.ones((1, len(scores))))[0])
    counts = bootstrap.weights.counts
    block = max(1, (1 << 22) // max(len(scores), 1))  # about 32 MB of float64 row weights at a time
    samples = np.concatenate([weighted_auc(scores, labels, counts[a:a + block][:, bootstrap.group_index])
                              for a in range(0, len(counts), block)])
    low, high = bootstrap._interval(samples)
    return Estimate(value, low, high, len(labels))


@dataclass(frozen=True)
class DetectionRow:
    """One error kind's detection on held-out spans: ``n`` spans, of which ``errors`` are labelled errors."""

    kind: str
    n: int
    errors: int
    questions: int
    threshold: float
    metrics: dict[str, Estimate]

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "n": self.n, "errors": self.errors, "questions": self.questions,
                "threshold": self.threshold, **{k: v.as_dict() for k, v in self.metrics.items()}}


def detection_metrics(probabilities: np.ndarray, labels: np.ndarray, groups: Sequence[str],
                      threshold: float | np.ndarray, n_resamples: int = 2000, seed: int = 0) -> dict[str, Estimate]:
    """Precision, recall and F1 of ``probability >= threshold`` (one cut, or one per span) as an error flag, and AUC,
    with CIs by group."""
    p, y = np.asarray(probabilities, np.float64), np.asarray(labels).astype(np.float64)
    flagged = (p >= np.asarray(threshold)).astype(np.float64)
    tp = flagged * y
    bootstrap = GroupBootstrap(np.asarray(groups), n_resamples=n_resamples, seed=seed)
    return {"precision": bootstrap.ratio(tp, flagged), "recall": bootstrap.ratio(tp, y),
            "f1": bootstrap.ratio(2 * tp, flagged + y), "auc": auc_estimate(p, y, bootstrap)}


def detection_table(kinds: Sequence[str], probabilities: np.ndarray, labels: np.ndarray, groups: Sequence[str],
                    thresholds: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> list[DetectionRow]:
    """One `DetectionRow` per kind, in the order the kinds first appear; ``thresholds`` holds each span's cut (the
    threshold of the model that scored it; the row shows their median)."""
    kind_of, group_of, cut = np.asarray(kinds), np.asarray(groups), np.asarray(thresholds, np.float64)
    rows = []
    for kind in dict.fromkeys(kind_of.tolist()):
        mask = kind_of == kind
        y = np.asarray(labels)[mask]
        metrics = detection_metrics(np.asarray(probabilities)[mask], y, group_of[mask].tolist(), cut[mask],
                                    n_resamples, seed)
        rows.append(DetectionRow(kind, int(mask.sum()), int(np.sum(y)), len(set(group_of[mask].tolist())),
                                 float(np.median(cut[mask])), metrics))
    return rows
