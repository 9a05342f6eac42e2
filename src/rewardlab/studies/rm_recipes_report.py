"""The recipe study's report (`rewardlab.studies.rm_recipes`), built from its JSON record and rendered by
`rewardlab.report`. The record stays the source of truth: this module chooses what to show, never recomputes
a number, and states the selection rule before the result it picks.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rewardlab.report import Figure, Report, Section, Table, difference, estimate, number, write_report
from rewardlab.studies.rm_recipes import ALPACA, RmRecipesConfig
from rewardlab.studies.rm_recipes_verdicts import LENGTH_BIAS

README = "README.md"
RECORD = "record.json"
FIGURE = "balanced_by_recipe"


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _met(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**not met**")


def _combo(row: Mapping[str, Any]) -> str:
    return f"{row['recipe']} / {row['head']}"


def _protocol(record: Mapping[str, Any]) -> str:
    c = record.get("config", {})
    sets = ", ".join(f"`{name}`" for name in record.get("data", {}))
    probe = record.get("probe") or {}
    recipes = "; ".join(
        f"`{r['name']}` (features {r['features']}"
        + (", head " + ", ".join(f"{k}={v}" for k, v in r["head_params"].items()) if r["head_params"] else "")
        + (f", augment {r['augment']}" if r.get("augment") else "") + ")"
        for r in record.get("recipes", []))
    limit = f" (each limited to {c['limit']} rows)" if c.get("limit") else ""
    alpaca = "" if ALPACA not in record.get("data", {}) else (
        f"`{ALPACA}` is noiseless simulated judge preferences (β = ∞, {c.get('alpaca_pairs')} same-prompt pairs drawn "
        f"from the AlpacaEval candidate pools with seed {c.get('seed')}, sources left out: "
        f"{', '.join(c.get('alpaca_exclude_sources', [])) or 'none'}), as `rewardlab simulate alpaca-eval --beta inf` "
        "makes them; the other sets are the human or judge labels as read by their readers. ")
    text = (
        f"Training sets: {sets}{limit}. {alpaca}Each set is split by prompt (duplicated prompts kept together), "
        f"{1 - c.get('test_fraction', 0.3):.0%} / {c.get('test_fraction', 0.3):.0%}, seed {c.get('seed')}. "
        f"Every recipe × head ({', '.join(c.get('heads', []))}) is trained once (seed {c.get('seed')}) on each set's "
        f"training part on `{c.get('encoder')}` embeddings and scored on every set's held-out part — its own "
        "(in-set) and the others' (cross-set transfers) — and on the bias probes "
        f"`{probe.get('name', '—')}` ({probe.get('pairs', 0)} pairs, overall and per bias type). Test pairs whose "
        "prompt (normalized text) is among the training set's prompts are left out of that transfer (counted in the "
        "transfer table). All models meet the same test pairs and bootstrap resamples, so differences are paired. "
        f"Recipes: {recipes}."
    )
    return text + (
        "\n\nIn every cell: pairwise accuracy with a 95% bootstrap CI over prompt groups "
        f"({c.get('n_resamples')} resamples); the length controls on the same pairs — prefer-longer, prefer-shorter "
        "and the length-only head (Bradley-Terry on the log-length difference, fitted on the SAME training pairs as "
        "the model); Δ accuracy vs the length-only head (paired CI); length-balanced accuracy (mean of the accuracy "
        "on pairs where the better response is the longer one and where it is the shorter one; undefined when one "
        "kind is absent); Spearman ρ(reward, length in characters). One training seed per model: the CIs cover "
        "test-prompt sampling, not training randomness."
    )


def _summary_table(record: Mapping[str, Any]) -> Table:
    chosen = (record.get("selection") or {}).get("chosen") or {}
    rows = []
    for r in record.get("summary", []):
        mark = " ←" if (r["recipe"], r["head"]) == (chosen.get("recipe"), chosen.get("head")) else ""
        rows.append([_combo(r) + mark, str(r["transfers"]), number(r["mean_accuracy"]), number(r["mean_delta"]),
                     f"{r['delta_above']} / {r['delta_below']}", number(r["min_balanced"]), number(r["mean_balanced"]),
                     number(r["in_set_accuracy"]), number(r["probe_overall"]), number(r["probe_length"])])
    return Table(["recipe / head", "transfers", "mean acc.", "mean Δ vs length-only", "Δ CI > 0 / < 0",
                  "min balanced", "mean balanced", "in-set acc.", "EvalBiasBench overall", "EvalBiasBench length"], rows)


def _targets(record: Mapping[str, Any]) -> Table:
    return Table(["target", "verdict", "evidence"],
                 [[t["target"], _met(t["met"]), t["evidence"]] for t in record.get("targets", [])])


def _factor(f: Mapping[str, Any]) -> str:
    """``features: joint vs interaction``."""
    return f"{f['factor']}: {', '.join(f.get('levels', [])) or '?'} vs {f['versus'] if f['versus'] is not None else 'none'}"


def _factors(record: Mapping[str, Any]) -> Table | str:
    rows = [[_factor(f), str(f["comparisons"]), number(f["mean_balanced_diff"]),
             f"{f['balanced_helps']} / {f['comparisons']}", number(f["mean_delta_diff"]),
             f"{f['delta_helps']} / {f['comparisons']}", str(f.get("probe_models", "—")),
             number(f.get("mean_probe_overall_diff")), number(f.get("mean_probe_length_diff"))]
            for f in record.get("factor_effects", [])]
    if not rows:
        return "No two recipes of this run differ in exactly one factor."
    return Table(["factor", "matched transfer cells", "mean Δ balanced acc.", "balanced higher",
                  "mean Δ(Δ vs length-only)", "Δ higher", "matched models", "mean Δ EvalBiasBench overall",
                  "mean Δ EvalBiasBench length"], rows)


def _controls_table(record: Mapping[str, Any]) -> Table:
    rows = []
    for t in record.get("transfers", []):
        c = t.get("controls") or {}
        rows.append([t["train"], t["test"], "cross" if t["cross"] else "in-set", str(t["pairs"]),
                     str(t.get("excluded_seen_prompts", 0)), number(t.get("length_only_weight")),
                     estimate(c.get("length_only")), estimate(c.get("prefer_longer")), estimate(c.get("prefer_shorter")),
                     f"{c.get('pairs_longer_wins', '—')} / {c.get('pairs_shorter_wins', '—')}"])
    return Table(["train", "test", "kind", "pairs", "left out (seen prompts)", "length-only weight", "length-only acc.",
                  "prefer-longer", "prefer-shorter", "longer / shorter wins"], rows)


def _chosen_cells(record: Mapping[str, Any]) -> Table:
    chosen = (record.get("selection") or {}).get("chosen") or {}
    rows = []
    for t in record.get("transfers", []):
        for m in t.get("models", []):
            if (m["recipe"], m["head"]) == (chosen.get("recipe"), chosen.get("head")):
                rows.append([t["train"], t["test"], "cross" if t["cross"] else "in-set", estimate(m["accuracy"]),
                             estimate((t.get("controls") or {}).get("length_only")),
                             difference(m["accuracy_minus_length_only"]), estimate(m["length_balanced_accuracy"]),
                             number(m["spearman_reward_length"])])
    return Table(["train", "test", "kind", "accuracy", "length-only", "Δ vs length-only", "length-balanced", "ρ(reward, len)"],
                 rows)


def _all_cells(record: Mapping[str, Any]) -> Table:
    rows = []
    for t in record.get("transfers", []):
        for m in t.get("models", []):
            rows.append([t["train"], t["test"], m["recipe"], m["head"], estimate(m["accuracy"]),
                         difference(m["accuracy_minus_length_only"]), estimate(m["length_balanced_accuracy"]),
                         estimate(m["accuracy_longer_wins"]), estimate(m["accuracy_shorter_wins"]),
                         number(m["spearman_reward_length"])])
    return Table(["train", "test", "recipe", "head", "accuracy", "Δ vs length-only", "length-balanced",
                  "acc. longer wins", "acc. shorter wins", "ρ(reward, len)"], rows)


def _probe_tables(record: Mapping[str, Any]) -> list[Table]:
    probe = record.get("probe") or {}
    results = probe.get("results", [])
    if not results:
        return []
    biases = list(probe.get("bias_types", {}))
    controls = []
    for res in results:
        for name, block in [("overall", res["overall"]), *res["by_bias"].items()]:
            c = block.get("controls") or {}
            controls.append([res["train"], name, str(block["pairs"]), estimate(c.get("length_only")),
                             estimate(c.get("prefer_longer")), estimate(c.get("prefer_shorter"))])
    models = []
    for res in results:
        blocks = {"overall": res["overall"], **res["by_bias"]}
        for i, m in enumerate(res["overall"].get("models", [])):
            row = [res["train"], m["recipe"], m["head"]]
            for name in ["overall", *biases]:
                ms = blocks.get(name, {}).get("models", [])
                row.append(estimate(ms[i]["accuracy"]) if i < len(ms) else "—")
            models.append(row)
    return [Table(["train", "probes", "pairs", "length-only", "prefer-longer", "prefer-shorter"], controls),
            Table(["train", "recipe", "head", "overall", *biases], models)]


def _fits(record: Mapping[str, Any]) -> Table:
    """Fit seconds per training set and recipe (heads summed), and the synthetic pairs augmentation added."""
    rows: dict[tuple[str, str], list[Any]] = {}
    for f in record.get("fits", []):
        row = rows.setdefault((f["train"], f["recipe"]), [0.0, None])
        row[0] += f["seconds"]
        if f.get("augmented_pairs"):
            row[1] = ", ".join(f"{k} {v}" for k, v in f["augmented_pairs"].items())
    return Table(["train", "recipe", "fit seconds (all heads)", "augmented pairs"],
                 [[train, recipe, number(float(sec), 1), added or "—"] for (train, recipe), (sec, added) in rows.items()])


def _data_table(record: Mapping[str, Any]) -> Table:
    rows = [[name, str(d["pairs"]), str(d["prompts"]), f"{d['train_pairs']} / {d['train_prompts']}",
             f"{d['test_pairs']} / {d['test_prompts']}", _pct(d.get("share_longer_wins")), number(d.get("median_length"), 0)]
            for name, d in record.get("data", {}).items()]
    return Table(["set", "pairs", "prompts", "train pairs / prompts", "test pairs / prompts", "longer wins",
                  "median length (chars)"], rows)


def _speed(record: Mapping[str, Any]) -> list[Any]:
    speed = record.get("encoder_speed", [])
    if not speed:
        return ["Not measured in this run."]
    rows = [[s["encoder"], str(s["sample_texts"]), number(s["load_seconds"], 1), number(s["texts_per_second"], 1),
             f"{s['estimated_embed_seconds'] / 60:.1f} min", "yes" if s["fits_budget"] else "no",
             "yes" if s["used"] else "no"] for s in speed]
    first = speed[0]
    verdicts = [f"- `{s['encoder']}`: {number(s['texts_per_second'], 2)} texts/s (after a {number(s['load_seconds'], 0)} s "
                f"load), so embedding the study's texts once would take about {s['estimated_embed_seconds'] / 60:.0f} min: "
                + ("within the budget, so it can join the grid (`--encoder`)." if s["fits_budget"] else
                   f"{s['estimated_embed_seconds'] / max(first['estimated_embed_seconds'], 1):.0f}× the study's encoder "
                   "and over the budget, so it is not included.")
                for s in speed if not s["used"]]
    return [f"Each encoder embedded the same {first['sample_texts']} texts sampled from the study's sets, cache bypassed "
            f"(model load timed apart); the estimate is for all {first['study_texts']} distinct texts of the study, "
            f"once (later runs read the cache). An encoder joins only if that fits in "
            f"{first['budget_seconds'] / 60:.0f} min on this machine.",
            Table(["encoder", "texts", "load (s)", "texts/s", "embed whole study once", "fits", "used"], rows),
            *(["\n".join(verdicts)] if verdicts else [])]


#: study settings the command sets, and its option for each
OPTIONS = {"sets": "--sets", "recipes": "--recipes", "heads": "--heads", "encoder": "--encoder", "seed": "--seed",
           "limit": "--limit", "probe": "--probe", "alpaca_pairs": "--alpaca-pairs", "n_resamples": "--resamples",
           "speed_probe": "--speed-probe"}


def command(record: Mapping[str, Any], out: str = "docs/rm-recipes") -> str:
    """The command that reruns the record's settings: the options whose values differ from today's defaults."""
    defaults = asdict(RmRecipesConfig())
    parts = ["rewardlab experiment rm-recipes"]
    for key, value in record.get("config", {}).items():
        default = defaults.get(key)
        same = list(value) == list(default) if isinstance(value, list | tuple) and isinstance(default, list | tuple) \
            else value == default
        if same:
            continue
        if key not in OPTIONS:
            parts.append(f"(setting {key}={value!r} has no option)")
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{OPTIONS[key]} {text}" if text and " " not in text else f"{OPTIONS[key]} '{text}'")
    return " ".join([*parts, "--out", out])


def _findings(record: Mapping[str, Any]) -> str:
    """Plain statements of what the record's numbers say (every number read from the record)."""
    sel = record.get("selection") or {}
    chosen = sel.get("chosen")
    summary = {(r["recipe"], r["head"]): r for r in record.get("summary", [])}
    if not chosen:
        return "No combination had a defined length-balanced accuracy on a cross-set transfer: nothing to choose."
    r = summary[(chosen["recipe"], chosen["head"])]
    lines = [f"- Default: **{_combo(chosen)}** — mean length-balanced accuracy {number(r['mean_balanced'])} "
             f"(min {number(r['min_balanced'])}) and mean Δ vs length-only {number(r['mean_delta'])} over "
             f"{r['transfers']} cross-set transfers; its Δ CI excludes 0 above on {r['delta_above']} and below on "
             f"{r['delta_below']}; EvalBiasBench {number(r['probe_overall'])} overall, {number(r['probe_length'])} on "
             "length bias."]
    first = record.get("summary", [{}])[0]
    if first and (first["recipe"], first["head"]) != (chosen["recipe"], chosen["head"]):
        lines.append(f"- Today's recipe ({_combo(first)}): mean balanced {number(first['mean_balanced'])}, mean Δ "
                     f"{number(first['mean_delta'])}, Δ CI > 0 on {first['delta_above']} / < 0 on "
                     f"{first['delta_below']} transfers.")
    cross = [t for t in record.get("transfers", []) if t["cross"] and t.get("controls")]
    above = [t for t in cross if (t["controls"]["length_only"].get("value") or 0) > 0.5]
    lines.append(f"- The length-only control scores above .5 on {len(above)} of {len(cross)} cross-set transfers "
                 f"(its weight's sign is learned on the training set, so it transfers only where the length preference "
                 "does).")
    probe = record.get("probe") or {}
    length_blocks = [(res["train"], res["by_bias"].get(LENGTH_BIAS)) for res in probe.get("results", [])]
    length_blocks = [(train, b) for train, b in length_blocks if b and b.get("controls")]
    if length_blocks:
        c = length_blocks[0][1]["controls"]
        lines.append(f"- EvalBiasBench `{LENGTH_BIAS}`: the better response is the longer one in {c['pairs_longer_wins']} "
                     f"and the shorter one in {c['pairs_shorter_wins']} of {length_blocks[0][1]['pairs']} probes; the "
                     "length-only control scores " + ", ".join(
                         f"{number(b['controls']['length_only']['value'])} trained on {train}" for train, b in length_blocks)
                     + ".")
    for f in record.get("factor_effects", []):
        lines.append(f"- {_factor(f)}: length-balanced accuracy {number(f['mean_balanced_diff'])} "
                     f"on average over {f['comparisons']} matched transfer cells (higher in {f['balanced_helps']}); Δ vs "
                     f"length-only {number(f['mean_delta_diff'])} (higher in {f['delta_helps']}); EvalBiasBench "
                     f"{number(f.get('mean_probe_overall_diff'))} overall and {number(f.get('mean_probe_length_diff'))} on "
                     f"length bias over {f.get('probe_models', 0)} matched models.")
    cross = [m for m in record.get("transfers", []) if m["cross"]]
    widths = [(c["length_balanced_accuracy"]["ci_high"] - c["length_balanced_accuracy"]["ci_low"]) / 2
              for t in cross for c in t["models"]
              if (c["recipe"], c["head"]) == (chosen["recipe"], chosen["head"])
              and math.isfinite(c["length_balanced_accuracy"].get("ci_high", math.nan))
              and math.isfinite(c["length_balanced_accuracy"].get("ci_low", math.nan))]
    means = [r["mean_balanced"] for r in sel.get("ranking", [])]
    if len(means) > 1 and widths:
        lines.append(f"- How sure: the {len(means)} combinations' mean length-balanced accuracies lie in "
                     f"[{min(means):.3f}, {max(means):.3f}], a spread of {max(means) - min(means):.3f}, while one "
                     f"transfer's 95% CI is ±{sum(widths) / len(widths):.3f} on average and each model was trained with "
                     "one seed: the rule picks one, but the top combinations are not shown to differ.")
    missed = [t["target"] for t in record.get("targets", []) if t["met"] is False]
    lines.append(f"- Targets not met by the default: {len(missed)} of {len(record.get('targets', []))}"
                 + (" — " + "; ".join(missed) if missed else "") + ".")
    return "\n".join(lines)


# ---------------------------------------------------------------------- figure
def _strip(ax: Any, record: Mapping[str, Any], key: str, control: str | None) -> None:
    summary = record.get("summary", [])
    cross = [t for t in record.get("transfers", []) if t["cross"]]
    labels, columns = [], []
    if control:
        labels.append("length-only\n(control)")
        columns.append([(t.get("controls") or {}).get(control, {}).get("value") for t in cross])
    for r in summary:
        labels.append(f"{r['recipe']}\n{r['head']}")
        columns.append([m[key].get("value") for t in cross for m in t["models"]
                        if (m["recipe"], m["head"]) == (r["recipe"], r["head"])])
    chosen = (record.get("selection") or {}).get("chosen") or {}
    default = f"{chosen.get('recipe')}\n{chosen.get('head')}"
    for i, values in enumerate(columns):
        ys = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
        xs = [i + 0.12 * ((j % 5) - 2) / 2 for j in range(len(ys))]
        colour = "grey" if (control and i == 0) else ("tab:orange" if labels[i] == default else "tab:blue")
        ax.scatter(xs, ys, s=14, alpha=0.6, color=colour)
        if ys:
            ax.hlines(sum(ys) / len(ys), i - 0.3, i + 0.3, color="black", linewidth=2)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=0.8, label=None if control else "length-only control (≡ .5)")


def _figure(plt: Any, record: Mapping[str, Any]) -> Any:
    n = len(record.get("summary", [])) + 1
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 0.6 * n + 2), 9.0), sharey=True)
    _strip(axes[0], record, "accuracy", "length_only")
    axes[0].set_title("accuracy on cross-set transfers", fontsize=9)
    axes[0].set_ylabel("pairwise accuracy (dots: transfers; bar: mean)")
    _strip(axes[1], record, "length_balanced_accuracy", None)
    axes[1].axhline(0.60, color="tab:red", linestyle="--", linewidth=0.8, label="target .60")
    axes[1].set_title("length-balanced accuracy on cross-set transfers (orange: the default)", fontsize=9)
    axes[1].set_ylabel("length-balanced accuracy")
    axes[1].legend(fontsize=7)
    return fig


def build_report(record: Mapping[str, Any]) -> Report:
    """The report: method, the selection rule (before its result), the choice and targets, tables, figure, timing."""
    sel = record.get("selection") or {}
    chosen = sel.get("chosen")
    t, machine = record.get("timing", {}), record.get("machine", {})
    sections = [
        Section("Method", [_protocol(record)]),
        Section("Selection rule (fixed before the results)", [sel.get("rule", "—")]),
        Section("Result", [f"Chosen default: **{_combo(chosen)}**." if chosen else "Nothing to choose.",
                           _findings(record)]),
        Section("Targets (for the default)", [_targets(record)]),
        Section("Summary over cross-set transfers",
                ["Per recipe × head over the cross-set transfers (train ≠ test, EvalBiasBench left out); in-set = the "
                 "held-out part of the training set; EvalBiasBench = mean over the models of each training set. "
                 "← marks the default.", _summary_table(record)]),
        Section("What each factor does",
                ["Recipe twins that differ only in one factor, compared on the same head and transfer (differences of "
                 "point estimates).", _factors(record)]),
        Section("Figure", [Figure(FIGURE, "Accuracy and length-balanced accuracy per recipe over cross-set transfers",
                                  lambda plt: _figure(plt, record))]),
        Section("The default, cell by cell", [_chosen_cells(record)]),
        Section("Length controls per transfer", [_controls_table(record)]),
        Section("EvalBiasBench", ["Accuracy per training set, recipe and head, overall and per bias type; the length "
                                  "controls use the length-only head of that training set.", *_probe_tables(record)]),
        Section("Data", [_data_table(record)]),
        Section("Encoder speed", _speed(record)),
        Section("Run", [f"- CPU: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores (shared)\n"
                        f"- total: {number(t.get('total_seconds'), 1)} s (loading {number(t.get('load_seconds'), 1)} s, "
                        f"embedding {number(t.get('embed_seconds'), 1)} s, fitting {number(t.get('fit_seconds'), 1)} s, "
                        f"encoder speed probe {number(t.get('speed_probe_seconds'), 1)} s); CPU time "
                        f"{number(t.get('cpu_seconds'), 1)} s (the machine was shared with other jobs)\n"
                        f"- regenerate: `{command(record)}`", _fits(record)]),
        Section("All cells", ["**Bold** Δ: its 95% CI excludes 0.", _all_cells(record)]),
    ]
    return Report("Reward-model recipes across data sets", sections, settings=record.get("config", {}), filename=README)



def write(record: Mapping[str, Any], out_dir: str | Path) -> Path:
    """``out_dir/README.md``, its figure under ``figures/`` and the record as ``record.json`` (written aside and
    renamed into place, since a later rendering trusts it); returns the README's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    aside = out / (RECORD + ".tmp")
    aside.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(aside, out / RECORD)
    return write_report(build_report(record), out)
