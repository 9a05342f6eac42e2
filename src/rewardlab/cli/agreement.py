"""`rewardlab agreement`: inter-annotator agreement on labels collected anywhere, and between two label sources."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from rewardlab.cli.console import out, user_errors
from rewardlab.cli.options import SeedOpt, format_estimate
from rewardlab.errors import RewardlabError

LabelMapOpt = Annotated[str | None, typer.Option(
    "--map", help="Label columns: item=COL,annotator=COL,label=COL[,order=COL] (one row per item and annotator) or "
                  "item=COL,annotators=COL+COL+...[,order=COL] (one column per annotator; annotators=* for every "
                  "other column). order names the response shown on the left (a/b, 0/1, ab/ba, [0,1]/[1,0]). "
                  "Without --map, FILE is read as feedback (a rewardlab dataset such as an `annotate export` or a "
                  "`judge` output, a dataset name, a feedback file).")]


def _fmt(entry: dict[str, Any] | None, undefined: str = "—") -> str:
    return undefined if not entry or entry.get("value") is None else f"{format_estimate(entry)} (n={entry['n']})"


def _print_stats(result: dict[str, Any], name: str) -> None:
    out.print(f"{name} ({result['task_type']}): {result['labels']} labels on {result['items_labelled']} items from "
              f"{len(result['per_annotator'])} annotators", highlight=False)
    print_agreement_stats(result)


def print_agreement_stats(result: dict[str, Any]) -> None:
    """α, κ, position bias, ties and per-annotator agreement of an `agreement_stats` result (JSON-safe), as both
    `rewardlab agreement` and `rewardlab annotate stats` print them."""
    # α and κ are NaN (null in JSON) when every label on the shared items has one value: chance agreement is 1
    one_value = "undefined: every label on items labelled twice has the same value (no disagreement to measure)"
    agreement = result.get("agreement")
    if agreement:
        out.print(f"Krippendorff's α ({agreement['alpha_level']}): {_fmt(agreement['alpha'], one_value)}", highlight=False)
        if "alpha_nominal" in agreement:
            out.print(f"Krippendorff's α (nominal): {_fmt(agreement['alpha_nominal'], one_value)}", highlight=False)
        out.print(f"Fleiss' κ: {_fmt(agreement.get('fleiss_kappa'), one_value)}", highlight=False)
    elif "agreement_error" in result:
        out.print(f"agreement: {result['agreement_error']}", highlight=False)
    if "position_bias_left_wins" in result:
        out.print(f"left response preferred: {_fmt(result['position_bias_left_wins'])}", highlight=False)
    if "ties" in result:
        out.print(f"ties: {result['ties']}", highlight=False)
    for who, entry in result["per_annotator"].items():
        out.print(f"  {who}: {entry['labels']} labels, agreement with others' majority "
                  f"{_fmt(entry.get('agreement_with_others'))}", highlight=False)


def _print_comparison(result: dict[str, Any], ours: str, theirs: str) -> None:
    out.print(f"{ours} against {theirs}: {result['items_shared']} shared items ({result['items_ours']} and "
              f"{result['items_theirs']} in all; {result['no_majority']} without a clear majority on one side)",
              highlight=False)
    out.print(f"same consensus label: {_fmt(result['agreement'])}", highlight=False)
    if "alpha" in result:
        out.print(f"Krippendorff's α, the two sources as two coders: "
                  f"{_fmt(result['alpha'], 'undefined (one value only)')}", highlight=False)
    elif "alpha_error" in result:
        out.print(f"Krippendorff's α: {result['alpha_error']}", highlight=False)
    for who, entry in result["per_annotator"].items():
        out.print(f"  {who}: agreement with {theirs}'s consensus {_fmt(entry)}", highlight=False)


def agreement(
    file: Annotated[str, typer.Argument(help="Labels: a JSONL/CSV/TSV/Parquet/JSON file with --map, or feedback.")],
    map: LabelMapOpt = None,
    level: Annotated[str | None, typer.Option(help="nominal, ordinal or interval (default: ordinal for numbers and "
                                                   "a/b/tie, as the annotation service; nominal for categories).")]
    = None,
    feedback: Annotated[str | None, typer.Option(help="Feedback input: which table (comparisons, rankings, ratings, "
                                                      "labels, step_labels) when it has several.")] = None,
    against: Annotated[str | None, typer.Option(help="A second label source (e.g. an AI judge's output against "
                                                     "human labels): consensus labels compared item by item.")] = None,
    against_map: Annotated[str | None, typer.Option(help="--map for --against (default: the same as --map).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples over items for the CIs.")] = 1000,
    seed: SeedOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    reliability: Annotated[str | None, typer.Option(help="Also estimate each annotator's reliability from the "
                                                         "comparisons several annotators labelled: dawid-skene "
                                                         "(one-coin EM) or agreement, with bootstrap CIs and the "
                                                         "pair weights `train --annotator-weights` would use "
                                                         "(feedback input, not --map).")] = None,
) -> None:
    """Krippendorff's α, Fleiss' κ (bootstrap CIs over items), each annotator's agreement with the others'
    majority, position bias; with --against, agreement between two label sources; with --reliability, each
    annotator's estimated reliability beside them."""
    from rewardlab.collect.annotation_stats import compare_labels, json_safe, label_stats, read_labels

    with user_errors():
        if reliability is not None and map:
            raise RewardlabError("--reliability reads comparisons from feedback input; leave out --map")
        labels = read_labels(file, map, level, feedback)
        result: dict[str, Any] = {"source": file, **label_stats(labels, resamples, seed)}
        if reliability is not None:
            from rewardlab.data.source import load_source
            from rewardlab.rewards.annotator_quality import estimate_annotator_quality

            quality = estimate_annotator_quality(load_source(file), reliability, seed=seed)
            result["reliability"] = quality.as_dict()
        if against is not None:
            other = read_labels(against, against_map if against_map is not None else map, level, feedback)
            result["against"] = {"source": against, **compare_labels(labels, other, level, resamples, seed)}
        result = json_safe(result)
        if as_json:
            out.print_json(json.dumps(result))
            return
        _print_stats(result, file)
        if "reliability" in result:
            from rewardlab.cli.pipeline import print_annotator_quality

            print_annotator_quality(result["reliability"])
        if "against" in result:
            _print_comparison(result["against"], file, against or "")
