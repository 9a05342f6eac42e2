"""The reward-model card: an audit record (`rewardlab.audit.run`) laid out as a `Report` for the one renderer.

Works from the JSON record alone, so ``audit.json`` re-renders into the same card. The first section says in a few
lines what a reader must know before using the model (does it beat length, which probes it fails, where
over-optimization looms); every later section backs one of those lines with numbers, CIs and figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.audit.disclosure import DISCLOSURE_FIELDS, NOT_PROVIDED
from rewardlab.audit.figures import (
    best_of_n_figure,
    disagreement_figure,
    fixed_probes_figure,
    probes_figure,
    reliability_figure,
    score_distribution_figure,
)
from rewardlab.report import Callout, Report, Section, Table, difference, estimate, number

#: fewer held-out pairs than this and the card says its CIs are wide
FEW_PAIRS = 200
_MARKUP = re.compile(r"([\\`*_\[\]])")  # "|" is the table renderer's to escape


def literal(text: Any) -> str:
    """Text shown exactly as written inside a table cell, in Markdown and in HTML: markup characters escaped, line
    breaks shown as ↵ (a Markdown table row is one line). HTML escaping is the renderer's."""
    return _MARKUP.sub(r"\\\1", str(text).strip()).replace("\r\n", "\n").replace("\n", " ↵ ")


def _kv(rows: Sequence[tuple[str, Any]], caption: str | None = None) -> Table:
    return Table(["field", "value"], [[name, "—" if value in (None, "", []) else str(value)] for name, value in rows], caption)


def _head_params(config: Mapping[str, Any]) -> str:
    head = config.get("head") or {}
    return ", ".join(f"{k}={v}" for k, v in head.items() if not isinstance(v, dict)) or "—"


def _annotators(info: Mapping[str, Any] | None) -> str:
    if not info:
        return "no annotator ids in the data"
    text = f"{info['count']} annotators on {info['labelled_rows']} rows"
    agreement = info.get("agreement")
    if agreement and agreement.get("alpha"):
        text += f"; Krippendorff's α {estimate(agreement['alpha'])} over {agreement.get('items')} items"
    elif info.get("agreement_note"):
        text += f"; agreement not measured: {info['agreement_note']}"
    return text


def _size(summary: Mapping[str, Any] | None) -> str:
    if not summary:
        return "—"
    return ", ".join(f"{v:,} {k}" for k, v in summary.items() if v)


def card_section(record: Mapping[str, Any]) -> Section:
    model, config = record["model"], record["model"]["config"]
    encoder = config.get("encoder") or {}
    training, held_out = record["training_data"], record["held_out"]
    members = f", ensemble of {model['members']}" if model["members"] > 1 else ""
    trained = _kv([
        ("model", f"{literal(model['path'])} ({config.get('kind') or 'custom'}{members})"),
        ("encoder", f"{encoder.get('spec')} ({encoder.get('dim')}-d), fingerprint `{encoder.get('fingerprint')}`"),
        ("features", config.get("features")),
        ("head parameters", _head_params(config)),
        ("augmentation", config.get("augment") or "none"),
        ("annotator weights", config.get("annotator_weights") or "none"),
        ("training time", f"{number(training.get('fit_seconds'), 1)} s (fit, embeddings excluded)"
         if training.get("fit_seconds") is not None else None),
        ("saved", model.get("saved_at")),
        ("rewardlab version", f"{config.get('rewardlab_version')} (model), {record['rewardlab_version']} (audit)"),
    ], "What was trained")
    data_rows = []
    for label, data in (("trained on", training), ("audited on (held out)", held_out)):
        data_rows.append([label, literal(data.get("name")), f"`{data.get('fingerprint')}`", _size(data.get("summary")),
                          data.get("licence") or "not known", literal(_annotators(data.get("annotators")))])
    data_table = Table(["", "data", "fingerprint", "size", "licence", "annotators"], data_rows, "What it was trained on")
    disclosure = record.get("disclosure") or {}
    disclosure_table = Table(["question", "answer"], [[question, literal(disclosure.get(key, NOT_PROVIDED))]
                                        for key, question in DISCLOSURE_FIELDS.items()],
                             "Disclosure (after Casper et al. 2023, §6), as provided with --disclosure")
    blocks: list[Any] = [trained, data_table, disclosure_table]
    if all(v == NOT_PROVIDED for v in disclosure.values()) or not disclosure:
        blocks.append(Callout("No disclosure was provided: who gave the feedback, what they were told, and what the "
                              "model is for are unknown to a reader. Write them in a TOML file and pass "
                              "`--disclosure FILE`.", "note"))
    return Section("Card", blocks)


def at_a_glance(record: Mapping[str, Any]) -> Section:
    """The few lines a reader must see first, each backed by a later section."""
    blocks: list[Any] = []
    if record["held_out"].get("same_as_training"):
        blocks.append(Callout("The held-out data has the training data's fingerprint: every number on this card is "
                              "**in-sample** and overstates how the model does on new data. Audit on data the model "
                              "has not seen."))
    accuracy = record["accuracy"]
    metrics, audit = accuracy["metrics"], accuracy["length"]
    n = metrics["accuracy"]["n"]
    if n < FEW_PAIRS:
        blocks.append(Callout(f"Only {n} decided held-out pairs: the CIs below are wide.", "note"))
    beat = audit["accuracy_minus_length_only"]
    lines = [
        f"- **Accuracy** {estimate(metrics['accuracy'])} on {n} held-out pairs; a length-only model scores "
        f"{estimate(accuracy['length_controls']['length_only'])}; difference {difference(beat)} — "
        + ("beats length." if beat["ci_low"] > 0 else "**does not beat length** (CI includes or is below 0)."),
        f"- **Length-balanced accuracy** {estimate(audit['length_balanced_accuracy'])} (the mean of accuracy where the "
        "longer and where the shorter response was preferred; 0.5 is chance).",
        f"- **Calibration**: ECE {estimate(metrics['ece'])}, Brier {estimate(metrics['brier'])}.",
    ]
    probes = record["probes"]["perturbation"]
    failed = [p["name"] for p in probes if p["verdict"] == "fails"]
    lines.append(f"- **Perturbation probes**: fails {', '.join(failed)} of {len(probes)}." if failed else
                 f"- **Perturbation probes**: fails none of {len(probes)}.")
    fixed = record["probes"]["fixed"]
    if fixed.get("results"):
        failed_fixed = [r["bias"] for r in fixed["results"] if r["verdict"] == "fails"]
        lines.append(f"- **{literal(fixed['name'])}**: prefers the biased side on "
                     f"{', '.join(failed_fixed) if failed_fixed else 'no bias type'} (significantly).")
    risk = record["risk"]
    bon = risk.get("best_of_n")
    if bon and bon.get("gao_fit"):
        fit = bon["gao_fit"]
        if fit["alpha"] <= 0:
            shape = "has α ≤ 0: picking by this reward gains nothing over a random pick, even at small n."
        elif fit["peak_kl"] is None or fit["peak_kl"] == float("inf"):
            shape = "does not turn down: gold still rises at the largest n measured."
        elif fit["turns_down_within_range"]:
            shape = f"turns down at KL ≈ {number(fit['peak_kl'], 2)} nats, within the measured range: over-optimization shows."
        else:
            shape = f"turns down at KL ≈ {number(fit['peak_kl'], 2)} nats, beyond the measured range."
        at_max = bon["at_n"][str(bon["curve"]["n"][-1])]["oracle_gain_fraction"]
        lines.append(f"- **Best-of-n against gold**: {estimate(at_max)} of the oracle's gain recovered at n = "
                     f"{bon['curve']['n'][-1]}; the Gao fit {shape}")
    if risk.get("disagreement"):
        rises = risk["disagreement"]["rises_at_top"]
        lines.append("- **Ensemble disagreement** " + ("rises significantly at the top of the reward scale: "
                                                       "high-reward, high-uncertainty responses exist."
                                                       if rises else "does not rise significantly at the top."))
    if risk.get("tail"):
        tail = risk["tail"]
        lines.append(f"- **Top tail**: p99 at {number(tail['quantiles_sd'].get('p99'), 2)} SD (normal: 2.33), max at "
                     f"{number(tail['max_sd'], 2)} SD" + (" — heavy: read the top-rewarded responses." if tail["heavy"]
                                                          else "."))
    blocks.append("\n".join(lines))
    blocks.append("How to read this card: every number has its n and a 95% bootstrap CI over prompts; a probe or slice "
                  "\"fails\" only when its CI excludes chance. Differences in **bold** have CIs that exclude 0.")
    return Section("At a glance", blocks)


def accuracy_section(record: Mapping[str, Any]) -> Section:
    accuracy = record["accuracy"]
    metrics = Table(["metric", "estimate [95% CI]", "n"], [[name, estimate(e), str(e["n"])]
                                                          for name, e in accuracy["metrics"].items()],
                    "Held-out pairwise metrics (pairs labelled a tie are left out)")
    controls, audit = accuracy["length_controls"], accuracy["length"]
    rho = audit["spearman_reward_length"]
    length = Table(["", "estimate [95% CI]"], [
        ["prefer the longer response", estimate(controls["prefer_longer"])],
        ["prefer the shorter response", estimate(controls["prefer_shorter"])],
        ["length-only model (cross-fitted on these pairs)", estimate(controls["length_only"])],
        ["model − length-only (paired)", difference(audit["accuracy_minus_length_only"])],
        [f"model where the longer response won ({controls['pairs_longer_wins']} pairs)",
         estimate(audit["accuracy_longer_wins"])],
        [f"model where the shorter response won ({controls['pairs_shorter_wins']} pairs)",
         estimate(audit["accuracy_shorter_wins"])],
        ["length-balanced accuracy", estimate(audit["length_balanced_accuracy"])],
        [f"Spearman ρ(reward, characters) over {rho['n_responses']} responses", number(rho["value"])],
    ], "Length controls (lengths in characters)")
    return Section("Accuracy and calibration", [
        metrics, length, reliability_figure(accuracy["reliability"]),
        score_distribution_figure(accuracy["score_distribution"])])


def slices_section(record: Mapping[str, Any]) -> Section:
    blocks: list[Any] = ["Accuracy by slice of the held-out pairs; ⚠ marks slices with fewer than 30 pairs, whose "
                         "CIs are too wide to read much into."]
    for table in record["slices"]:
        rows = [[("⚠ " if row["small"] else "") + literal(row["label"]), str(row["n_pairs"]), str(row["n_prompts"]),
                 estimate(row["accuracy"])] for row in table["rows"]]
        blocks.append(Table(["slice", "pairs", "prompts", "accuracy [95% CI]"], rows,
                            f"{literal(table['name'])}: {literal(table['description'])}"))
    if not record["slices"]:
        blocks.append("The held-out data gives no slicing with more than one slice.")
    return Section("Slices", blocks)


def probes_section(record: Mapping[str, Any]) -> Section:
    probes = record["probes"]
    blocks: list[Any] = [
        "**Perturbation probes** change held-out responses in one known way and count how often the model scores the "
        "changed response higher. A *degraded* probe fails when the model prefers the worse response significantly "
        "more often than chance; a *neutral* one (same content) fails when its share differs significantly from 0.5. "
        "Whether a change is worse depends on the task: on harmlessness data a prepended refusal or a shorter answer "
        "may well be better. Read a failure as \"the model moves this way\", then judge whether it should."]
    rows = [[literal(p["name"]), literal(p["description"]), p["direction"], f"{p['n_probed']} ({p['n_skipped']})",
             estimate(p["perturbed_preferred"]), estimate(p["mean_score_change"]),
             f"**{p['verdict']}**" if p["verdict"] == "fails" else p["verdict"]] for p in probes["perturbation"]]
    blocks.append(Table(["probe", "what it does", "kind", "probed (skipped)", "perturbed preferred", "score change",
                         "verdict"], rows))
    if probes["perturbation"]:
        blocks.append(probes_figure(probes["perturbation"]))
    fixed = probes["fixed"]
    if fixed.get("results"):
        blocks.append(f"**Fixed probe set `{literal(fixed['name'])}`**: expert-built pairs whose worse side carries one "
                      "bias; fails when accuracy is significantly below 0.5.")
        blocks.append(Table(["bias type", "pairs", "accuracy [95% CI]", "verdict"],
                            [[literal(r["bias"]), str(r["n"]), estimate(r["accuracy"]),
                              f"**{r['verdict']}**" if r["verdict"] == "fails" else r["verdict"]]
                             for r in fixed["results"]]))
        blocks.append(fixed_probes_figure(fixed["results"]))
    elif fixed.get("note"):
        blocks.append(Callout(f"Fixed probe set not run: {literal(fixed['note'])}", "note"))
    return Section("Bias probes", blocks)


def risk_section(record: Mapping[str, Any]) -> Section:
    risk = record["risk"]
    blocks: list[Any] = []
    bon = risk.get("best_of_n")
    if bon:
        rules = bon["length_rules"]["n"]
        rows = []
        for n, row in bon["at_n"].items():
            if n == "all":
                continue
            rule = rules.get(n, {})
            delta = f"{difference(rule['gold_minus_better_rule'])} vs {rule['better_rule']}" if rule else "—"
            rows.append([n, estimate(row["gold"]), estimate(row["oracle"]), estimate(row["oracle_gain_fraction"]),
                         estimate(rule.get("longest")), estimate(rule.get("shortest")), delta])
        blocks.append(Table(["n", "gold of the pick", "oracle", "share of the oracle's gain", "pick longest",
                             "pick shortest", "pick − better length rule (paired)"], rows,
                            f"Best-of-n against gold on {bon['prompts']} prompts (pools of {bon['pool_sizes'][0]}–"
                            f"{bon['pool_sizes'][1]}), 95% CIs over prompts"))
        blocks.append(best_of_n_figure(bon))
    else:
        blocks.append("No candidate pools with gold were given (`--candidates`), so best-of-n against gold is not "
                      "shown; the signals below need no gold.")
    disagreement = risk.get("disagreement")
    if disagreement:
        blocks.append(f"Ensemble of {disagreement['members']}: the top reward decile's member spread minus the middle "
                      f"deciles' is {difference(disagreement['top_minus_middle_std'])} (paired by prompt).")
        blocks.append(disagreement_figure(disagreement))
    else:
        blocks.append("A single model has no member disagreement to read; train an ensemble (`--ensemble 5`) to see "
                      "where along the reward scale it is uncertain.")
    tail = risk.get("tail")
    if tail:
        rows = [[name, number(value, 2), number(tail["normal_sd"][name], 2)] for name, value in tail["quantiles_sd"].items()]
        rows.append(["max", number(tail["max_sd"], 2), "—"])
        blocks.append(Table(["quantile", "SD above the mean", "normal distribution"], rows,
                            f"Top tail of the rewards of {tail['n']} held-out responses (excess kurtosis "
                            f"{number(tail['excess_kurtosis'], 2)}; max − p99 = {number(tail['top_gap_sd'], 2)} SD)"))
    return Section("Over-optimization risk", blocks)


def examples_section(record: Mapping[str, Any]) -> Section:
    examples = record["examples"]
    blocks: list[Any] = []
    mistakes = examples["confident_mistakes"]
    blocks.append(Table(["prompt", "human-preferred", "rejected", "rewards (pref. / rej.)", "P(rejected wins)"],
                        [[literal(m["prompt"]), literal(m["preferred"]), literal(m["rejected"]),
                          f"{number(m['reward_preferred'])} / {number(m['reward_rejected'])}", number(m["p_rejected"])]
                         for m in mistakes],
                        f"The {len(mistakes)} most confident mistakes on held-out pairs"))
    failures = examples["probe_failures"]
    if failures:
        blocks.append(Table(["probe", "prompt", "original", "perturbed", "rewards (orig. / pert.)"],
                            [[f["probe"], literal(f["prompt"]), literal(f["original"]), literal(f["perturbed"]),
                              f"{number(f['score_original'])} / {number(f['score_perturbed'])}"] for f in failures],
                            f"The {len(failures)} largest probe failures (the perturbed response scored higher)"))
    top = examples["top_rewarded"]
    blocks.append(Table(["prompt", "response", "reward (SD above mean)", "characters"],
                        [[literal(t["prompt"]), literal(t["response"]),
                          f"{number(t['reward'])} ({number(t['reward_sd'], 2)})", str(t["characters"])] for t in top],
                        "The highest-rewarded held-out responses: what optimizing this reward produces more of"))
    return Section("Examples", blocks)


def build_card(record: Mapping[str, Any]) -> Report:
    """The card of one audit record."""
    name = record["model"]["path"].rstrip("/").split("/")[-1] or record["model"]["path"]
    return Report(
        title=f"Reward-model card: {name} on {record['held_out']['name']}",
        sections=[at_a_glance(record), card_section(record), accuracy_section(record), slices_section(record),
                  probes_section(record), risk_section(record), examples_section(record)],
        settings={"audit": record["settings"], "created": record["created"]},
    )
