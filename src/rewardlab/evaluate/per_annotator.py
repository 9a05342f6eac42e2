"""Held-out accuracy per annotator: does the reward model predict each person, not only the pooled crowd?

Every held-out comparison is scored against the label its own annotator gave. Reported, each with n and a 95% CI
from the cluster bootstrap over prompts (`GroupBootstrap`'s resamples, so every number below is paired with the
others):

- per annotator: the accuracy on that annotator's decided pairs (ties left out, as in `pairwise_metrics`);
- pooled: the accuracy over all decided pairs (the usual number);
- macro: the mean of the per-annotator accuracies (each person counts once, however many pairs they labelled);
- worst: the annotator with the lowest accuracy (chosen on the full data; its CI does not account for that choice,
  so read it as optimistic);
- macro − pooled and worst − pooled (and each annotator − pooled): paired differences on the same resamples.

Rows without an annotator id are reported as one annotator, ``(none)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import DataError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.pairwise import pairwise_correct

NO_ANNOTATOR = "(none)"


@dataclass
class PerAnnotatorAccuracy:
    """Per-annotator, pooled, macro and worst-annotator accuracy, with paired differences to the pooled accuracy."""

    per_annotator: dict[str, Estimate]
    vs_pooled: dict[str, Estimate]  # annotator − pooled, paired
    pooled: Estimate
    macro: Estimate
    macro_vs_pooled: Estimate
    worst: str
    worst_vs_pooled: Estimate

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for evaluation records."""
        return {"pooled": self.pooled.as_dict(), "macro": self.macro.as_dict(),
                "macro_minus_pooled": self.macro_vs_pooled.as_dict(), "worst_annotator": self.worst,
                "worst": self.per_annotator[self.worst].as_dict(), "worst_minus_pooled": self.worst_vs_pooled.as_dict(),
                "annotators": {a: {"accuracy": e.as_dict(), "minus_pooled": self.vs_pooled[a].as_dict()}
                               for a, e in self.per_annotator.items()}}


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size < 2:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def per_annotator_accuracy(correct: np.ndarray, target: np.ndarray, annotators: Sequence[str | None],
                           groups: np.ndarray, *, n_resamples: int = 2000, seed: int = 0,
                           level: float = 0.95) -> PerAnnotatorAccuracy:
    """Accuracies from per-pair ``correct`` (1, 0, or 0.5 for a score tie), ``target`` (P(a won): pairs labelled a
    tie are left out), each pair's annotator and prompt group (the bootstrap's cluster)."""
    target = np.asarray(target, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    decided = target != 0.5
    if not decided.any():
        raise DataError("per-annotator accuracy needs decided comparisons (not ties); there are none")
    names = [a if a is not None else NO_ANNOTATOR for a in annotators]
    labels, who = np.unique(np.array(names, dtype=object)[decided].astype(str), return_inverse=True)
    bootstrap = GroupBootstrap(np.asarray(groups)[decided], n_resamples=n_resamples, seed=seed, level=level)
    g = bootstrap.group_index
    num = np.zeros((bootstrap.n_groups, len(labels)))
    den = np.zeros((bootstrap.n_groups, len(labels)))
    np.add.at(num, (g, who), correct[decided])
    np.add.at(den, (g, who), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = (bootstrap.weights @ num) / (bootstrap.weights @ den)  # (resamples, annotators)
        pooled_s = (bootstrap.weights @ num.sum(1)) / (bootstrap.weights @ den.sum(1))
    value = num.sum(0) / den.sum(0)
    pooled_value = float(num.sum() / den.sum())
    n = den.sum(0).astype(int)
    n_all = int(den.sum())

    def estimate(point: float, samples: np.ndarray, count: int) -> Estimate:
        return Estimate(point, *_interval(samples, level), count)

    per_annotator = {str(a): estimate(float(value[j]), per[:, j], int(n[j])) for j, a in enumerate(labels)}
    vs_pooled = {str(a): estimate(float(value[j] - pooled_value), per[:, j] - pooled_s, int(n[j]))
                 for j, a in enumerate(labels)}
    with warnings.catch_warnings():  # "mean of empty slice" cannot happen (every resample has pairs), but be quiet
        warnings.simplefilter("ignore", RuntimeWarning)
        macro_s = np.nanmean(per, axis=1)  # an annotator absent from a resample is left out of its mean
    macro_value = float(value.mean())
    worst = int(np.argmin(value))
    return PerAnnotatorAccuracy(
        per_annotator=per_annotator,
        vs_pooled=vs_pooled,
        pooled=estimate(pooled_value, pooled_s, n_all),
        macro=estimate(macro_value, macro_s, len(labels)),
        macro_vs_pooled=estimate(macro_value - pooled_value, macro_s - pooled_s, len(labels)),
        worst=str(labels[worst]),
        worst_vs_pooled=vs_pooled[str(labels[worst])],
    )


def per_annotator_of_scores(dataset: FeedbackDataset, score_a: np.ndarray, score_b: np.ndarray, *,
                            n_resamples: int = 2000, seed: int = 0) -> PerAnnotatorAccuracy:
    """`per_annotator_accuracy` of scores given in the order of ``dataset.comparisons`` (as `evaluate_model` and
    `cross_validate` give them)."""
    comps = dataset.comparisons
    if len(comps) != len(score_a) or len(comps) != len(score_b):
        raise DataError(f"{len(score_a)} scores for {len(comps)} comparisons", source=dataset.name)
    target = np.array([1.0 if c.outcome == "a" else 0.0 if c.outcome == "b" else 0.5 for c in comps])
    groups = dataset.prompt_groups()
    return per_annotator_accuracy(pairwise_correct(score_a, score_b, target), target, [c.annotator_id for c in comps],
                                  np.array([groups[c.prompt_id] for c in comps]), n_resamples=n_resamples, seed=seed)


def per_annotator_table(result: PerAnnotatorAccuracy, title: str, max_rows: int = 50) -> Table:
    """A console table: pooled, macro and worst first, then each annotator (worst first, at most ``max_rows``)."""
    table = Table(title=title, title_justify="left")
    for column in ("annotator", "accuracy", "95% CI", "n", "− pooled [95% CI]"):
        table.add_column(column)

    def row(name: str, e: Estimate, diff: Estimate | None) -> None:
        table.add_row(name, f"{e.value:.3f}", f"[{e.low:.3f}, {e.high:.3f}]", str(e.n),
                      "" if diff is None else str(diff))

    row("pooled (all pairs)", result.pooled, None)
    row("macro (mean over annotators)", result.macro, result.macro_vs_pooled)
    row(f"worst: {result.worst}", result.per_annotator[result.worst], result.worst_vs_pooled)
    ordered = sorted(result.per_annotator, key=lambda a: result.per_annotator[a].value)
    for name in ordered[:max_rows]:
        row(name, result.per_annotator[name], result.vs_pooled[name])
    if len(ordered) > max_rows:
        table.add_row(f"... {len(ordered) - max_rows} more", "", "", "", "")
    return table
