"""`rewardlab audit`: a reward-model card (held-out accuracy and calibration, slices, bias probes, over-optimization
risk, examples) written as one offline HTML page, Markdown and the JSON record behind them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardlab.audit.settings import AuditSettings
from rewardlab.cli.console import out, progress_bar, user_errors
from rewardlab.cli.options import (
    DATA_OPTIONS,
    FROM_CONFIG,
    AllowExternalEncoderOpt,
    CacheDir,
    Quiet,
    SeedOpt,
    config_defaults,
    split_list,
    with_options,
)
from rewardlab.errors import RewardlabError

RECORD_FILE = "audit.json"
HTML_FILE = "index.html"
FIXED_PROBES_DEFAULT = "evalbiasbench"


def _fixed_probe_set(spec: str) -> tuple[Any, str | None]:
    """(dataset or None, a note saying why not) for ``--fixed-probes``: a registered name, a file, or '' for none."""
    from rewardlab.data.evalbiasbench import read_evalbiasbench
    from rewardlab.data.registry import REGISTRY

    if not spec:
        return None, "turned off (--fixed-probes '')"
    if spec in REGISTRY:
        entry = REGISTRY[spec]
        if not entry.available():
            if spec != FIXED_PROBES_DEFAULT:  # asked for by name: a missing file is an error
                return entry.load(), None
            return None, f"{spec} not found under the shared data folder ({entry.path()}); set REWARDLAB_DATA_DIR"
        return entry.load(), None
    return read_evalbiasbench(spec), None


@config_defaults(AuditSettings, examples="n_examples")
@with_options(DATA_OPTIONS)
def audit(
    models: Annotated[list[Path], typer.Argument(help="A saved model directory; give two to compare them side by side "
                                                      "on the same data, with paired CIs.", show_default=False)],
    data: Annotated[str, typer.Option("--data", help="Held-out comparisons (a file or a dataset name) the model did "
                                                     "not train on.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for index.html, report.md, audit.json and figures/.")],
    candidates: Annotated[str | None, typer.Option(help="Candidate pools with gold (alpaca-eval, gsm8k or a candidate "
                                                        "JSONL) for best-of-n against gold along KL.")] = None,
    probes: Annotated[str | None, typer.Option(help="Perturbation probes, comma-separated (default: all of padding, "
                                                    "truncation, sycophancy, markdown-list, refusal, off-topic).")] = None,
    probe_items: Annotated[int, typer.Option(help="Held-out responses each probe perturbs.")] = FROM_CONFIG,
    fixed_probes: Annotated[str, typer.Option(help="A fixed probe set: a dataset name or an EvalBiasBench-format file; "
                                                   "'' for none.")] = FIXED_PROBES_DEFAULT,
    disclosure: Annotated[Path | None, typer.Option(help="A TOML/JSON file with the card's disclosure: feedback_source, "
                                                         "annotators, instructions, known_limits, intended_use, "
                                                         "out_of_scope_use, contact.")] = None,
    examples: Annotated[int, typer.Option("--examples", help="Examples per list on the card.")] = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    candidate_limit: Annotated[int | None, typer.Option(help="Use only the first N candidate pools.")] = None,
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    quiet: Quiet = False,
    **data_options: Any,
) -> None:
    """A reward-model card: held-out accuracy and calibration with CIs and length controls, slices, bias probes
    (perturbations of your own held-out data, and EvalBiasBench), over-optimization risk and examples — one offline
    HTML page (index.html) plus report.md and audit.json. Two models: side by side, paired."""
    from rewardlab.audit.card import build_card
    from rewardlab.audit.compare import build_comparison, compare_runs
    from rewardlab.audit.disclosure import read_disclosure
    from rewardlab.audit.run import run_audit
    from rewardlab.cli.best_of_n import load_sets
    from rewardlab.cli.pipeline import load_data
    from rewardlab.report import write_report
    from rewardlab.rewards.model import RewardModel

    with user_errors():
        if not 1 <= len(models) <= 2:
            raise RewardlabError(f"audit takes one model, or two to compare; got {len(models)}")
        if probe_items < 1 or examples < 0:
            raise RewardlabError("--probe-items must be at least 1 and --examples at least 0")
        settings = AuditSettings(probes=split_list(probes, str, "--probes") if probes else None,
                                 probe_items=probe_items, n_examples=examples, seed=seed)
        card_disclosure = read_disclosure(disclosure)
        dataset = load_data(data, **data_options)
        fixed_set, fixed_note = _fixed_probe_set(fixed_probes)
        sets = load_sets(candidates, candidate_limit, "") if candidates else None
        runs = []
        for model_dir in models:
            rm = RewardModel.load(model_dir, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
            out.print(f"auditing {model_dir} on {dataset.name} ({len(dataset.comparisons)} comparisons)", highlight=False)
            with progress_bar("embedding held-out responses", quiet) as on_progress:
                runs.append(run_audit(model_dir, rm, dataset, settings, candidate_sets=sets, fixed_probe_set=fixed_set,
                                      fixed_probe_note=fixed_note, disclosure=card_disclosure,
                                      on_step=None if quiet else lambda s: out.print(f"  · {s}", highlight=False),
                                      on_progress=on_progress))
        if len(runs) == 1:
            record = runs[0].record
            report = build_card(record)
        else:
            record = compare_runs(runs, settings)
            report = build_comparison(record)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / RECORD_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        markdown = write_report(report, out_dir, html=True, html_name=HTML_FILE)
        _print_summary(record)
        out.print(f"card: {out_dir / HTML_FILE} (open it in a browser; works offline)\n"
                  f"also: {markdown}, {out_dir / RECORD_FILE}", highlight=False)


def _print_summary(record: dict[str, Any]) -> None:
    """The card's first lines on the terminal, so a run says what it found without opening the page."""
    from rewardlab.report import estimate

    for audit in record.get("audits", [record]):
        accuracy, length = audit["accuracy"]["metrics"]["accuracy"], audit["accuracy"]["length"]
        failed = [p["name"] for p in audit["probes"]["perturbation"] if p["verdict"] == "fails"]
        out.print(f"{audit['model']['path']}: accuracy {estimate(accuracy)}, minus length-only "
                  f"{estimate(length['accuracy_minus_length_only'])}, length-balanced "
                  f"{estimate(length['length_balanced_accuracy'])}; probes failed: {', '.join(failed) or 'none'}",
                  highlight=False)
        if audit["held_out"].get("same_as_training"):
            out.print("warning: the held-out data is the training data (same fingerprint): the numbers are in-sample",
                      highlight=False, style="yellow")
