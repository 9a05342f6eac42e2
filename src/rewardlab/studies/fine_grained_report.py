"""The fine-grained study's report (`rewardlab experiment fine-grained`), built from its record alone, so a past
results.json renders again. Verdicts are read off the measured CIs, never written ahead.

The span-reward part of the study (issue 19, item 2) is its own section after the multi-objective ones, rendered from
the record's ``spans`` by `studies.fine_grained_spans.render_span_section`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.report import Figure, Report, Section, Table, difference, estimate, number
from rewardlab.studies.fine_grained_spans import render_span_section

MODEL_ORDER = ("direct BT", "multi-objective, fixed", "multi-objective, gated", "objectives summed", "longer answer",
               "shorter answer")


def reading(gap: Mapping[str, Any] | None, better: str, worse: str) -> str:
    """What a paired difference (better − worse) says, from its 95% CI."""
    if not gap:
        return "not measured"
    if gap["ci_low"] > 0:
        return f"{better} is better (CI above 0)"
    if gap["ci_high"] < 0:
        return f"{worse} is better (CI below 0)"
    return "no difference resolved (CI includes 0)"


def auc_reading(auc: Mapping[str, Any]) -> str:
    """Where an AUC's 95% CI lies against chance (0.5)."""
    if auc["ci_low"] > 0.5:
        return "CI above 0.5"
    if auc["ci_high"] < 0.5:
        return "CI below 0.5: it ranks flawed answers higher"
    return "CI includes 0.5"


def accuracy_table(record: Mapping[str, Any]) -> Table:
    rows = [[name, estimate(record["accuracy"][name]), difference(record["minus_bt"].get(name)),
             str(record["accuracy"][name]["n"])] for name in MODEL_ORDER if name in record["accuracy"]]
    return Table(["rule", "pairwise accuracy [95% CI]", "minus direct BT (paired)", "n pairs"], rows)


def objective_table(record: Mapping[str, Any]) -> Table:
    rows = []
    for name, m in record["objectives"].items():
        rows.append([name, estimate(m["clean_share"]), estimate(m["auc"]), estimate(m["accuracy"]),
                     estimate(m["bt_reward_auc"]), estimate(m["length_auc"]), str(m["auc"]["n"])])
    return Table(["objective", "share without such errors", "AUC of its output", "accuracy (logit > 0)",
                  "AUC of the direct BT reward", "AUC of length (longer higher)", "n answers"], rows,
                 caption="Held-out answers 1 (the only ones with span feedback); 1 = no error of that kind. AUC 0.5 is "
                         "chance; below 0.5 the score ranks flawed answers higher.")


def decider_table(record: Mapping[str, Any]) -> Table:
    rows = []
    for scalarization, by_objective in record["deciders"].items():
        for name, d in by_objective.items():
            rows.append([scalarization, name, estimate(d["share"]), estimate(d["accuracy"])])
    return Table(["weights", "deciding objective", "share of held-out pairs", "accuracy on those pairs"], rows,
                 caption="Per pair, the objective with the largest weighted difference among those agreeing with "
                         "the model's pick.")


def weight_table(record: Mapping[str, Any]) -> Table:
    rows = []
    for scalarization, by_objective in record["weights"].items():
        for name, w in by_objective.items():
            rows.append([scalarization, name, estimate(w["share"]), number(w["spread"]), number(w["scale"])])
    return Table(["weights", "objective", "mean share of the weight [95% CI]", "std over answers", "scale β"], rows,
                 caption="Shares w_k / Σw on held-out answers (a fixed scalarization varies only between folds).")


def findings(record: Mapping[str, Any]) -> str:
    acc, minus = record["accuracy"], record["minus_bt"]
    lines = [f"- Multi-objective (gated) vs direct BT: {difference(minus.get('multi-objective, gated'))}: "
             f"{reading(minus.get('multi-objective, gated'), 'multi-objective', 'direct BT')}.",
             f"- Multi-objective (fixed) vs direct BT: {difference(minus.get('multi-objective, fixed'))}: "
             f"{reading(minus.get('multi-objective, fixed'), 'multi-objective', 'direct BT')}.",
             f"- Gated vs fixed weights (same objective outputs): {difference(record['gated_minus_fixed'])}: "
             f"{reading(record['gated_minus_fixed'], 'gated', 'fixed')}.",
             f"- Length alone: the longer answer wins {estimate(acc.get('longer answer'))} of the decided pairs."]
    top = {s: max(d, key=lambda k: d[k]["share"]["value"]) for s, d in record["deciders"].items()}
    lines.append("- Deciding most often: " + "; ".join(
        f"{s} weights: {name} ({estimate(record['deciders'][s][name]['share'])} of pairs)" for s, name in top.items())
        + ".")
    for name, m in record["objectives"].items():
        lines.append(f"- {name}: its output tells error-free answers from flawed ones with AUC {estimate(m['auc'])} "
                     f"({auc_reading(m['auc'])}); length alone {estimate(m['length_auc'])} "
                     f"({auc_reading(m['length_auc'])}).")
    return "\n".join(lines)


def _bars(plt: Any, names: Sequence[str], estimates: Sequence[Mapping[str, Any]], xlabel: str,
          reference: float) -> Any:
    values = [e["value"] for e in estimates]
    errors = [[e["value"] - e["ci_low"] for e in estimates], [e["ci_high"] - e["value"] for e in estimates]]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.3))
    ys = list(range(len(names)))[::-1]
    ax.barh(ys, values, xerr=errors, capsize=3, color="tab:blue")
    ax.axvline(reference, color="black", linestyle=":", linewidth=0.8)
    ax.set_yticks(ys, names, fontsize=8)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def accuracy_figure(plt: Any, record: Mapping[str, Any]) -> Any:
    names = [n for n in MODEL_ORDER if n in record["accuracy"]]
    return _bars(plt, names, [record["accuracy"][n] for n in names],
                 "pairwise accuracy on held-out preferences (95% CI by question)", 0.5)


def objective_figure(plt: Any, record: Mapping[str, Any]) -> Any:
    names, estimates = [], []
    for name, m in record["objectives"].items():
        for label, key in ((f"{name}: its output", "auc"), (f"{name}: direct BT", "bt_reward_auc"),
                           (f"{name}: length", "length_auc")):
            names.append(label)
            estimates.append(m[key])
    return _bars(plt, names, estimates, "AUC for answers free of that error (95% CI by question)", 0.5)


def build_report(record: Mapping[str, Any]) -> Report:
    """The multi-objective sections, then the span rewards' (item 2) where the record has them, then timing and
    settings."""
    config = record["config"]
    labels = record["objective_labels"]
    protocol = (
        f"- Data: QA-Feedback, {record['questions']} questions × 4 answers, {record['pairs']} holistic preferences "
        f"({record['decided_pairs']} decided, {record['ties']} ties left out of accuracy). Objective labels exist for "
        f"answer 1 only: relevance {labels['relevance']}, factuality {labels['factuality']}, completeness "
        f"{labels['completeness']} (1 = no Irrelevant/Redundant/Incoherent span; no Wrong-Grounding/Unverifiable "
        "span; no missing information), masked for answers 2–4.\n"
        f"- Split: {config['folds']}-fold cross-validation by question, repeated for seeds "
        f"{', '.join(map(str, config['seeds']))} (another fold assignment and initialisation each); a pair's result "
        "is its mean over seeds.\n"
        f"- Features: {config['encoder']}, {config['features']}. Direct BT: {config['bt_head']}. Multi-objective: a "
        f"{config['hidden']}-wide trunk with three logit outputs trained on the objective labels, then frozen; the "
        "reward is β·Σ w_k o_k with weights fitted to the training preferences, one vector (fixed) or from a gate "
        "over the prompt vector (gated, as ArmoRM). 'Objectives summed' adds the three outputs with no preference "
        "fitting.\n"
        f"- CIs: {config['n_resamples']} bootstrap resamples of questions; differences paired on the same pairs. "
        "**Bold**: the CI excludes 0.")
    sections = [
        Section("Protocol", [protocol]),
        Section("Findings", [findings(record)]),
        Section("Holistic preference: multi-objective vs direct BT", [
            accuracy_table(record),
            Figure("accuracy", "Pairwise accuracy on held-out preferences, 95% CIs by question (dotted: chance)",
                   lambda plt: accuracy_figure(plt, record))]),
        Section("Each objective as a detector", [
            objective_table(record),
            Figure("objectives", "AUC for error-free answers: each objective's output, the direct BT reward and "
                                 "length, 95% CIs by question (dotted: chance)",
                   lambda plt: objective_figure(plt, record))]),
        Section("Which objective decided", [decider_table(record), weight_table(record)]),
        *([Section("Span rewards: error detection and the span-aggregate reward",
                   [render_span_section(record["spans"])])] if "spans" in record else []),
        Section("Timing", [f"- total: {number(record['timing']['total_seconds'], 1)} s (embedding "
                           f"{number(record['timing']['embed_seconds'], 1)} s, fitting "
                           f"{number(record['timing']['fit_seconds'], 1)} s) on {record['timing']['cpu']} "
                           f"({record['timing']['cores']} cores), embeddings from the cache where present."]),
    ]
    return Report("Multi-objective rewards on QA-Feedback: relevance, factuality, completeness", sections,
                  settings=config)
