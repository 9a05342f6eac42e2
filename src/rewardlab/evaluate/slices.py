"""Held-out pairwise accuracy by slice: where does a reward model's accuracy come from, and where does it fail?

One accuracy per slice hides little by itself, so the card shows several slicings of the same held-out pairs, each
row with n pairs, n prompts and the accuracy with a 95% CI from the cluster bootstrap over prompt groups (one
`GroupBootstrap` for every slicing, so rows are computed on the same resamples). Pairs labelled a tie are left out
of every accuracy, as in `pairwise_metrics`; a score tie counts ½ (`pairwise_correct`). Rows with fewer than
`SMALL_SLICE` decided pairs are flagged ``small``: their CI is wide and their point value noisy.

Slicings:

- ``length``: quartile bins of the pair's mean response length in characters (labelled with the lengths they hold);
- ``longer side``: whether the better response is the longer one, the shorter one, or both are equally long
  (`length_winners`); a model that learned length alone scores 1 and 0 on the first two;
- ``source``: per model (``Response.source``), a pair counted under each of its two sides' models (once when both
  sides come from one model), so each row reads "accuracy on the pairs this model's responses take part in";
  per-model rows stay readable with many models where "A vs B" matchups would not;
- ``category``: the first of ``category_keys`` that more than half of the comparisons carry in their meta;
- ``annotator``: one row per annotator id (rows without one as ``(none)``, as `per_annotator` names them).

A slicing with fewer than two non-empty slices is left out: it would repeat the overall accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import DataError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.length_controls import response_lengths
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.evaluate.per_annotator import NO_ANNOTATOR
from rewardlab.rewards.training_set import OUTCOME_TARGET, length_winners

#: below this many decided pairs a slice is flagged small
SMALL_SLICE = 30
CATEGORY_KEYS = ("category", "bias", "subset", "type")
NO_SOURCE = "(none)"
NO_CATEGORY = "(none)"


@dataclass(frozen=True)
class SliceRow:
    """One slice: its decided pairs, the prompt groups they come from, and the accuracy on them."""

    label: str
    n_pairs: int
    n_prompts: int
    accuracy: Estimate
    small: bool

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "n_pairs": self.n_pairs, "n_prompts": self.n_prompts,
                "accuracy": self.accuracy.as_dict(), "small": self.small}


@dataclass(frozen=True)
class SliceTable:
    """One slicing of the held-out pairs (``name`` as listed in the module docstring), what it slices by, its rows."""

    name: str
    description: str
    rows: list[SliceRow]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "rows": [row.as_dict() for row in self.rows]}


class _Slicer:
    """The decided pairs' correctness, prompt groups and bootstrap, shared by every slicing."""

    def __init__(self, correct: np.ndarray, decided: np.ndarray, groups: np.ndarray, n_resamples: int,
                 seed: int) -> None:
        self.correct, self.decided, self.groups = correct, decided, groups
        self.bootstrap = GroupBootstrap(groups, n_resamples=n_resamples, seed=seed)

    def row(self, label: str, member: np.ndarray) -> SliceRow:
        mask = member & self.decided
        accuracy = self.bootstrap.mean(self.correct, mask)
        return SliceRow(label, accuracy.n, len(set(self.groups[mask])), accuracy, accuracy.n < SMALL_SLICE)

    def table(self, name: str, description: str, members: Sequence[tuple[str, np.ndarray]]) -> SliceTable | None:
        rows = [row for row in (self.row(label, member) for label, member in members) if row.n_pairs > 0]
        return SliceTable(name, description, rows) if len(rows) >= 2 else None


def _chars(value: float) -> str:
    """A mean length as a label: whole numbers plainly, halves with their decimal (so neighbouring bins never
    appear to overlap)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _length_bins(mean_length: np.ndarray, decided: np.ndarray, n_bins: int) -> list[tuple[str, np.ndarray]]:
    """Quantile bins of the decided pairs' mean length, labelled by the smallest and largest length they hold."""
    if not decided.any():
        return []
    inner = np.unique(np.quantile(mean_length[decided], np.linspace(0, 1, n_bins + 1)[1:-1]))
    which = np.searchsorted(inner, mean_length, side="right")
    members = []
    for b in range(len(inner) + 1):
        member = which == b
        held = mean_length[member & decided]
        if held.size:
            members.append((f"{_chars(held.min())}–{_chars(held.max())} chars", member))
    return members


def _majority_key(dataset: FeedbackDataset, keys: Sequence[str]) -> str | None:
    """The first of ``keys`` that more than half of the comparisons carry in their meta."""
    for key in keys:
        if sum(key in c.meta and c.meta[key] is not None for c in dataset.comparisons) * 2 > len(dataset.comparisons):
            return key
    return None


def _by_label(labels: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """One member mask per distinct label, most frequent first (then by label)."""
    array = np.array(labels, dtype=object)
    counts = Counter(labels)
    distinct = sorted(counts, key=lambda label: (-counts[label], label))
    return [(label, array == label) for label in distinct]


def slice_accuracy(dataset: FeedbackDataset, score_a: np.ndarray, score_b: np.ndarray,
                   target: np.ndarray | None = None, *, category_keys: Sequence[str] = CATEGORY_KEYS,
                   n_length_bins: int = 4, n_resamples: int = 2000, seed: int = 0) -> list[SliceTable]:
    """Accuracy of per-pair scores (aligned with ``dataset.comparisons``, as `evaluate_model` gives them) by length
    bin, longer side, source model, category and annotator; ``target`` (P(a won)) defaults to the outcomes."""
    comps = dataset.comparisons
    if not comps:
        raise DataError("no comparisons to slice", source=dataset.name)
    score_a, score_b = np.asarray(score_a, np.float64), np.asarray(score_b, np.float64)
    if score_a.shape != (len(comps),) or score_b.shape != (len(comps),):
        raise DataError(f"scores of shape {score_a.shape} and {score_b.shape} for {len(comps)} comparisons",
                        source=dataset.name)
    target = (np.array([OUTCOME_TARGET[c.outcome] for c in comps]) if target is None
              else np.asarray(target, np.float64))
    if target.shape != (len(comps),):
        raise DataError(f"{target.shape} targets for {len(comps)} comparisons", source=dataset.name)
    decided = target != 0.5
    prompt_group = dataset.prompt_groups()
    slicer = _Slicer(pairwise_correct(score_a, score_b, target), decided,
                     np.array([prompt_group[c.prompt_id] for c in comps]), n_resamples, seed)
    length_a, length_b = response_lengths(dataset, [c.a for c in comps]), response_lengths(dataset, [c.b for c in comps])
    longer_better, shorter_better = length_winners(length_a, length_b, target)
    tables = [
        slicer.table("length", "mean response length of the pair in characters, quantile bins",
                     _length_bins((length_a + length_b) / 2, decided, n_length_bins)),
        slicer.table("longer side", "whether the better response is the longer or the shorter one",
                     [("longer better", longer_better), ("shorter better", shorter_better),
                      ("equal length", length_a == length_b)]),
    ]
    sources = [(dataset.responses[c.a].source, dataset.responses[c.b].source) for c in comps]
    if any(a is not None or b is not None for a, b in sources):
        names = sorted({s or NO_SOURCE for pair in sources for s in pair})
        tables.append(slicer.table("source", "per model: pairs where one side (or both) comes from the model",
                                   [(name, np.array([name in (a or NO_SOURCE, b or NO_SOURCE) for a, b in sources]))
                                    for name in names]))
    key = _majority_key(dataset, category_keys)
    if key is not None:
        tables.append(slicer.table("category", f"the comparison's meta {key!r}",
                                   _by_label([NO_CATEGORY if c.meta.get(key) is None else str(c.meta[key])
                                              for c in comps])))
    if any(c.annotator_id is not None for c in comps):
        tables.append(slicer.table("annotator", "the annotator who labelled the pair",
                                   _by_label([c.annotator_id or NO_ANNOTATOR for c in comps])))
    return [table for table in tables if table is not None]
