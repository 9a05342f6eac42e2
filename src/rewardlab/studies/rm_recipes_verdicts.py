"""The rm-recipes study's verdicts, computed from its JSON record alone: per-combination summaries over the
cross-set transfers, the default picked by the written selection rule, the targets, and what each factor does.

Kept apart from the running of the study (`rm_recipes`) so a saved record.json can be re-judged without
training anything, and so the rule can be read on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: the bias type whose probes test length
LENGTH_BIAS = "length bias"
#: the selection rule: combinations within this much of the best mean length-balanced accuracy count as tied
SELECTION_TIE = 0.005
SELECTION_RULE = (
    "Over the cross-set transfers only (train set ≠ test set; EvalBiasBench left out), each recipe × head gets its "
    "mean length-balanced accuracy. The highest mean wins; combinations within "
    f"{SELECTION_TIE} of it count as tied and the tie goes to the highest mean Δ accuracy vs the length-only control "
    "on the same transfers; a remaining exact tie goes to the combination listed first (recipe order, then head order). "
    "In-set results and EvalBiasBench are reported but never used to choose."
)
#: (name, threshold) of the targets the default is held to
TARGETS = {"balanced": 0.60, "probe_length": 0.70, "probe_overall": 0.60}


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return round(float(np.mean(vals)), 4) if vals else None


def _value(e: Mapping[str, Any] | None) -> float | None:
    v = (e or {}).get("value")
    return v if isinstance(v, int | float) and math.isfinite(v) else None


def combinations(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(recipe, head) in grid order: recipe order, then head order."""
    return [(r["name"], h) for r in record["recipes"] for h in record["config"]["heads"]]


def cells(record: Mapping[str, Any], recipe: str, head: str, cross: bool | None = True) -> list[dict[str, Any]]:
    """The model's cells on transfers (cross-set only by default; None for all), each with the transfer's keys."""
    return [{**m, "train": t["train"], "test": t["test"], "controls": t["controls"]}
            for t in record["transfers"] if cross is None or t["cross"] == cross
            for m in t["models"] if m["recipe"] == recipe and m["head"] == head]


def _probe(record: Mapping[str, Any], recipe: str, head: str, bias: str | None) -> list[float | None]:
    out = []
    for result in (record.get("probe") or {}).get("results", []):
        block = result["overall"] if bias is None else result["by_bias"].get(bias, {})
        out += [_value(m["accuracy"]) for m in block.get("models", []) if m["recipe"] == recipe and m["head"] == head]
    return out


def summarize(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per recipe × head over the cross-set transfers: mean accuracy, mean Δ vs length-only, transfers whose Δ CI
    excludes 0 above / below, min and mean length-balanced accuracy; in-set means; EvalBiasBench (mean over the
    models of each training set) overall and on length bias."""
    rows = []
    for recipe, head in combinations(record):
        cross, own = cells(record, recipe, head), cells(record, recipe, head, cross=False)
        deltas = [m["accuracy_minus_length_only"] for m in cross]
        balanced = [_value(m["length_balanced_accuracy"]) for m in cross]
        finite = [b for b in balanced if b is not None]
        rows.append({
            "recipe": recipe, "head": head, "transfers": len(cross),
            "mean_accuracy": _mean([_value(m["accuracy"]) for m in cross]),
            "mean_delta": _mean([_value(d) for d in deltas]),
            "delta_above": sum(1 for d in deltas if (d.get("ci_low") or -1) > 0),
            "delta_below": sum(1 for d in deltas if (d.get("ci_high") or 1) < 0),
            "min_balanced": round(min(finite), 4) if finite else None,
            "mean_balanced": _mean(balanced),
            "in_set_accuracy": _mean([_value(m["accuracy"]) for m in own]),
            "in_set_delta": _mean([_value(m["accuracy_minus_length_only"]) for m in own]),
            "probe_overall": _mean(_probe(record, recipe, head, None)),
            "probe_length": _mean(_probe(record, recipe, head, LENGTH_BIAS)),
        })
    return rows


def select_default(summary: Sequence[Mapping[str, Any]], tie: float = SELECTION_TIE) -> dict[str, Any]:
    """`SELECTION_RULE` applied to `summarize` rows (in grid order): the chosen combination and the ranking."""
    scored = [(i, r) for i, r in enumerate(summary) if r.get("mean_balanced") is not None]
    if not scored:
        return {"rule": SELECTION_RULE, "chosen": None, "ranking": []}
    best = max(r["mean_balanced"] for _, r in scored)

    def key(item: tuple[int, Mapping[str, Any]]) -> tuple[int, float, float, int]:
        i, r = item
        tied = r["mean_balanced"] >= best - tie - 1e-12
        delta = r["mean_delta"] if r.get("mean_delta") is not None else -math.inf
        return (0 if tied else 1, -delta if tied else 0.0, -r["mean_balanced"], i)

    ranking = [{"recipe": r["recipe"], "head": r["head"], "mean_balanced": r["mean_balanced"],
                "mean_delta": r.get("mean_delta"), "tied_for_best": r["mean_balanced"] >= best - tie - 1e-12}
               for _, r in sorted(scored, key=key)]
    return {"rule": SELECTION_RULE, "chosen": {"recipe": ranking[0]["recipe"], "head": ranking[0]["head"]},
            "ranking": ranking}


def check_targets(record: Mapping[str, Any], recipe: str, head: str) -> list[dict[str, Any]]:
    """The targets for one combination: met (True / False; None when nothing to judge) and the evidence."""
    cross = cells(record, recipe, head)
    longer = [m for m in cross if (_value((m["controls"] or {}).get("length_only")) or 0) > 0.5]
    beaten = [m for m in longer if (m["accuracy_minus_length_only"].get("ci_low") or -1) > 0]
    balanced = [(m, _value(m["length_balanced_accuracy"])) for m in cross]
    low = [f"{m['train']}→{m['test']} {b:.3f}" for m, b in balanced if b is not None and b < TARGETS["balanced"]]
    undefined = sum(1 for _, b in balanced if b is None)
    out = [
        {"target": "beats the length-only control (Δ CI excludes 0) on every cross-set transfer where length-only "
                   "scores above .5",
         "met": (len(beaten) == len(longer)) if longer else None,
         "evidence": f"{len(beaten)} of {len(longer)} such transfers"
                     + (f"; not on {', '.join(m['train'] + '→' + m['test'] for m in longer if m not in beaten)}"
                        if len(beaten) < len(longer) else "")},
        {"target": f"length-balanced accuracy ≥ {TARGETS['balanced']:.2f} on every cross-set transfer",
         "met": (not low and undefined == 0) if cross else None,
         "evidence": f"{len(cross) - len(low) - undefined} of {len(cross)} transfers"
                     + (f"; below on {', '.join(low)}" if low else "") + (f"; {undefined} undefined" if undefined else "")},
    ]
    for key, bias, label in (("probe_length", LENGTH_BIAS, "on the length-bias probes"),
                             ("probe_overall", None, "overall")):
        values = _probe(record, recipe, head, bias)
        mean = _mean(values)
        each = [v for v in values if v is not None]
        out.append({"target": f"EvalBiasBench accuracy {label} ≥ {TARGETS[key]:.2f} (mean over the training sets' models)",
                    "met": None if mean is None else mean >= TARGETS[key],
                    "evidence": "no probes" if mean is None else
                    f"mean {mean:.3f}; {sum(1 for v in each if v >= TARGETS[key])} of {len(each)} models reach it"})
    return out


def factor_effects(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For each factor of the grid: recipe twins that differ only in it, compared per head on the same cross-set
    transfers (mean difference in length-balanced accuracy and in Δ vs length-only, and how often it helps) and on
    EvalBiasBench (mean difference in accuracy overall and on length bias, per training set's model)."""
    recipes = {r["name"]: r for r in record["recipes"]}

    def levels(r: Mapping[str, Any]) -> dict[str, Any]:
        return {"features": r["features"], "length_debias": bool(r["head_params"].get("length_debias")),
                "augment": r["augment"]}

    baseline = {"features": "interaction", "length_debias": False, "augment": None}
    out = []
    for factor, base in baseline.items():
        diffs_bal, diffs_delta = [], []
        diffs_probe: dict[str | None, list[float]] = {None: [], LENGTH_BIAS: []}
        tried: set[str] = set()
        for name, r in recipes.items():
            lv = levels(r)
            if lv[factor] == base:
                continue
            twin = next((n for n, t in recipes.items() if levels(t) == {**lv, factor: base}), None)
            if twin is None:
                continue
            tried.add(str(lv[factor]))
            for head in record["config"]["heads"]:
                for bias, diffs in diffs_probe.items():
                    diffs += [a - b for a, b in zip(_probe(record, name, head, bias), _probe(record, twin, head, bias))
                              if a is not None and b is not None]
                mine = {(m["train"], m["test"]): m for m in cells(record, name, head)}
                for m in cells(record, twin, head):
                    other = mine.get((m["train"], m["test"]))
                    if other is None:
                        continue
                    a, b = _value(other["length_balanced_accuracy"]), _value(m["length_balanced_accuracy"])
                    if a is not None and b is not None:
                        diffs_bal.append(a - b)
                    a, b = _value(other["accuracy_minus_length_only"]), _value(m["accuracy_minus_length_only"])
                    if a is not None and b is not None:
                        diffs_delta.append(a - b)
        if diffs_bal or diffs_delta:
            out.append({"factor": factor, "levels": sorted(tried), "versus": base, "comparisons": len(diffs_bal),
                        "mean_balanced_diff": _mean(diffs_bal), "balanced_helps": sum(1 for d in diffs_bal if d > 0),
                        "mean_delta_diff": _mean(diffs_delta), "delta_helps": sum(1 for d in diffs_delta if d > 0),
                        "probe_models": len(diffs_probe[None]), "mean_probe_overall_diff": _mean(diffs_probe[None]),
                        "mean_probe_length_diff": _mean(diffs_probe[LENGTH_BIAS])})
    return out


def conclusions(record: Mapping[str, Any]) -> dict[str, Any]:
    """Summary, the selection by `SELECTION_RULE`, the chosen default's targets and the factor effects."""
    summary = summarize(record)
    selection = select_default(summary)
    chosen = selection["chosen"]
    return {"summary": summary, "selection": selection, "factor_effects": factor_effects(record),
            "targets": check_targets(record, chosen["recipe"], chosen["head"]) if chosen else []}
