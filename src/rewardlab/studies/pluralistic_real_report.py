"""The real-data sections of the pluralistic report (WMT23 MQM raters, ConvAbuse annotators), from the record alone."""

from __future__ import annotations

import re
from typing import Any

from rewardlab.report import Figure, Section, Table, difference, estimate, number

LEARNER_NAMES = {"bt-mlp": "unimodal BT-MLP", "bt-mlp-annotator": "conditioned head (bt-mlp-annotator)",
                 "bt-mixture": "EM mixture (bt-mixture)", "bt-mlp+dawid-skene": "BT-MLP, Dawid–Skene weights",
                 "bt-mlp+agreement": "BT-MLP, agreement weights"}
STATISTICS = {"pooled": "all held-out pairs", "macro": "macro (mean over raters)", "worst": "worst rater"}
METRICS = {"exact": "exact level", "abusive": "abusive (≤ −1) or not", "log_likelihood": "log-likelihood"}
_CHECKS = re.compile(r"(\S+:\S+) (\d+)/(\d+)")


def _name(learner: str) -> str:
    return LEARNER_NAMES.get(learner, learner)


def wmt_table(wmt: dict[str, Any]) -> Table:
    """Each learner vs unimodal BT on each rater's held-out labels: pooled, macro, worst, paired."""
    rows = []
    for learner, stats in wmt["against_unimodal"].items():
        for key, label in STATISTICS.items():
            s = stats[key]
            rows.append([_name(learner), label, estimate(s["model"]), estimate(s["baseline"]),
                         difference(s["difference"]), str(s["difference"]["n"])])
    return Table(["learner", "over", "accuracy [95% CI]", "unimodal BT [95% CI]", "difference (paired)", "n"], rows)


def attention_checks(notes: list[str]) -> dict[str, tuple[int, int]]:
    """Rater -> (found, missed) attention checks, from the reader's note."""
    for note in notes:
        if note.startswith("attention checks"):
            return {rater: (int(found), int(missed)) for rater, found, missed in _CHECKS.findall(note)}
    return {}


def rater_table(wmt: dict[str, Any]) -> Table:
    """Per rater: held-out accuracy of each learner, the estimated reliabilities and the attention checks."""
    learners = wmt["learners"]
    per_rater = wmt["per_rater"]
    reliability = wmt.get("reliability", {})
    checks = attention_checks(wmt["data"]["notes"])
    raters = sorted(per_rater[learners[0]], key=lambda r: (r.split(":")[0], len(r), r))
    rows = []
    for rater in raters:
        row = [rater, str(per_rater[learners[0]][rater]["n"])]
        row += [estimate(per_rater[learner].get(rater)) for learner in learners]
        row += [estimate(reliability.get(method, {}).get("annotators", {}).get(rater))
                for method in ("dawid-skene", "agreement")]
        found, missed = checks.get(rater, (0, 0))
        row.append(f"{found}/{missed}" if found + missed else "—")
        rows.append(row)
    return Table(["rater", "held-out pairs", *(_name(lr) for lr in learners), "Dawid–Skene reliability [95% CI]",
                  "agreement reliability [95% CI]", "attention checks found/missed"], rows)


def wmt_calibration_table(wmt: dict[str, Any]) -> Table:
    rows = [[_name(learner), estimate(s["model"]), estimate(s["baseline"]), difference(s["difference"]),
             str(s["difference"]["n"])] for learner, s in wmt["split_calibration"].items()]
    return Table(["learner", "split error [95% CI]", "unimodal BT [95% CI]", "difference (paired)", "pairs"], rows)


def convabuse_table(abuse: dict[str, Any]) -> Table:
    rows = []
    for metric, label in METRICS.items():
        for key, over in STATISTICS.items():
            s = abuse["metrics"][metric][key]
            over = over.replace("rater", "annotator").replace("pairs", "ratings")
            rows.append([label, over, estimate(s["model"]), estimate(s["baseline"]),
                         difference(s["difference"]), str(s["difference"]["n"])])
    if abuse.get("calibration"):
        s = abuse["calibration"]
        rows.append(["distribution vs observed split (total variation, lower is better)", "held-out turns rated by "
                     "≥ 2 annotators", estimate(s["model"]), estimate(s["baseline"]), difference(s["difference"]),
                     str(s["difference"]["n"])])
    return Table(["measure", "over", "with annotators [95% CI]", "pooled, no annotator [95% CI]", "difference (paired)",
                  "n"], rows)


def thresholds_table(abuse: dict[str, Any]) -> Table:
    levels = abuse["data"]["levels"]
    cuts = [f"θ {number(levels[i], 0)}|{number(levels[i + 1], 0)}" for i in range(len(levels) - 1)]
    rows = [["population (pooled refit)", "—", number(abuse.get("population_scale", 1.0), 2),
             *(number(t, 2) for t in abuse["population_thresholds"])]]
    for annotator, fit in sorted(abuse["annotator_thresholds"].items(), key=lambda kv: (len(kv[0]), kv[0])):
        rows.append([annotator, str(fit["train_ratings"]), number(fit["scale"], 2),
                     *(number(t, 2) for t in fit["thresholds"])])
    return Table(["annotator", "training ratings", "scale s", *cuts], rows)


def real_sections(record: dict[str, Any]) -> list[Section]:
    """The WMT and ConvAbuse sections (whichever the record has)."""
    real, config = record.get("real", {}), record["config"]
    sections = []
    wmt = real.get("wmt")
    if wmt:
        d = wmt["data"]
        segments = config.get("wmt_segments")
        protocol = (
            f"- WMT23 side-by-side MQM (`wmt23-mqm`): {'the first ' + str(segments) if segments else 'all'} source "
            f"segments of each language pair (en→de, zh→en), {d['prompts']} prompts split by segment: "
            f"{d['train_prompts']} train ({d['train_comparisons']} per-rater comparisons), {d['test_prompts']} test "
            f"({d['test_comparisons']} comparisons, {d['test_decided']} decided: MQM ties left out); {d['raters']} "
            f"raters in the test part. Encoder {config['encoder']}, interaction features; "
            f"{config.get('real_seeds', 1)} seed(s), per-pair results averaged over seeds.\n"
            "- Each held-out comparison is scored against its own rater's label (fewer MQM points preferred). The "
            "annotator-aware heads score it with that rater's reward (`predict_for`). 95% CIs come from the cluster "
            f"bootstrap over test segments ({config['n_resamples']} resamples). Differences are paired with the "
            "unimodal BT-MLP on the same resamples; **bold**: the CI excludes 0.")
        blocks: list[Any] = [protocol, wmt_table(wmt), _wmt_reading(wmt, config["encoder"])]
        if wmt.get("mixture_k"):
            blocks.append(f"Mixture: K chosen by held-out likelihood = {', '.join(map(str, wmt['mixture_k']))}.")
        blocks += ["Per rater: held-out accuracy [95% CI] of each learner, the reliabilities the two quality "
                   "estimators give from the training labels, and the rater's attention checks (HOTW: errors "
                   "planted by the annotation tool, found / missed):", rater_table(wmt),
                   Figure("wmt-raters", "Held-out accuracy per WMT rater (95% CIs by segment): unimodal BT vs the "
                                        "annotator-aware heads", lambda plt: rater_figure(plt, wmt))]
        if wmt.get("split_calibration"):
            blocks += [f"Distribution: mean absolute error between the predicted P(a rater prefers a) and the raters' "
                       f"observed split (a tie counts ½) on the {d['split_pairs']} held-out pairs that two or more "
                       "raters compared; lower is better:", wmt_calibration_table(wmt)]
        sections.append(Section("Real data: do annotator-aware models predict each WMT rater better?", blocks))
    abuse = real.get("convabuse")
    if abuse:
        d = abuse["data"]
        protocol = (
            f"- ConvAbuse (`convabuse`): {d['ratings']} ratings of users' turns to chatbots (not assistant responses) "
            f"by {d['annotators']} annotators, ordinal levels {', '.join(number(v, 0) for v in d['levels'])} "
            f"(1 not abusive … −3 very strongly abusive). Split by conversation: {d['train_ratings']} training "
            f"ratings, {d['test_ratings']} held-out ratings from {d['test_conversations']} conversations.\n"
            f"- Without the annotator: `ordinal-mlp`'s reward with {abuse.get('control', 'its own thresholds')}, one "
            f"rating distribution per turn. With the annotator: {abuse['model']}. This is the offset/thresholds "
            "model on a shared trunk, not a trunk with an annotator embedding trained end to end.\n"
            "- Each held-out rating is scored against its own annotator's label. Pooled means over ratings, macro "
            "means over annotators, and worst is the worst annotator. 95% CIs come from the cluster bootstrap over "
            "held-out conversations, paired.")
        sections.append(Section("Real data: does knowing the annotator help predict ConvAbuse ratings?", [
            protocol, convabuse_table(abuse),
            "Fitted thresholds on the shared reward scale (a higher threshold below a level means the annotator "
            "needs a lower reward before choosing a more abusive level; s scales the shared reward):",
            thresholds_table(abuse)]))
    return sections


def _wmt_reading(wmt: dict[str, Any], encoder: str) -> str:
    """Whether the shared reward learned MQM at all: personalising a reward at chance cannot help anyone."""
    first = next(iter(wmt["against_unimodal"].values()))["pooled"]["baseline"]
    if first["ci_low"] > 0.5:
        return (f"Reading: unimodal BT predicts the raters' held-out labels above chance ({estimate(first)}), so "
                "there is a shared preference for a per-rater model to refine.")
    return (f"Reading: unimodal BT is at chance on the raters' held-out labels ({estimate(first)}): on {encoder} "
            "features of the source and translation, no learner here finds the MQM preference itself, so these rows "
            "cannot tell whether modelling raters helps. A stronger (multilingual) encoder is the next step.")


def rater_figure(plt: Any, wmt: dict[str, Any]) -> Any:
    """Per rater, accuracy with CIs: unimodal BT and each annotator-aware head, side by side."""
    learners = [lr for lr in wmt["learners"] if "+" not in lr]
    per_rater = wmt["per_rater"]
    raters = sorted(per_rater[learners[0]], key=lambda r: (r.split(":")[0], len(r), r))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(raters) + 2), 3.6))
    width = 0.8 / len(learners)
    for i, learner in enumerate(learners):
        xs = [j + (i - (len(learners) - 1) / 2) * width for j in range(len(raters))]
        est = [per_rater[learner][r] for r in raters]
        values = [e["value"] for e in est]
        errors = [[e["value"] - e["ci_low"] for e in est], [e["ci_high"] - e["value"] for e in est]]
        ax.errorbar(xs, values, yerr=errors, fmt="o", markersize=3, capsize=2, label=_name(learner).split(" (")[0])
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(raters)), raters, rotation=60, fontsize=7)
    ax.set_ylabel("held-out accuracy vs own label")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
