"""The pluralistic study's report, built from its record alone (so a past results.json renders again)."""

from __future__ import annotations

from typing import Any

from rewardlab.report import Figure, Report, Section, Table, difference, estimate, findings_table, number
from rewardlab.studies.pluralistic_real_report import real_sections

STATISTIC_NAMES = {"group:minority": "minority group", "group:majority": "majority group", "pooled": "all pairs",
                   "macro": "macro (mean over annotators)", "worst": "worst annotator"}
LEARNER_NAMES = {"bt-mlp-annotator": "conditioned head (bt-mlp-annotator)", "bt-mixture": "EM mixture (bt-mixture)",
                 "bt-mlp-minority-only": "reference: BT-MLP on the minority's labels only"}


def people_table(record: dict[str, Any], against: str) -> Table:
    """Each learner vs unimodal BT-MLP: accuracy per statistic with CIs and the paired difference."""
    rows = []
    for learner, stats in record["minority"]["against"][against].items():
        keys = ("group:minority",) if learner == "bt-mlp-minority-only" else (
            "group:minority", "group:majority", "pooled", "macro", "worst")
        for key in keys:
            if key in stats:
                s = stats[key]
                rows.append([LEARNER_NAMES.get(learner, learner), STATISTIC_NAMES[key], estimate(s["model"]),
                             estimate(s["baseline"]), difference(s["difference"]), str(s["difference"]["n"])])
    return Table(["learner", "over", "accuracy [95% CI]", "unimodal BT [95% CI]", "difference (paired)", "n"], rows)


def split_table(record: dict[str, Any]) -> Table:
    rows = [[LEARNER_NAMES.get(learner, learner), estimate(s["model"]), estimate(s["baseline"]),
             difference(s["difference"]), str(s["difference"]["n"])]
            for learner, s in record["minority"].get("split_calibration", {}).items()]
    return Table(["learner", "split error [95% CI]", "unimodal BT [95% CI]", "difference (paired)", "test pairs"], rows)


def careless_table(record: dict[str, Any]) -> Table:
    careless = record["careless"]
    names = {"clean": "every annotator careful (reference)", "none": "careless, unweighted",
             "dawid-skene": "careless, Dawid–Skene weights"}
    rows = [[names[c], estimate(careless["accuracy"][c]), ", ".join(number(v) for v in careless["per_seed"][c])]
            for c in names]
    rows.append(["lost to careless (clean − unweighted)", difference(careless["lost"]), ""])
    rows.append(["regained (Dawid–Skene − unweighted)", difference(careless["regained"]), ""])
    rows.append(["recovered share", estimate(careless["recovered_share"], 2), ""])
    return Table(["training labels", "accuracy vs gold [95% CI]", "per seed"], rows)


def build_report(record: dict[str, Any]) -> Report:
    """The simulated questions (when run) and the real-data sections (when run), from the record alone."""
    config = record["config"]
    sections = simulated_sections(record) if "minority" in record else [Section("Findings", [
        findings_table(record["findings"])])]
    sections += real_sections(record)
    sections.append(Section("Timing", [f"- total: {number(record['timing']['total_seconds'], 1)} s (embedding the "
                                       f"simulated pools {number(record['timing']['embed_seconds'], 1)} s)"]))
    parts = ([f"simulated populations ({config['candidates']})"] if "minority" in record else []) + [
        {"wmt": "WMT23 MQM raters", "convabuse": "ConvAbuse annotators"}[name] for name in record.get("real", {})]
    return Report(f"Pluralistic reward models: {', '.join(parts)}", sections, settings=config)


def simulated_sections(record: dict[str, Any]) -> list[Section]:
    config, data, minority = record["config"], record["data"], record["minority"]
    protocol = (
        f"- Candidate pools: {config['candidates']}, {data['pools']} prompts × ≤ {config['per_prompt']} candidates, "
        f"split by prompt: {data['train_pools']} train, {data['test_pools']} test; encoder {config['encoder']}, "
        f"interaction features.\n"
        f"- Minority question: {config['annotators']} annotators (β = {config['beta']}), "
        f"{minority['annotators']['minority']} of them a minority whose utility is −gold on {config['disagree']:.0%} "
        f"of the prompts (a topic: one side of the first principal direction of the prompts' mean features; "
        f"{data['reversed_test_pools']} of the test prompts), {config['pairs']} training pairs with one label each; "
        f"{minority['test_pairs']} test pairs × every annotator.\n"
        f"- Careless question: {record['careless']['careless_annotators']} of {config['annotators']} annotators flip "
        f"coins; {config['careless_items']} pairs × {config['labels_per_item']} labels.\n"
        f"- {config['seeds']} seeds; per-pair results averaged over seeds, then 95% CIs from the cluster bootstrap "
        f"over test prompts ({config['n_resamples']} resamples); differences are paired on the same resamples. "
        "**Bold**: the CI excludes 0.")
    sections = [
        Section("Protocol", [protocol]),
        Section("Findings", [findings_table(record["findings"])]),
        Section("Does an annotator-aware model serve the minority?", [
            "Accuracy of each annotator's reward (the conditioned head's `predict_for`, the mixture's posterior-"
            "weighted reward; unimodal BT: its one reward) against that annotator's own preference on the test pairs:",
            people_table(record, "preference"),
            "The same, against the annotators' held-out labels (expected accuracy under their Bradley-Terry noise):",
            people_table(record, "label"),
            f"Mixture: K chosen per seed by held-out likelihood = {', '.join(map(str, minority['mixture_k']))}.",
            _reading(record),
            Figure("people", "Accuracy against each group's own preferences (95% CIs by prompt): unimodal BT vs the "
                             "annotator-aware learners", lambda plt: people_figure(plt, record)),
            "Distribution: mean absolute error between the predicted P(a random annotator prefers a) and the "
            "population's split on each test pair (the mean over annotators of P(they say a)); lower is better:",
            split_table(record)]),
        Section("Do Dawid–Skene weights recover what careless annotators cost?", [careless_table(record)]),
    ]
    return sections


def _reading(record: dict[str, Any]) -> str:
    """What the minority-only reference says about the ceiling: an annotator-aware model shares what it learns across
    people, but it cannot learn a preference that the group's own labels do not teach."""
    against = record["minority"]["against"]["preference"]
    reference = against.get("bt-mlp-minority-only", {}).get("group:minority")
    if not reference:
        return ""
    value = reference["model"]
    teachable = value["ci_low"] > 0.5
    return (f"Reading: a BT-MLP trained on the minority's labels alone reaches {estimate(value)} on the minority's "
            "preferences. " + ("Their labels do teach their preference at this budget, so an annotator-aware model "
                               "has something to recover." if teachable else
                               "That is chance: at this budget and noise their labels do not teach a preference that "
                               "reverses with the topic, so no model of who said what can recover it here; the "
                               "comparison of learners is informative only where this reference is above chance."))


def people_figure(plt: Any, record: dict[str, Any]) -> Any:
    """Grouped bars: accuracy on the minority, the majority and the worst annotator, per learner, with CIs."""
    against = record["minority"]["against"]["preference"]
    aware = [learner for learner in against if learner != "bt-mlp-minority-only"]
    keys = ("group:minority", "group:majority", "worst")
    bars = [("unimodal BT", [against[aware[0]][k]["baseline"] for k in keys])]
    bars += [(LEARNER_NAMES.get(learner, learner).split(" (")[0], [against[learner][k]["model"] for k in keys])
             for learner in aware]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(bars)
    for i, (name, estimates) in enumerate(bars):
        xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(keys))]
        values = [e["value"] for e in estimates]
        errors = [[e["value"] - e["ci_low"] for e in estimates], [e["ci_high"] - e["value"] for e in estimates]]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=name)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(keys)), [STATISTIC_NAMES[k] for k in keys])
    ax.set_ylabel("accuracy vs own preference")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
