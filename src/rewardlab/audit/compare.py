"""Two reward models audited on the same held-out pairs, side by side, with the differences paired by prompt.

Both audits score the same comparisons, so every per-pair quantity (correct, NLL, Brier) is differenced pair by pair
and resampled with one `GroupBootstrap` over prompts: a difference whose CI excludes 0 is one the data supports.
The same seed gives both models the same probed items, so probe shares are differenced item by item too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from rewardlab.audit.card import (
    accuracy_section,
    at_a_glance,
    card_section,
    examples_section,
    literal,
    probes_section,
    risk_section,
    slices_section,
)
from rewardlab.audit.run import AuditRun, AuditSettings, pair_outcomes
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.length_controls import mean_of_means
from rewardlab.report import Figure, Report, Section, Table, difference, estimate

COMPARISON_FORMAT = "rewardlab.audit-comparison/1"


def compare_runs(runs: Sequence[AuditRun], settings: AuditSettings) -> dict[str, Any]:
    """The comparison record: both audits, and second-minus-first differences paired by prompt."""
    if len(runs) != 2:
        raise InvalidValueError(f"a comparison takes two audits, got {len(runs)}")
    first, second = runs
    if first.holdout.pair_ids != second.holdout.pair_ids:
        raise InvalidValueError("the two audits scored different held-out pairs; audit both on the same data")
    target = first.holdout.pair_lengths.target
    decided = target != 0.5
    bootstrap = GroupBootstrap(first.pair_group, n_resamples=settings.n_resamples, seed=settings.seed)
    a, b = pair_outcomes(first), pair_outcomes(second)
    lengths = first.holdout.pair_lengths
    paired = {
        "accuracy": bootstrap.mean(b["correct"] - a["correct"], decided),
        "length_balanced_accuracy": mean_of_means(bootstrap, b["correct"] - a["correct"],
                                                  [lengths.better_is_longer & decided, lengths.better_is_shorter & decided]),
        "nll": bootstrap.mean(b["nll"] - a["nll"], decided),
        "brier": bootstrap.mean(b["brier"] - a["brier"], decided),
    }
    probes = {}
    second_probes = {p.name: p for p in second.probes}
    for probe in first.probes:
        other = second_probes.get(probe.name)
        if other is not None and other.item_clusters == probe.item_clusters and probe.item_clusters:
            resampled = GroupBootstrap(np.array(probe.item_clusters), n_resamples=settings.n_resamples, seed=settings.seed)
            probes[probe.name] = resampled.mean(other.item_preferred - probe.item_preferred).as_dict()
    return {"format": COMPARISON_FORMAT, "settings": asdict(settings), "audits": [first.record, second.record],
            "paired_differences": {k: v.as_dict() for k, v in paired.items()},
            "paired_probe_differences": probes,
            "difference": "second model minus first, per held-out pair, CIs by prompt"}


def _names(record: Mapping[str, Any]) -> list[str]:
    return [audit["model"]["path"].rstrip("/").split("/")[-1] for audit in record["audits"]]


def _side_by_side(record: Mapping[str, Any]) -> Section:
    first, second = record["audits"]
    names = _names(record)
    paired = record["paired_differences"]
    rows = []
    for label, key, source in (("accuracy", "accuracy", "metrics"), ("length-balanced accuracy",
                                                                      "length_balanced_accuracy", "length"),
                               ("NLL", "nll", "metrics"), ("Brier", "brier", "metrics")):
        values = [audit["accuracy"][source][key] for audit in (first, second)]
        rows.append([label, estimate(values[0]), estimate(values[1]), difference(paired[key])])
    for label, key in (("ECE", "ece"),):
        rows.append([label, *(estimate(audit["accuracy"]["metrics"][key]) for audit in (first, second)),
                     "not paired (a binned statistic)"])
    rows.append(["model − length-only", *(difference(audit["accuracy"]["length"]["accuracy_minus_length_only"])
                                          for audit in (first, second)), "—"])
    held = Table(["", literal(names[0]), literal(names[1]), f"{literal(names[1])} − {literal(names[0])} (paired)"], rows,
                 f"Held-out pairs of {literal(first['held_out']['name'])}; differences in bold have CIs excluding 0")
    probe_rows = []
    second_probes = {p["name"]: p for p in second["probes"]["perturbation"]}
    paired_probes = record.get("paired_probe_differences", {})
    for probe in first["probes"]["perturbation"]:
        other = second_probes.get(probe["name"])
        probe_rows.append([literal(probe["name"]), f"{estimate(probe['perturbed_preferred'])} ({probe['verdict']})",
                           f"{estimate(other['perturbed_preferred'])} ({other['verdict']})" if other else "—",
                           difference(paired_probes.get(probe["name"]))])
    probes = Table(["probe", f"{literal(names[0])}: perturbed preferred", f"{literal(names[1])}: perturbed preferred",
                    f"{literal(names[1])} − {literal(names[0])} (paired by item)"], probe_rows,
                   "Perturbation probes on the same items (same seed)")
    return Section("Side by side", [held, probes])


def build_comparison(record: Mapping[str, Any]) -> Report:
    """The side-by-side card, then each model's own card sections under its name."""
    sections = [_side_by_side(record)]
    for index, (name, audit) in enumerate(zip(_names(record), record["audits"]), start=1):
        for build in (at_a_glance, card_section, accuracy_section, slices_section, probes_section, risk_section,
                      examples_section):
            section = build(audit)
            blocks = [Figure(f"{index}-{b.name}", f"{name}: {b.caption}", b.draw) if isinstance(b, Figure) else b
                      for b in section.blocks]  # figure files are named by figure: one set per model
            sections.append(Section(f"{name}: {section.title}", blocks))
    first = record["audits"][0]
    return Report(title=f"Reward-model cards compared: {' vs '.join(_names(record))} on {first['held_out']['name']}",
                  sections=sections, settings={"audit": record["settings"]})

