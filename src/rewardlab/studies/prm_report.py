"""The PRM study's report (`rewardlab experiment prm`), built from its record alone, so a past results.json renders
again. The verdicts against Lightman et al. are computed from the measured paired differences, never written ahead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewardlab.report import Callout, Figure, Report, Section, Table, difference, estimate, number

#: the aggregation compared with the anchor: Lightman et al. score a solution by the product of its step
#: probabilities (P(every step is correct)); every other aggregation is in the main table, beside it
ANCHOR_AGGREGATION = "product"
#: rows drawn as references (dashed lines) in the figure, not bars of their own
REFERENCE_LINES = ("random", "oracle")


def verdict(gap: Mapping[str, Any] | None) -> str:
    """What a measured difference says about a gap the anchor found positive: its 95% CI decides."""
    if not gap:
        return "not measured"
    if gap["ci_low"] > 0:
        return "holds (CI above 0)"
    if gap["ci_high"] < 0:
        return "reversed (CI below 0)"
    return "not resolved (CI includes 0)"


def prm_rules(record: Mapping[str, Any], aggregation: str | None = None) -> list[str]:
    """The PRM rows of the record (``PRM[labels] how``), optionally of one aggregation only."""
    return [name for name in record["accuracy"] if name.startswith("PRM[")
            and (aggregation is None or name.endswith(f" {aggregation}"))]


def accuracy_table(record: Mapping[str, Any]) -> Table:
    """Every rule: best-of-n accuracy, and its paired difference with the ORM and with majority vote."""
    rows = [[name, estimate(acc), difference(record["minus_orm"].get(name)),
             difference(record["minus_majority"].get(name)), str(acc["n"])]
            for name, acc in record["accuracy"].items()]
    return Table(["rule", "accuracy [95% CI]", "minus ORM (paired)", "minus majority vote (paired)", "n questions"],
                 rows)


def anchor_table(record: Mapping[str, Any]) -> Table:
    """Lightman et al.'s three orderings, each beside the difference measured here and what its CI says."""
    anchor = record["lightman_anchor"]
    claims: list[tuple[str, str, str, Mapping[str, Any] | None]] = [
        ("ORM > majority vote", "orm", "majority", record["minus_majority"].get("ORM"))]
    for rule in prm_rules(record, ANCHOR_AGGREGATION):
        claims.append((f"{rule} > ORM", "prm", "orm", record["minus_orm"].get(rule)))
        claims.append((f"{rule} > majority vote", "prm", "majority", record["minus_majority"].get(rule)))
    rows = [[claim, f"+{(anchor[a] - anchor[b]) / 100:.3f} ({anchor[a]}% − {anchor[b]}%)", difference(here),
             str(here["n"]) if here else "—", verdict(here)] for claim, a, b, here in claims]
    return Table(["ordering", "Lightman et al. (best-of-1860)", f"here (best-of-{pool_size(record)}, paired)",
                  "n questions", "at this scale"], rows)


def pool_size(record: Mapping[str, Any]) -> str:
    return str(record.get("pool_size", 4))


def anchor_reading(record: Mapping[str, Any]) -> str:
    """Which of the anchor's orderings survive here, and what the checker and the oracle say about why, from the
    numbers in the record."""
    majority_minus_orm = record["minus_majority"].get("ORM")
    prm_vs_orm = {rule: verdict(record["minus_orm"].get(rule)) for rule in prm_rules(record)}
    above_orm = [rule for rule, v in prm_vs_orm.items() if v.startswith("holds")]
    below_orm = [rule for rule, v in prm_vs_orm.items() if v.startswith("reversed")]
    oracle, majority = record["accuracy"].get("oracle"), record["accuracy"].get("majority vote")
    room = record["minus_majority"].get("oracle")
    lines = [
        f"- ORM vs majority vote: {verdict(majority_minus_orm)}, {difference(majority_minus_orm)}; the anchor has the "
        f"ORM {(record['lightman_anchor']['orm'] - record['lightman_anchor']['majority']) / 100:.3f} above it.",
        f"- PRM vs ORM, over all {len(prm_vs_orm)} PRM rows (label source × aggregation): {len(above_orm)} with the CI "
        f"above 0, {len(below_orm)} below, {len(prm_vs_orm) - len(above_orm) - len(below_orm)} including 0 "
        "(picking the best of several rows after the fact would overstate it; the anchor row uses the product, "
        "as Lightman et al. do).",
    ]
    beat_vote = [rule for rule, gap in record["minus_majority"].items()
                 if rule not in REFERENCE_LINES and verdict(gap).startswith("holds")]
    lines.append("- Rules above majority vote (paired CI above 0): " + (", ".join(
        f"{rule} {difference(record['minus_majority'][rule])}" for rule in beat_vote) if beat_vote else "none") + ".")
    random_minus_orm = record["minus_orm"].get("random")
    if random_minus_orm:
        orm_minus_random = negated(random_minus_orm)
        lines.append(f"- ORM minus a random pick: {difference(orm_minus_random)}, {verdict(orm_minus_random)}; this "
                     "says whether the outcome head learned to tell right solutions from wrong ones at all.")
    if oracle and majority and room:
        lines.append(f"- Headroom: some solution is correct on {estimate(oracle)} of the questions (the oracle) and "
                     f"majority vote gets {estimate(majority)}, so no verifier choosing among these "
                     f"{pool_size(record)} solutions can beat the vote by more than {difference(room)}; the anchor's "
                     "gaps are measured with 1860 candidates per problem.")
    for rule, info in record["training"].items():
        sep = info.get("held_out_step_separation")
        if sep:
            lines.append(f"- {rule}: mean P(good) on held-out steps the checker passed minus those it flagged "
                         f"{difference(sep['good_minus_wrong'])} (n = {sep['good_minus_wrong']['n']} steps, "
                         f"{sep['wrong_steps']} flagged): {separation_reading(sep['good_minus_wrong'])}.")
    return "\n".join(lines)


def negated(gap: Mapping[str, Any]) -> dict[str, Any]:
    """The difference the other way round (b − a from a − b): the percentile CI's bounds swap and change sign."""
    return {"value": -gap["value"], "ci_low": -gap["ci_high"], "ci_high": -gap["ci_low"], "n": gap["n"]}


def separation_reading(gap: Mapping[str, Any]) -> str:
    if gap["ci_low"] > 0:
        return "the PRM does rank checked-good steps above flagged ones"
    if gap["ci_high"] < 0:
        return "the PRM ranks flagged steps above checked-good ones"
    return "the PRM cannot tell the checker's good steps from its flagged ones"


def reach_table(record: Mapping[str, Any]) -> Table:
    """What the automatic labeller could check, and where its first-error flags fall."""
    reach = record["labeller"]
    rows = [["steps the checker could read (they state arithmetic)", f"{reach['checked_steps']} of {reach['steps']}",
             "—", str(reach["steps"])],
            ["arithmetic statements re-computed", str(reach["statements"]), "—", str(reach["steps"])],
            ["solutions with a flagged step", f"{reach['flagged_solutions']} of {reach['solutions']}", "—",
             str(reach["solutions"])],
            ["flagged share of correct solutions", "—", estimate(reach["flag_rate_correct"]),
             str(reach["flag_rate_correct"]["n"])],
            ["flagged share of incorrect solutions", "—", estimate(reach["flag_rate_incorrect"]),
             str(reach["flag_rate_incorrect"]["n"])],
            ["share of flags that fall in correct solutions (false alarm, or a slip the answer survived)", "—",
             estimate(reach["share_of_flags_in_correct"]), str(reach["share_of_flags_in_correct"]["n"])]]
    return Table(["over every pool", "count", "share [95% CI by question]", "n"], rows)


def training_table(record: Mapping[str, Any]) -> Table:
    rows = []
    for name, info in record["training"].items():
        examples = info.get("step_examples", info.get("labels"))
        good = info.get("good_steps")
        rows.append([name, str(examples), "—" if good is None else str(good), str(info.get("epochs", "—"))])
    return Table(["model", "training examples (steps, or solutions for the ORM)", "of them good steps", "epochs"],
                 rows, caption="Fit diagnostics (validation losses) are in results.json.")


def accuracy_figure(plt: Any, record: Mapping[str, Any]) -> Any:
    """One horizontal bar per rule with its 95% CI; random and oracle as dashed reference lines."""
    names = [name for name in record["accuracy"] if name not in REFERENCE_LINES]
    values = [record["accuracy"][n]["value"] for n in names]
    errors = [[record["accuracy"][n]["value"] - record["accuracy"][n]["ci_low"] for n in names],
              [record["accuracy"][n]["ci_high"] - record["accuracy"][n]["value"] for n in names]]
    colors = ["tab:blue" if n.startswith("PRM[") else "tab:orange" if n == "ORM" else
              "tab:green" if n == "majority vote" else "tab:grey" for n in names]
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(names) + 1.4))
    ys = list(range(len(names)))[::-1]
    ax.barh(ys, values, xerr=errors, color=colors, capsize=3)
    for line, style in zip(REFERENCE_LINES, (":", "--")):
        if line in record["accuracy"]:
            ax.axvline(record["accuracy"][line]["value"], color="black", linestyle=style, linewidth=0.8, label=line)
    ax.set_yticks(ys, names, fontsize=8)
    ax.set_xlabel(f"best-of-{pool_size(record)} accuracy on held-out questions (95% CI by question)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def build_report(record: Mapping[str, Any]) -> Report:
    config, questions = record["config"], record["questions"]
    protocol = (
        f"- Pools: {config['candidates']} ({record.get('pools', questions['train'] + questions['test'])} questions × "
        f"{pool_size(record)} solutions, each labelled correct or not), split by question: {questions['train']} to "
        f"train, {questions['test']} held out (test share {config['test_size']}, seed {config['seed']}).\n"
        f"- Learned rules: an ORM ({config['head']}) on whole solutions' correctness; PRMs (the same head) on step "
        f"labels from the arithmetic checker, alone (`computation`) or with the outcome added "
        f"(`computation+outcome`), steps by {config['split']}; encoder {config['encoder']}, {config['features']} "
        "features; each PRM's step probabilities folded by min, product, last or mean.\n"
        "- Unlearned rules: majority vote over final answers, the checker as a verifier (`step check`: a solution "
        "with no flagged step; `step check, then majority`), a random pick, the longest / shortest solution, and "
        "the oracle (some solution is correct).\n"
        f"- Accuracy: the picked solution is correct, in expectation over ties; 95% CIs from {config['n_resamples']} "
        "bootstrap resamples of held-out questions, differences paired on the same questions. **Bold**: the CI "
        "excludes 0.")
    sections = [
        Section("Protocol", [protocol, Callout(
            "The step labels come from re-computing each arithmetic statement (`a op b = c`); they check computation, "
            "not reasoning: a step that computes the wrong quantity correctly passes.", "note")]),
        Section(f"Best-of-{pool_size(record)} accuracy per rule", [
            accuracy_table(record),
            Figure("accuracy", f"Best-of-{pool_size(record)} accuracy per rule on the held-out questions, with 95% "
                               "CIs by question (dotted: random pick; dashed: oracle)",
                   lambda plt: accuracy_figure(plt, record))]),
        Section("Against Lightman et al. (2023)", [
            "The anchor: PRM 78.2% vs ORM 72.4% vs majority vote 69.6% of MATH problems solved, best-of-1860, "
            "GPT-4-scale generator and reward models, PRM trained on human step labels (PRM800K). Here: best-of-"
            f"{pool_size(record)} on GSM8K, GPT-3 solutions, heads on a frozen {config['encoder']} encoder, automatic "
            "step labels. Absolute accuracies are not comparable across those settings; the orderings are, and each "
            "is tested with its paired difference:",
            anchor_table(record),
            anchor_reading(record)]),
        Section("The checker's reach", [reach_table(record)]),
        Section("Training", [training_table(record)]),
        Section("Timing", [f"- total: {number(record['timing']['total_seconds'], 1)} s on "
                           f"{record['timing']['cpu']} ({record['timing']['cores']} cores), embeddings from the cache "
                           "where present."]),
    ]
    return Report(f"Process vs outcome rewards on {config['candidates']}: best-of-{pool_size(record)} selection",
                  sections, settings=config)
