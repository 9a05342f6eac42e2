"""The best-of-n noise study's report, built from its JSON record and rendered by `rewardlab.report`.

The record stays the source of truth: this module only chooses what to show (protocol, findings, tables
with CIs, figures), never recomputes a number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rewardlab.report import Figure, Report, Section, Table, difference, estimate, findings_table, number

HEADLINE_NS = ("1", "4", "16", "max")
AGGREGATES = ("single", "mean", "min", "lcb")
RULE_NS = ("16", "max")  # where the learners are read against the length rules
RULES = {"longest": "pick the longest", "shortest": "pick the shortest"}
CAPTIONS = {"bon_curves": "Best-of-n gold vs n", "gold_vs_kl": "Over-optimization: gold vs KL(BoN), ensembles",
            "soft_bon": "Soft best-of-n: gold vs KL", "noise_grid": "Gold at n = max vs label noise β"}


def _levels(record: dict, key: str) -> list:
    """Grid levels in config order (so "first pairing" means the configured one), plus any the config does not list."""
    present = list(dict.fromkeys(g[key] for g in record.get("grid", [])))
    configured = [v for v in record.get("config", {}).get(key + "s", []) if v in present]
    levels = configured + [v for v in present if v not in configured]
    return sorted(levels) if key in ("beta", "budget") else levels


def _grid_index(record: dict) -> dict[tuple, dict]:
    return {(g["beta"], g["budget"], g["pairing"], g["learner"]): g for g in record.get("grid", [])}


# ---------------------------------------------------------------------- text and tables
def _utility(scale: str) -> str:
    if scale == "judge-logit":
        return "the judge's log-odds logit(gold − 1) (gold = 1 + P(judge prefers the output), clipped to [1e-4, 1 − 1e-4])"
    return "the gold score"


def _protocol(record: dict) -> str:
    c, d = record.get("config", {}), record.get("data", {})
    betas = ", ".join(f"{b:g}" for b in c.get("betas", []))
    budgets = ", ".join(str(b) for b in c.get("budgets", []))
    limit = f" (limited to {c['limit_prompts']} prompts)" if c.get("limit_prompts") else ""
    text = (
        f"Candidates come from `{d.get('source', c.get('candidates', '?'))}`{limit}, split by prompt "
        f"(test fraction {c.get('test_fraction')}, seed {c.get('split_seed')}) into {d.get('train_prompts')} train prompts "
        f"({d.get('train_candidates')} candidates) and {d.get('test_prompts')} test prompts ({d.get('test_candidates')} "
        f"candidates, {d.get('pool_size_min')}–{d.get('pool_size_max')} per pool). Preference labels are simulated as "
        f"P(a≻b) = σ(β·Δu/std(u)) with u = {_utility(d.get('label_scale', 'gold'))}, β ∈ {{{betas}}} (small β = noisy "
        f"labels), with label budgets of "
        f"{budgets} pairs drawn {' or '.join(c.get('pairings', []))}. Learners ({', '.join(c.get('learners', []))}) are fit "
        f"on `{c.get('encoder')}` embeddings with `{c.get('features')}` features, {c.get('seeds')} seeds per condition. "
        "Best-of-n picks the learned reward's favourite among n test candidates and scores its gold reward; n = max uses "
        "the whole pool. "
    )
    if record.get("ensembles"):
        text += (
            f"Ensembles of {c.get('ensemble_members')} members ({', '.join(c.get('ensemble_learners', []))}, budget "
            f"{c.get('ensemble_budget')}, {c.get('ensemble_pairing')}) are aggregated by mean, min and lcb = mean − λ·std "
            f"(λ = {c.get('lam')}) and compared with a single member. "
        )
    return text + (
        f"Confidence intervals are 95% percentile bootstrap over test prompts ({c.get('n_resamples')} resamples), "
        "with per-prompt values averaged over seeds."
    )


def _headline(record: dict) -> Table:
    header = ["β", "budget", "pairing", "learner", "label acc."] + [f"gold@{n}" for n in HEADLINE_NS]
    header += ["oracle-gain frac. @max", "Spearman"]
    rows = []
    for g in record.get("grid", []):
        m = g.get("metrics", {})
        rows.append([f"{g['beta']:g}", str(g["budget"]), g["pairing"], g["learner"], number(g.get("label_accuracy"))]
                    + [estimate(m.get(n, {}).get("gold")) for n in HEADLINE_NS]
                    + [estimate(m.get("max", {}).get("oracle_gain_fraction")), estimate(m.get("all", {}).get("spearman"))])
    return Table(header, rows)


def _paired(record: dict) -> Table:
    rows = [[p["comparison"], f"{p['beta']:g}", str(p["budget"]), p.get("pairing", "—"), p.get("learner", "—"),
             difference(p["diff"])]
            for p in record.get("paired", []) if p.get("n") == "max"]
    return Table(["comparison", "β", "budget", "pairing", "learner", "gold difference @max"], rows)


def _ensembles(record: dict) -> Table:
    header = ["learner", "β"] + [f"{a} @max" for a in AGGREGATES] + ["min − single", "lcb − single"]
    header += [f"Gao {p} ({a})" for a in ("single", "lcb") for p in ("α", "β", "peak KL")]
    rows = []
    for e in record.get("ensembles", []):
        at_max, diff, fits = e.get("at_max", {}), e.get("diff_vs_single_at_max", {}), e.get("fits", {})
        rows.append([e["learner"], f"{e['beta']:g}"] + [estimate(at_max.get(a)) for a in AGGREGATES]
                    + [estimate(diff.get("min")), estimate(diff.get("lcb"))]
                    + [number(fits.get(a, {}).get(p)) for a in ("single", "lcb") for p in ("alpha", "beta", "peak_kl")])
    return Table(header, rows)


def _length_rules(record: dict) -> list[Any]:
    """The rules' gold at the headline n, then each condition's gold beside the better rule's and the Δ."""
    rules = record["length_rules"]
    paired = rules.get("paired", False)
    by_n = rules.get("n", {})
    reference = Table(["rule"] + [f"gold@{n}" for n in HEADLINE_NS],
                      [[label] + [estimate(by_n.get(n, {}).get(rule)) for n in HEADLINE_NS] for rule, label in RULES.items()]
                      + [["better rule"] + [by_n.get(n, {}).get("better_rule", "—") for n in HEADLINE_NS]])
    header = ["β", "budget", "pairing", "learner"]
    for n in RULE_NS:
        header += [f"gold@{n}", f"better rule@{n}", f"Δ@{n} ({'paired' if paired else 'unpaired, no CI'})"]
    header += ["Spearman(reward, length)"]
    rows = []
    for g in record.get("grid", []):
        own = g.get("length_rules", {})
        row = [f"{g['beta']:g}", str(g["budget"]), g["pairing"], g["learner"]]
        for n in RULE_NS:
            rule = by_n.get(n, {})
            better = rule.get(rule.get("better_rule") if rule.get("better_rule") in RULES else "longest")
            delta = own.get("n", {}).get(n, {}).get("gold_minus_better_rule")
            row += [estimate(g.get("metrics", {}).get(n, {}).get("gold")), estimate(better),
                    difference(delta) if paired else (number(delta.get("value")) if delta else "—")]
        rows.append(row + [estimate(own.get("spearman_reward_length"))])
    if paired:
        how = ("Δ = the learner's pick minus the better rule's, paired over test prompts (same resamples); **bold**: "
               "the 95% CI excludes 0. Spearman(reward, length): mean over test pools of ρ between the learned reward "
               "and length, each pool's ρ averaged over seeds.")
    else:
        how = ("The rules were added to this record after its run, from its config and candidate pools (no model "
               "needed: `bon_noise.length_rules_for_record`). The record keeps only each learner's mean gold, not its "
               "per-prompt picks, so Δ is the difference of the two means: **unpaired, without a CI**, and there is no "
               "Spearman(reward, length). A new run of the study pairs Δ by prompt.")
    return [f"Best-of-n with length (in {rules.get('unit', 'characters')}) as the only proxy, on the same test pools "
            "and the same unbiased estimator as the learners: of the n drawn, pick the longest or the shortest (ties "
            "at random). The better rule is chosen on these test prompts, which favours it a little. A learner that "
            "does not beat it has, for best-of-n, learned no more than length.", reference, how, Table(header, rows)]


def build_report(record: dict) -> Report:
    """The report: protocol, findings, headline / paired / ensemble tables with CIs, reference, figures, timing."""
    ref = record.get("reference", {})
    sections = [
        Section("Protocol", [_protocol(record)]),
        Section("Findings", [findings_table(record.get("findings", []))]),
        Section("Headline: gold reward of the best-of-n pick",
                ["Gold of the pick (mean over test prompts) with 95% CIs; "
                 "oracle-gain fraction = (pick − random) / (oracle − random).", _headline(record)]),
        Section("Paired differences at n = max",
                ["Paired over test prompts (same labels for learner comparisons). **Bold**: the 95% CI excludes 0.",
                 _paired(record)]),
    ]
    if record.get("length_rules"):
        sections.append(Section("Length controls: gold of a length-only pick", _length_rules(record)))
    if record.get("ensembles"):
        first = record["ensembles"][0]
        sections.append(Section("Ensembles and over-optimization", [
            f"{first.get('members')} members, budget {first.get('budget')}, {first.get('pairing')}, "
            f"λ = {first.get('lam')}. Gao et al. fit: gold gain over n = 1 ≈ d(α − βd), d = √KL(BoN); "
            "peak KL = (α / 2β)² (∞ if it never turns down).", _ensembles(record)]))
    sections.append(Section("Reference", [Table(["random"] + [f"oracle@{n}" for n in HEADLINE_NS],
                                                [[estimate(ref.get("random"))]
                                                 + [estimate(ref.get("oracle", {}).get(n)) for n in HEADLINE_NS]])]))
    sections.append(Section("Figures", figures(record)))
    t = record.get("timing", {})
    sections.append(Section("Timing", [f"- total: {number(t.get('total_seconds'), 1)} s\n"
                                       f"- embedding: {number(t.get('embed_seconds'), 1)} s\n"
                                       f"- reward-model fitting: {number(t.get('fit_seconds'), 1)} s"]))
    title = f"Best-of-n under label noise ({record.get('config', {}).get('candidates', '?')})"
    return Report(title, sections, settings=record.get("config", {}))


# ---------------------------------------------------------------------- figures
def _arr(xs: Any) -> np.ndarray:
    """Floats with null/inf turned into NaN, which matplotlib leaves as gaps instead of failing on."""
    a = np.array([math.nan if x is None else x for x in (xs or [])], dtype=float)
    return np.where(np.isfinite(a), a, math.nan)


def _panels(plt: Any, nrows: int, ncols: int, **kw: Any) -> tuple[Any, np.ndarray]:
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False, **kw)
    return fig, axes


def _bon_curves(plt: Any, record: dict, soft: bool) -> Any:
    """One panel per β at the largest budget and first pairing: the best-case label budget, one curve per learner."""
    index, betas, learners = _grid_index(record), _levels(record, "beta"), _levels(record, "learner")
    budget, pairing = _levels(record, "budget")[-1], _levels(record, "pairing")[0]
    ref = record.get("reference", {})
    fig, axes = _panels(plt, 1, len(betas), sharey=True)
    for ax, beta in zip(axes[0], betas):
        for learner in learners:
            g = index.get((beta, budget, pairing, learner))
            if g is None:
                continue
            if soft:
                ax.plot(_arr(g["soft"]["kl"]), _arr(g["soft"]["gold"]), marker=".", label=learner)
            else:
                ax.plot(_arr(g["curve"]["n"]), _arr(g["curve"]["gold"]), label=learner)
        if not soft:
            oracle = _arr(ref.get("oracle_curve", {}).get("gold"))
            ax.plot(np.arange(1, len(oracle) + 1), oracle, color="black", linestyle=":", label="oracle")
            rules = record.get("length_rules", {}).get("curve", {})
            for rule, style in (("longest", "-."), ("shortest", (0, (1, 3)))):
                if rules.get(rule):
                    ax.plot(_arr(rules["n"]), _arr(rules[rule]), color="grey", linestyle=style, label=RULES[rule])
            ax.set_xscale("log")
        random = ref.get("random", {}).get("value")
        if random is not None and math.isfinite(random):
            ax.axhline(random, color="grey", linewidth=0.8, linestyle="--", label="random")
        ax.set_title(f"β = {beta:g}, budget {budget}, {pairing}", fontsize=9)
        ax.set_xlabel("KL(soft BoN ‖ uniform)" if soft else "n")
    axes[0][0].set_ylabel("gold reward of pick")
    axes[0][0].legend(fontsize=7)
    return fig


def _gold_vs_kl(plt: Any, record: dict) -> Any:
    """Single vs aggregated ensembles along KL, with the Gao fit for the single model to show where it turns down."""
    ens = record["ensembles"]
    learners = list(dict.fromkeys(e["learner"] for e in ens))
    betas = sorted({e["beta"] for e in ens})
    fig, axes = _panels(plt, len(learners), len(betas), sharey=True)
    for ax in axes.flat:
        ax.axis("off")
    for e in ens:
        ax = axes[learners.index(e["learner"])][betas.index(e["beta"])]
        ax.axis("on")
        for agg in AGGREGATES:
            curve = e.get("curves", {}).get(agg)
            if curve:
                ax.plot(_arr(curve["kl"]), _arr(curve["gold"]), label=agg)
        single, fit = e.get("curves", {}).get("single"), e.get("fits", {}).get("single", {})
        alpha, beta = fit.get("alpha", math.nan), fit.get("beta", math.nan)
        if single and math.isfinite(alpha) and math.isfinite(beta):
            kl = _arr(single["kl"])
            d = np.sqrt(np.linspace(0.0, np.nanmax(kl), 100)) if np.isfinite(kl).any() else np.zeros(0)
            gold_at_1 = _arr(single["gold"])[0]  # the fit is of the gain over n = 1
            ax.plot(d**2, gold_at_1 + d * (alpha - beta * d), color="black", linestyle="--", label="Gao fit (single)")
        ax.set_title(f"{e['learner']}, β = {e['beta']:g}", fontsize=9)
        ax.set_xlabel("KL(BoN) = log n − (n−1)/n")
        ax.set_ylabel("gold reward of pick")
        ax.legend(fontsize=7)
    return fig


def _noise_grid(plt: Any, record: dict) -> Any:
    """Gold at n = max against β: the study's main question, how each learner degrades as labels get noisier."""
    index, betas, learners = _grid_index(record), _levels(record, "beta"), _levels(record, "learner")
    budgets, pairings = _levels(record, "budget"), _levels(record, "pairing")
    oracle_max = record.get("reference", {}).get("oracle", {}).get("max", {}).get("value")
    rules_max = record.get("length_rules", {}).get("n", {}).get("max", {})
    rule_name = rules_max.get("better_rule") if rules_max.get("better_rule") in RULES else "longest"
    rule_max = rules_max.get(rule_name, {}).get("value")
    fig, axes = _panels(plt, len(pairings), len(budgets), sharey=True)
    for row, pairing in enumerate(pairings):
        for col, budget in enumerate(budgets):
            ax = axes[row][col]
            for k, learner in enumerate(learners):
                cells = [index.get((b, budget, pairing, learner), {}) for b in betas]
                est = [g.get("metrics", {}).get("max", {}).get("gold", {}) for g in cells]
                v, lo, hi = (_arr([e.get(key) for e in est]) for key in ("value", "ci_low", "ci_high"))
                yerr = np.clip(np.nan_to_num(np.stack([v - lo, hi - v])), 0.0, None)
                jitter = np.array(betas, dtype=float) * 1.04 ** (k - (len(learners) - 1) / 2)  # keep error bars apart
                ax.errorbar(jitter, v, yerr=yerr, marker="o", markersize=3, capsize=2, label=learner)
            if oracle_max is not None and math.isfinite(oracle_max):
                ax.axhline(oracle_max, color="black", linestyle=":", linewidth=0.8, label="oracle")
            if rule_max is not None and math.isfinite(rule_max):
                ax.axhline(rule_max, color="grey", linestyle="-.", linewidth=0.8, label=RULES[rule_name])
            ax.set_xscale("log")
            ax.set_title(f"budget {budget}, {pairing}", fontsize=9)
            ax.set_xlabel("β (label noise: small = noisy)")
    for row_axes in axes:
        row_axes[0].set_ylabel("gold @ n = max")
    axes[0][0].legend(fontsize=7)
    return fig


def figures(record: dict) -> list[Figure]:
    """Every figure the record has data for, drawn only when the report is written."""
    out = []
    if record.get("grid"):
        out.append(Figure("bon_curves", CAPTIONS["bon_curves"], lambda plt: _bon_curves(plt, record, soft=False)))
    if record.get("ensembles"):
        out.append(Figure("gold_vs_kl", CAPTIONS["gold_vs_kl"], lambda plt: _gold_vs_kl(plt, record)))
    if record.get("grid"):
        out.append(Figure("soft_bon", CAPTIONS["soft_bon"], lambda plt: _bon_curves(plt, record, soft=True)))
        out.append(Figure("noise_grid", CAPTIONS["noise_grid"], lambda plt: _noise_grid(plt, record)))
    return out
