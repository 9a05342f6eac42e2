"""`rewardlab steps`: process (step) rewards for reasoning — label steps, train a PRM, score, select, compare on GSM8K."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rewardlab.cli.console import out, print_table, progress_bar, progress_bars, user_errors
from rewardlab.cli.options import (
    DATA_OPTIONS,
    FROM_CONFIG,
    AllowExternalEncoderOpt,
    CacheDir,
    CandidatesArg,
    DataArg,
    DeviceOpt,
    EncoderOpt,
    ExcludeOpt,
    FeaturesOpt,
    LimitPromptsOpt,
    ModelArg,
    Quiet,
    SeedOpt,
    config_defaults,
    with_options,
)
from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.errors import ModelError
from rewardlab.rewards.step_config import StepModelConfig

steps_app = typer.Typer(no_args_is_help=True, help=__doc__)
#: `steps eval` runs a study (`rewardlab.studies.prm`), imported only when it runs: its options left out take the
#: study's defaults (PRMStudyConfig: the README's run)
STUDY_DEFAULT = "Default: the study's."

SplitOpt = Annotated[str, typer.Option(help="Cut solutions into steps by 'line' (non-blank lines, as the annotation "
                                            "service shows them) or 'sentence'.")]
AggregateStepsOpt = Annotated[str, typer.Option(help="Fold step probabilities into one score: min, product, last or "
                                                     "mean.")]


@steps_app.command("label")
@with_options(DATA_OPTIONS)
def label(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Feedback folder to write (Parquet, lossless): the data plus "
                                                        "its step labels.")],
    split: SplitOpt = "line",
    use_outcome: Annotated[bool, typer.Option(help="Also label from each solution's correctness: a correct "
                                                   "solution's steps good, a wrong one's last step bad when the "
                                                   "check found nothing.")] = False,
    **data_options: Any,
) -> None:
    """Label the steps of every response automatically by re-computing its arithmetic (a op b = c, <<a*b=c>>): the
    first wrong step gets 0, checked steps before it 1, later steps nothing. This checks computation, not
    reasoning: a step that computes the wrong thing correctly passes."""
    from rewardlab.cli.pipeline import load_data
    from rewardlab.data.parquet import write_parquet
    from rewardlab.data.step_labels import label_steps

    with user_errors():
        dataset, stats = label_steps(load_data(data, **data_options), split, use_outcome)
        write_parquet(dataset, out_dir)
        flagged = stats.flagged
        out.print(f"{stats.solutions} solutions, {stats.steps} steps ({split}): {stats.checked_steps} checked "
                  f"({stats.statements} statements, {stats.wrong_statements} wrong); first-error flags in "
                  f"{flagged['correct']} of {stats.solutions_by_outcome['correct']} correct and {flagged['incorrect']} "
                  f"of {stats.solutions_by_outcome['incorrect']} incorrect solutions; {len(dataset.step_labels)} step "
                  f"labels → {out_dir}", highlight=False)


@steps_app.command("train")
@config_defaults(StepModelConfig, head="kind")
@with_options(DATA_OPTIONS)
def train(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Step reward model directory to write.")],
    head: Annotated[str, typer.Option(help="A head kind that learns from labels (outcome-mlp, outcome-logistic, "
                                           "outcome-lgbm).")] = FROM_CONFIG,
    encoder: EncoderOpt = FROM_CONFIG,
    features: FeaturesOpt = FROM_CONFIG,
    split: SplitOpt = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model directory at --out.")] = False,
    cache_dir: CacheDir = None,
    device: DeviceOpt = DEFAULT_DEVICE,
    quiet: Quiet = False,
    **data_options: Any,
) -> None:
    """Train a process reward model on the step labels of DATA (from `steps label` or the annotation service):
    one example per labelled step, the question with the solution up to that step."""
    from rewardlab.cli.pipeline import load_data

    with user_errors():
        if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
            raise ModelError(f"{out_dir} already exists; pass --overwrite to replace it, or choose another --out")
        train_step_model(load_data(data, **data_options), out_dir, head, encoder, features, split, seed, cache_dir,
                         quiet, device)


def train_step_model(dataset: Any, out_dir: Path, head: str, encoder: str, features: str, split: str, seed: int,
                     cache_dir: Path | None, quiet: bool, device: str | None = None) -> None:
    """Fit, save and report a process reward model on the step labels of ``dataset`` (`steps train`, and `train` on
    step labels); ``device``: where the encoder runs and the head fits (None: the CPU)."""
    from rewardlab.embed import make_encoder
    from rewardlab.rewards.step_rewards import StepRewardModel

    model = StepRewardModel.create(head, encoder if device is None else make_encoder(encoder, device), features, split,
                                   seed=seed, cache_dir=cache_dir)
    with progress_bars(quiet) as bars:
        model.fit(dataset, on_progress=bars.bar(f"embedding prefixes ({encoder})"),
                  on_fit_progress=bars.bar(f"fitting {head}"), device=device)
    model.save(out_dir)
    info = model.train_info
    out.print(f"trained {head} on {info['step_examples']} step labels ({info['good_steps']} good) in "
              f"{info['fit_seconds']:.1f}s → {out_dir}", highlight=False)


@steps_app.command("score")
def score(
    model: ModelArg,
    prompt: Annotated[str, typer.Option(help="The question.")],
    response: Annotated[str, typer.Option(help="The solution (steps on separate lines, or sentences).")],
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
) -> None:
    """P(good) of each step of one solution, and each aggregation of them."""
    from rewardlab.optimize.step_selection import STEP_AGGREGATIONS, aggregate_steps
    from rewardlab.rewards.step_rewards import StepRewardModel

    with user_errors():
        prm = StepRewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
        probs = prm.step_probabilities([prompt], [response])[0]
        table = Table(title=f"step rewards ({prm.split} steps)", title_justify="left")
        for column in ("step", "P(good)", "text"):
            table.add_column(column)
        for i, (p, text) in enumerate(zip(probs, prm.steps(response))):
            table.add_row(str(i), f"{p:.3f}", text)
        print_table(table)
        out.print("  ".join(f"{how} {aggregate_steps(probs, how):.3f}" for how in STEP_AGGREGATIONS), highlight=False)


@steps_app.command("select")
def select(
    model: ModelArg,
    candidates: CandidatesArg,
    output: Annotated[Path, typer.Option(help="JSONL: one chosen solution per prompt, with its step rewards.")],
    aggregate_steps: AggregateStepsOpt = "min",
    limit: LimitPromptsOpt = None,
    exclude_sources: ExcludeOpt = "",
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    quiet: Quiet = False,
) -> None:
    """PRM-guided best-of-n: pick the solution whose aggregated step rewards are highest, per prompt (the same as
    `rewardlab select MODEL CANDIDATES --aggregate-steps HOW`)."""
    with user_errors():
        write_step_picks(model, candidates, output, aggregate_steps, limit, exclude_sources, cache_dir,
                         allow_external_encoder, quiet)


def write_step_picks(model: Path, candidates: str, output: Path, aggregate_steps: str, limit: int | None,
                     exclude_sources: str, cache_dir: Path | None, allow_external_encoder: bool, quiet: bool) -> None:
    """Load a step reward model, pick one solution per pool by aggregated step rewards, write them as JSONL."""
    from rewardlab.cli.best_of_n import load_sets, write_picks
    from rewardlab.data.candidates import pool_offsets
    from rewardlab.optimize.step_selection import check_aggregation, pick_by_steps
    from rewardlab.rewards.step_rewards import StepRewardModel

    check_aggregation(aggregate_steps)
    sets = load_sets(candidates, limit, exclude_sources)
    prm = StepRewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
    with progress_bar("embedding solution prefixes", quiet) as on_progress:
        flat = prm.step_probabilities([s.prompt for s in sets for _ in s.responses],
                                      [r for s in sets for r in s.responses], on_progress)
    starts = pool_offsets(sets)  # per solution, its step probabilities; sliced pool by pool
    picks = pick_by_steps(sets, [flat[a:b] for a, b in zip(starts[:-1], starts[1:])], aggregate_steps)
    write_picks(picks, output, f"steps: {aggregate_steps}")


@steps_app.command("eval")
def evaluate(
    candidates: Annotated[str, typer.Argument(help="Candidate pools with correctness gold (gsm8k, or a JSONL file).")]
    = "gsm8k",
    encoder: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} Encoder spec (see `rewardlab encoders`).")]
    = None,
    features: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} Feature mode (as `train --features`).")] = None,
    head: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} The head kind of the ORM and of the PRMs.")] = None,
    split: Annotated[str | None, typer.Option(help=f"{STUDY_DEFAULT} Steps by 'line' or 'sentence'.")] = None,
    test_size: Annotated[float | None, typer.Option(help=f"{STUDY_DEFAULT} Share of questions held out.")] = None,
    seed: Annotated[int | None, typer.Option(help=f"{STUDY_DEFAULT} Random seed.")] = None,
    limit: LimitPromptsOpt = None,
    record: Annotated[Path | None, typer.Option(help="Write the JSON record here.")] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Compare on held-out questions, as best-of-n accuracy with paired CIs by question: PRMs on automatic step
    labels (each aggregation) vs an ORM on outcome labels vs majority vote vs a random pick."""
    from rewardlab.data.candidates import load_candidates
    from rewardlab.studies.prm import LIGHTMAN_ANCHOR, PRMStudyConfig, compare_on_gsm8k, comparison_rows

    with user_errors():
        settings = {"encoder": encoder, "features": features, "head": head, "split": split, "test_size": test_size,
                    "seed": seed}
        given: dict[str, Any] = {name: value for name, value in settings.items() if value is not None}
        config = PRMStudyConfig(**given)
        result = compare_on_gsm8k(load_candidates(candidates, limit), config,
                                  None if cache_dir is None else str(cache_dir),
                                  log=lambda line: out.print(line, highlight=False))
        table = Table(title=f"best-of-n on {result.questions['test']} held-out questions (trained on "
                            f"{result.questions['train']}); accuracy = the pick is correct; 95% CIs by question, "
                            "differences paired", title_justify="left")
        for column in ("rule", "accuracy", "minus ORM", "minus majority vote"):
            table.add_column(column)
        for row in comparison_rows(result):
            table.add_row(*row)
        print_table(table)
        reach = result.labeller
        out.print(f"auto-labeller: {reach['checked_steps']} of {reach['steps']} steps checked; flags in correct "
                  f"solutions {reach['flag_rate_correct']['value']:.3f}, in incorrect "
                  f"{reach['flag_rate_incorrect']['value']:.3f} (computation only, not reasoning). Anchor, Lightman "
                  f"et al. best-of-1860 at GPT-4 scale: PRM {LIGHTMAN_ANCHOR['prm']} vs ORM {LIGHTMAN_ANCHOR['orm']} "
                  f"vs majority {LIGHTMAN_ANCHOR['majority']}", highlight=False)
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
            out.print(f"record: {record}", highlight=False)
