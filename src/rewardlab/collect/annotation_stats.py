"""Annotation quality: counts, time per item, agreement with CIs and position bias — for a project of the annotation
service (`project_stats`) and for labels collected anywhere else (`read_labels` + `label_stats`, behind
`rewardlab agreement`). Both go through `agreement_stats`, so an exported project gets the service's numbers.

Labels from a file are read in one of two shapes, named by a column mapping:

- long, one row per (item, annotator): ``item=COL,annotator=COL,label=COL`` and optionally ``order=COL``;
- wide, one column per annotator: ``item=COL,annotators=alice+bob+carol`` (or ``annotators=*``: every column but
  the item and order columns); an empty cell is a missing label.

Label values that are all numbers are numbers (ordinal by default); values that are all a / b / tie are pairwise
outcomes coded as the service codes them (a = 1, tie = 0, b = −1, ordinal); anything else is a category (nominal).
The ``order`` column names the response shown on the left (a / b, 0 / 1, ab / ba, or a list [0, 1] / [1, 0]) and
turns on the position-bias check. A rewardlab dataset (an `annotate export`, a `judge` output, any feedback set)
is read without a mapping: its comparisons, ratings, labels, rankings or step labels are the labels.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.collect.agreement import LEVELS, Judgement, agreement_summary, compare_sources, position_bias
from rewardlab.collect.store import Store
from rewardlab.collect.tasks import TASKS, agreement_units, left_won
from rewardlab.errors import DataError, InvalidValueError

PAIRWISE_CODES = {"a": 1.0, "tie": 0.0, "b": -1.0}  # the service's coding: b < tie < a
UNNAMED = "(unnamed)"  # the annotator of a feedback row without an annotator id


@dataclass
class LabelSet:
    """Labels from one source in the terms agreement statistics take.

    ``judgements`` are keyed by the source's own item ids (a unit suffix ``#k`` for rankings and steps);
    ``shared`` holds the same values keyed so that two sources about the same texts line up (content ids, pairs
    in one orientation), for `compare_sources`.
    """

    kind: str  # pairwise, ranking, rating, binary, steps, ... or "labels" for a file's categories / numbers
    level: str | None  # None: free text, no agreement
    labels: int
    items: int
    annotators: Counter[str]
    judgements: list[Judgement] = field(default_factory=list)
    shared: list[Judgement] = field(default_factory=list)
    left_won: list[bool | None] | None = None  # pairwise labels whose screen order is known
    ties: int | None = None


def agreement_stats(labels: LabelSet, n_resamples: int = 1000, seed: int = 0,
                    overlap: int | None = None) -> dict[str, Any]:
    """α, κ, per-annotator agreement with the others' majority, position bias and ties (JSON-ready, NaN where a
    statistic is undefined). ``overlap`` (the service's setting) only adds a hint to the "one label per item" error."""
    result: dict[str, Any] = {}
    per_annotator: dict[str, dict[str, Any]] = {}
    multiply_labelled = len({j.item for j in labels.judgements}) < len(labels.judgements)
    if labels.level is None:
        result["agreement_error"] = f"agreement is not measured for {labels.kind} labels (free text, no values to compare)"
    elif not multiply_labelled:
        so_far = "no labels yet" if not labels.labels else "every item has one label so far"
        where = ""
        if overlap is not None:
            hint = ": each item goes to one annotator, so agreement can never be measured" if overlap < 2 else ""
            where = f" (overlap {overlap}{hint})"
        result["agreement_error"] = f"α and κ need items labelled by two or more annotators; {so_far}{where}"
    else:
        try:
            summary = agreement_summary(labels.judgements, labels.level, n_resamples=n_resamples, seed=seed)
        except ValueError as error:  # e.g. no item has two labels yet
            result["agreement_error"] = str(error)
        else:
            result["agreement"] = {k: v for k, v in summary.items() if k != "per_annotator"}
            per_annotator = summary["per_annotator"]
    if labels.left_won is not None and any(w is not None for w in labels.left_won):
        result["position_bias_left_wins"] = position_bias(labels.left_won).as_dict()
    if labels.ties is not None:
        result["ties"] = labels.ties
    result["per_annotator"] = per_annotator
    return result


def project_labels(store: Store, project_id: int) -> tuple[LabelSet, list[dict[str, Any]]]:
    """A project's labels as a `LabelSet`, and the raw rows (with screen order and seconds)."""
    task = store.project_settings(project_id)["task_type"]
    rows = store.project_labels(project_id)
    judgements = [Judgement(r["item"] + suffix, r["annotator"], unit_value)
                  for r in rows for suffix, unit_value in agreement_units(task, r["value"])]
    labels = LabelSet(task, TASKS[task].agreement_level, len(rows), len({r["item"] for r in rows}),
                      Counter(r["annotator"] for r in rows), judgements, judgements)
    if task == "pairwise":
        labels.left_won = [left_won(task, r["value"], r["shown_order"]) for r in rows]
        labels.ties = sum(r["value"]["choice"] == "tie" for r in rows)
    return labels, rows


def project_stats(store: Store, project_id: int, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """What an admin needs to judge a project's labels (JSON-ready; NaN where a statistic is undefined)."""
    settings = store.project_settings(project_id)
    labels, rows = project_labels(store, project_id)
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["seconds"] is not None:
            seconds[r["annotator"]].append(r["seconds"])
    per_annotator: dict[str, dict[str, Any]] = {
        who: {"labels": n, "median_seconds": float(np.median(seconds[who])) if seconds[who] else None}
        for who, n in sorted(labels.annotators.items())}
    result: dict[str, Any] = {"project": settings["name"], "task_type": labels.kind, "labels": labels.labels,
                              "items_labelled": labels.items, "per_annotator": per_annotator}
    stats = agreement_stats(labels, n_resamples, seed, overlap=settings["overlap"])
    for who, entry in stats.pop("per_annotator").items():
        per_annotator.setdefault(who, {}).update(entry)
    result.update(stats)
    return result


# ---------------------------------------------------------------------- labels collected anywhere
def label_stats(labels: LabelSet, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """`project_stats` for a `LabelSet` read from a file or dataset: the same numbers under the same names."""
    result: dict[str, Any] = {"task_type": labels.kind, "labels": labels.labels, "items_labelled": labels.items,
                              "per_annotator": {who: {"labels": n} for who, n in sorted(labels.annotators.items())}}
    stats = agreement_stats(labels, n_resamples, seed)
    for who, entry in stats.pop("per_annotator").items():
        result["per_annotator"].setdefault(who, {}).update(entry)
    result.update(stats)
    return result


def compare_labels(ours: LabelSet, theirs: LabelSet, level: str | None = None, n_resamples: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """`compare_sources` on two label sets' shared keys (content ids for datasets, item ids for files)."""
    level = level or ours.level or "nominal"
    return compare_sources(ours.shared, theirs.shared, level, n_resamples, seed)


@dataclass(frozen=True)
class LabelMapping:
    """Which columns of a label file hold what (see the module docstring)."""

    item: str
    annotator: str | None = None
    label: str | None = None
    annotators: tuple[str, ...] | None = None  # wide format; ("*",) = every other column
    order: str | None = None

    @classmethod
    def parse(cls, spec: str) -> LabelMapping:
        pairs: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, column = (s.strip() for s in entry.partition("="))
            if not sep or not column:
                raise DataError(f"mapping entry {entry!r} is not field=column", source="--map")
            if key not in ("item", "annotator", "label", "annotators", "order"):
                raise DataError(f"unknown mapping field {key!r}; known: item, annotator, label, annotators, order",
                                source="--map")
            pairs[key] = column
        if "item" not in pairs:
            raise DataError("a label mapping needs item=<column>", source="--map")
        long, wide = "annotator" in pairs and "label" in pairs, "annotators" in pairs
        if long == wide:
            raise DataError("name either annotator=<column>,label=<column> (one row per item and annotator) or "
                            "annotators=<col>+<col>... / annotators=* (one column per annotator)", source="--map")
        columns = tuple(filter(None, (c.strip() for c in pairs.pop("annotators").split("+")))) if wide else None
        return cls(annotators=columns, **pairs)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value))


def _shown_left(value: Any, source: Path, row: int, column: str) -> int:
    """Which response (0 = a, 1 = b) an order cell says was shown on the left."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if isinstance(value, list | tuple) and len(value) == 2 and set(value) == {0, 1} and not any(
            isinstance(v, bool) for v in value):
        return int(value[0])
    text = str(value).strip().casefold()
    known = {"a": 0, "0": 0, "ab": 0, "b": 1, "1": 1, "ba": 1}
    if isinstance(value, bool) or text not in known:
        raise DataError(f"cannot read {str(value)[:40]!r} as the response shown on the left (a/b, 0/1, ab/ba, "
                        "[0, 1]/[1, 0])", source=source, row=row, field=column)
    return known[text]


def _coded(raw: list[tuple[int, str, str, Any]], source: Path, level: str | None) -> tuple[list[Judgement], str, str]:
    """(row, item, annotator, cell) → judgements with numbers, pairwise codes or categories; the kind and level."""
    def number(v: Any) -> float | None:
        if isinstance(v, bool):
            return None
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return x if math.isfinite(x) else None

    numbers = [number(v) for _, _, _, v in raw]
    if all(x is not None for x in numbers):
        values: list[float | str] = [x for x in numbers if x is not None]
        kind, default = "labels", "ordinal"
    elif all(isinstance(v, str) and v.strip().casefold() in PAIRWISE_CODES for _, _, _, v in raw):
        values = [PAIRWISE_CODES[str(v).strip().casefold()] for _, _, _, v in raw]
        kind, default = "pairwise", "ordinal"
    else:
        for row, _, _, v in raw:
            if not isinstance(v, str | int | float | bool):
                raise DataError(f"a label must be a number or text, not {type(v).__name__}", source=source, row=row)
        values = [str(v).strip().lower() if isinstance(v, bool) else str(v).strip() for _, _, _, v in raw]
        kind, default = "labels", "nominal"
    chosen = level or default
    if chosen not in LEVELS:
        raise InvalidValueError(f"unknown level {chosen!r}; expected one of {', '.join(LEVELS)}")
    if chosen != "nominal" and values and isinstance(values[0], str):
        raise InvalidValueError(f"{chosen} agreement needs numbers or a/b/tie labels; {source} has categories such "
                                f"as {values[0]!r} (use --level nominal)")
    seen: dict[tuple[str, str], int] = {}
    for row, item, who, _ in raw:
        if (item, who) in seen:
            raise DataError(f"annotator {who!r} labels item {item!r} a second time (first in row {seen[item, who]}); "
                            "each annotator may label an item once", source=source, row=row)
        seen[item, who] = row
    return [Judgement(item, who, v) for (_, item, who, _), v in zip(raw, values)], kind, chosen


def read_label_file(path: str | Path, mapping: LabelMapping, level: str | None = None) -> LabelSet:
    """Labels from a JSONL / CSV / TSV / Parquet / JSON file through a `LabelMapping` (long or wide)."""
    from rewardlab.data.records import get_field, iter_records

    source = Path(path)
    raw: list[tuple[int, str, str, Any]] = []
    orders: dict[int, int] = {}
    for row, record in iter_records(source):
        item = get_field(record, mapping.item, source=source, row=row)
        if _missing(item):
            raise DataError("empty item id", source=source, row=row, field=mapping.item)
        if mapping.annotators is None:
            assert mapping.annotator is not None and mapping.label is not None
            cells = [(str(get_field(record, mapping.annotator, source=source, row=row)),
                      get_field(record, mapping.label, source=source, row=row))]
        else:
            names = ([c for c in record if c not in (mapping.item, mapping.order)] if mapping.annotators == ("*",)
                     else list(mapping.annotators))
            cells = [(name, get_field(record, name, source=source, row=row)) for name in names]
        cells = [(who, value) for who, value in cells if not _missing(value)]
        if mapping.order is not None and cells:
            orders[row] = _shown_left(get_field(record, mapping.order, source=source, row=row), source, row,
                                      mapping.order)
        raw.extend((row, str(item), who, value) for who, value in cells)
    if not raw:
        raise DataError("no labels found (every label cell is empty, or the file has no rows)", source=source)
    judgements, kind, chosen = _coded(raw, source, level)
    labels = LabelSet(kind, chosen, len(judgements), len({j.item for j in judgements}),
                      Counter(j.annotator for j in judgements), judgements, judgements)
    if kind == "pairwise":
        labels.ties = sum(j.value == 0.0 for j in judgements)
    if mapping.order is not None:
        if kind != "pairwise":
            raise DataError("an order column needs pairwise labels (a / b / tie) to measure position bias",
                            source=source, field=mapping.order)
        labels.left_won = [None if j.value == 0.0 else (0 if j.value == 1.0 else 1) == orders[row]
                           for (row, _, _, _), j in zip(raw, judgements)]
    return labels


_TABLE_KINDS = {"comparisons": ("pairwise", "ordinal"), "rankings": ("ranking", "ordinal"),
                "ratings": ("rating", "ordinal"), "labels": ("binary", "nominal"), "step_labels": ("steps", "ordinal")}


def dataset_labels(dataset: Any, table: str | None = None, level: str | None = None) -> LabelSet:
    """Labels from a `FeedbackDataset`: one feedback table (``table``, or the only labelled one it has).

    An item is the annotation service's item id where the row's meta keeps it (an `annotate export`), else the
    row's prompt and responses; screen order in meta (``shown_order``) gives position bias, as in the service.
    """
    present = [name for name in _TABLE_KINDS if dataset.table(name)]
    if table is None:
        if len(present) != 1:
            found = ", ".join(present) or "none"
            raise DataError(f"pick the feedback to measure with --feedback ({', '.join(_TABLE_KINDS)}); labelled "
                            f"tables here: {found}", source=dataset.name)
        table = present[0]
    if table not in _TABLE_KINDS:
        raise InvalidValueError(f"--feedback must be one of {', '.join(_TABLE_KINDS)}, not {table!r}")
    kind, default = _TABLE_KINDS[table]
    rows = dataset.table(table)
    if not rows:
        raise DataError(f"the dataset has no {table}", source=dataset.name)
    order_of = {rid: k for k, rid in enumerate(dataset.responses)}
    own: list[Judgement] = []
    shared: list[Judgement] = []
    orientation: dict[tuple[str, frozenset[str]], tuple[str, str]] = {}
    wins: list[bool | None] = []
    given: set[tuple[str | None, str]] = set()  # (item, annotator): one label, even when it spans several rows (steps)
    for row in rows:
        who = row.annotator_id or UNNAMED
        meta_item = row.meta.get("item") if isinstance(row.meta, dict) else None
        base = None
        for unit, own_key, shared_key, value, shared_value in _units(table, row, orientation, order_of):
            base = str(meta_item) if meta_item is not None else own_key
            own.append(Judgement(base + unit, who, value))
            shared.append(Judgement(shared_key + unit if table == "step_labels" else shared_key, who, shared_value))
        given.add((base, who))
        if table == "comparisons":
            shown = row.meta.get("shown_order") if isinstance(row.meta, dict) else None
            if isinstance(shown, list) and sorted(shown) == [0, 1] and row.outcome != "tie":
                wins.append((0 if row.outcome == "a" else 1) == shown[0])
    chosen = level or default
    labels = LabelSet(kind, chosen, len(given), len({item for item, _ in given}),
                      Counter(who for _, who in given), own, shared)
    _check_once(own, dataset.name)
    if table == "comparisons":
        labels.ties = sum(r.outcome == "tie" for r in rows)
        labels.left_won = wins or None
    return labels


def _units(table: str, row: Any, orientation: dict[tuple[str, frozenset[str]], tuple[str, str]],
           order_of: dict[str, int]) -> Iterable[tuple[str, str, str, float | str, float | str]]:
    """(unit suffix, item key, content key, value, value as the content key orients it) for one feedback row; the
    item key is the row's own (its first orientation for a pair), the content key lines up across sources."""
    if table == "comparisons":
        code = PAIRWISE_CODES[row.outcome]
        pair = frozenset((row.a, row.b))
        first = orientation.setdefault((row.prompt_id, pair), (row.a, row.b))
        low, high = sorted(pair)
        yield ("", f"{row.prompt_id}:{first[0]}:{first[1]}", f"{row.prompt_id}:{low}:{high}",
               code if first == (row.a, row.b) else -code,  # a pair seen the other way round is the same item
               code if (row.a, row.b) == (low, high) else -code)
    elif table == "rankings":
        canonical = sorted(row.response_ids, key=lambda rid: order_of.get(rid, 0))  # the order the item listed them
        key = f"{row.prompt_id}:" + ":".join(canonical)
        for rank, rid in enumerate(row.response_ids):
            yield f"#{canonical.index(rid)}", key, f"{row.prompt_id}:{rid}", float(rank), float(rank)
    elif table == "ratings":
        yield "", row.response_id, row.response_id, float(row.value), float(row.value)
    elif table == "labels":
        verdict = "correct" if row.correct else "incorrect"
        yield "", row.response_id, row.response_id, verdict, verdict
    else:  # step_labels
        yield f"#{row.step}", row.response_id, row.response_id, float(row.value), float(row.value)


def _check_once(judgements: list[Judgement], name: str) -> None:
    seen: Counter[tuple[str, str]] = Counter((j.item, j.annotator) for j in judgements)
    twice = [(item, who) for (item, who), k in seen.items() if k > 1]
    if twice:
        item, who = twice[0]
        more = f" ({len(twice)} such items in all)" if len(twice) > 1 else ""
        raise DataError(f"annotator {who!r} labels item {item!r} more than once{more}; each annotator may label an "
                        "item once", source=name)


def read_labels(source: str | Path, mapping: str | None = None, level: str | None = None,
                feedback: str | None = None) -> LabelSet:
    """Labels from a file with a label mapping, or from any feedback source `load_source` reads (a rewardlab
    dataset directory, a named dataset, a feedback file) without one."""
    if mapping:
        return read_label_file(source, LabelMapping.parse(mapping), level)
    from rewardlab.data.source import load_source

    return dataset_labels(load_source(source), feedback, level)


def json_safe(value: Any) -> Any:
    """Statistics as strict JSON (browsers, ``--json``): NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value

