"""Held-out accuracy per annotator: does the reward model predict each person, not only the pooled crowd?

(`paired_people_accuracy` compares two models on people: pooled, macro, worst annotator and per annotator group
(`annotator_groups`, from simulated meta), each paired against a baseline such as a unimodal BT.)

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


#: the statistics `paired_people_accuracy` reports, besides one per annotator group
PEOPLE_STATISTICS = ("pooled", "macro", "worst")


@dataclass
class PairedStatistic:
    """One statistic of the model, of the baseline, and model − baseline on the same resamples."""

    model: Estimate
    baseline: Estimate
    difference: Estimate

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model.as_dict(), "baseline": self.baseline.as_dict(),
                "difference": self.difference.as_dict()}


def annotator_groups(dataset: FeedbackDataset) -> dict[str, str]:
    """Annotator id -> its group, from the comparisons' ``meta["group"]`` (as `simulate_population` writes it); an
    annotator whose rows name two groups is a `DataError`."""
    groups: dict[str, str] = {}
    for row, comp in enumerate(dataset.comparisons):
        group = comp.meta.get("group") if comp.meta else None
        if group is None or comp.annotator_id is None:
            continue
        if groups.setdefault(comp.annotator_id, str(group)) != str(group):
            raise DataError(f"annotator {comp.annotator_id!r} is in group {groups[comp.annotator_id]!r} and "
                            f"{group!r}", source=dataset.name, row=row, field="meta.group")
    return groups


def paired_people_accuracy(correct_model: np.ndarray, correct_baseline: np.ndarray, annotators: Sequence[str | None],
                           prompt_groups: np.ndarray, annotator_group: dict[str, str] | None = None, *,
                           n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, PairedStatistic]:
    """Accuracy over people, the model against a baseline (e.g. a unimodal BT) on the same pairs and resamples.

    ``correct_*``: per pair, 1/0 (0.5 for a score tie) against the label (or true preference) of the pair's own
    annotator. Reported: ``pooled`` (all pairs), ``macro`` (mean over annotators), ``worst`` (each resample's lowest
    annotator accuracy, so the choice of the worst is inside the CI) and ``group:<name>`` (all pairs of that group's
    annotators) for each group in ``annotator_group``. Clusters of the bootstrap: ``prompt_groups``.
    """
    names = np.array([a if a is not None else NO_ANNOTATOR for a in annotators], dtype=object).astype(str)
    labels, who = np.unique(names, return_inverse=True)
    bootstrap = GroupBootstrap(np.asarray(prompt_groups), n_resamples=n_resamples, seed=seed, level=level)
    g = bootstrap.group_index
    den = np.zeros((bootstrap.n_groups, len(labels)))
    np.add.at(den, (g, who), 1.0)
    member_sets: dict[str, np.ndarray] = {}
    for group in sorted(set((annotator_group or {}).values())):
        member_sets[f"group:{group}"] = np.array([(annotator_group or {}).get(str(a)) == group for a in labels])

    def statistics(correct: np.ndarray) -> dict[str, tuple[float, np.ndarray, int]]:
        num = np.zeros_like(den)
        np.add.at(num, (g, who), np.asarray(correct, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per = (bootstrap.weights @ num) / (bootstrap.weights @ den)
            value = num.sum(0) / den.sum(0)
            out = {"pooled": (float(num.sum() / den.sum()), (bootstrap.weights @ num.sum(1)) /
                              (bootstrap.weights @ den.sum(1)), int(den.sum())),
                   "macro": (float(value.mean()), np.nanmean(per, axis=1), len(labels)),
                   "worst": (float(value.min()), np.nanmin(per, axis=1), len(labels))}
            for name, members in member_sets.items():
                out[name] = (float(num[:, members].sum() / den[:, members].sum()),
                             (bootstrap.weights @ num[:, members].sum(1)) / (bootstrap.weights @ den[:, members].sum(1)),
                             int(den[:, members].sum()))
        return out

    model, baseline = statistics(correct_model), statistics(correct_baseline)
    result = {}
    for name in model:
        (mv, ms, n), (bv, bs, _) = model[name], baseline[name]
        result[name] = PairedStatistic(Estimate(mv, *_interval(ms, level), n), Estimate(bv, *_interval(bs, level), n),
                                       Estimate(mv - bv, *_interval(ms - bs, level), n))
    return result


def split_calibration(predicted: np.ndarray, baseline: np.ndarray, observed_split: np.ndarray, prompt_groups: np.ndarray,
                      *, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> PairedStatistic:
    """Mean absolute error between a predicted P(a random annotator prefers a) and the observed split of annotators
    on each item (the share who chose a, on items several people labelled), for a model and a baseline, paired.

    A model of the population's distribution should match how people split, not only who wins; a unimodal BT's
    σ(r(a) − r(b)) is the baseline that treats disagreement as noise around one preference."""
    predicted, baseline, observed = (np.asarray(v, dtype=np.float64) for v in (predicted, baseline, observed_split))
    if not len(observed) or not (len(predicted) == len(baseline) == len(observed) == len(prompt_groups)):
        raise DataError(f"split calibration needs one prediction, baseline and observed split per item; got "
                        f"{len(predicted)}, {len(baseline)}, {len(observed)} for {len(prompt_groups)} items")
    bootstrap = GroupBootstrap(np.asarray(prompt_groups), n_resamples=n_resamples, seed=seed, level=level)
    model_error, baseline_error = np.abs(predicted - observed), np.abs(baseline - observed)
    return PairedStatistic(bootstrap.mean(model_error), bootstrap.mean(baseline_error),
                           bootstrap.mean(model_error - baseline_error))
