"""Per-project annotation quality: counts, time per item, agreement with CIs and position bias."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from rewardlab.collect.agreement import Judgement, agreement_summary, position_bias
from rewardlab.collect.store import Store
from rewardlab.collect.tasks import TASKS, agreement_units, left_won


def project_stats(store: Store, project_id: int, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """What an admin needs to judge a project's labels (JSON-ready; NaN where a statistic is undefined)."""
    settings = store.project_settings(project_id)
    task = settings["task_type"]
    rows = store.project_labels(project_id)
    counts = Counter(r["annotator"] for r in rows)
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["seconds"] is not None:
            seconds[r["annotator"]].append(r["seconds"])
    per_annotator: dict[str, dict[str, Any]] = {
        who: {"labels": n, "median_seconds": float(np.median(seconds[who])) if seconds[who] else None}
        for who, n in sorted(counts.items())}
    result: dict[str, Any] = {"project": settings["name"], "task_type": task, "labels": len(rows),
                              "items_labelled": len({r["item"] for r in rows}), "per_annotator": per_annotator}
    level = TASKS[task].agreement_level
    judgements = [Judgement(r["item"] + suffix, r["annotator"], unit_value)
                  for r in rows for suffix, unit_value in agreement_units(task, r["value"])]
    multiply_labelled = len({j.item for j in judgements}) < len(judgements)
    if level is None:
        result["agreement_error"] = f"agreement is not measured for {task} labels (free text, no values to compare)"
    elif not multiply_labelled:
        so_far = "no labels yet" if not rows else "every item has one label so far"
        hint = ": each item goes to one annotator, so agreement can never be measured" if settings["overlap"] < 2 else ""
        result["agreement_error"] = (f"α and κ need items labelled by two or more annotators; {so_far} "
                                     f"(overlap {settings['overlap']}{hint})")
    if level is not None and multiply_labelled:
        try:
            summary = agreement_summary(judgements, level, n_resamples=n_resamples, seed=seed)
        except ValueError as error:  # e.g. no item has two labels yet
            result["agreement_error"] = str(error)
        else:
            result["agreement"] = {k: v for k, v in summary.items() if k != "per_annotator"}
            for who, entry in summary["per_annotator"].items():
                per_annotator.setdefault(who, {}).update(entry)
    if task == "pairwise":
        wins = [left_won(task, r["value"], r["shown_order"]) for r in rows]
        if any(w is not None for w in wins):
            result["position_bias_left_wins"] = position_bias(wins).as_dict()
        result["ties"] = sum(r["value"]["choice"] == "tie" for r in rows)
    return result


def json_safe(value: Any) -> Any:
    """Statistics as strict JSON (browsers, ``--json``): NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
