"""`rewardlab prompt-opt`: train a prompt reward model on logs, select prompts for new queries, regenerate the table.

`train` and `select` are one library call each (`rewardlab.optimize.prompt_opt`); `table` runs the Prompt-OIRL
study (`rewardlab.studies.prompt_oirl`), imported inside the command because no library module imports a study.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardlab.cli.console import console, out, progress_bar, user_errors
from rewardlab.cli.options import (
    FROM_CONFIG,
    AllowExternalEncoderOpt,
    EncoderOpt,
    Quiet,
    SeedOpt,
    config_defaults,
    split_list,
)
from rewardlab.data.prompt_logs import load_prompt_logs
from rewardlab.optimize.prompt_opt import train_prompt_model

prompt_opt_app = typer.Typer(no_args_is_help=True, help="Query-dependent prompt optimization (Prompt-OIRL).")

HeadOpt = Annotated[str, typer.Option(help="Prompt-model head: knn, mlp, logistic or lgbm.")]
LogsArg = Annotated[str, typer.Argument(help="gsm8k, svamp or mawps (Prompt-OIRL release), or a JSONL/CSV of "
                                             "query, prompt, correct[, split] rows.")]


@prompt_opt_app.command("train")
@config_defaults(train_prompt_model)
def train(
    logs: LogsArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    head: HeadOpt = FROM_CONFIG,
    tune: Annotated[bool, typer.Option(help="knn: choose neighbours / shrinkage / temperature by 5-fold CV on the "
                                            "training queries (folds by question), as the docs' table does, and "
                                            "fall back to the best single prompt unless selection beats it by > 1 s.e.")]
    = FROM_CONFIG,
    encoder: EncoderOpt = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    quiet: Quiet = False,
) -> None:
    """Fit P(correct | query, prompt) on the training rows of the logs (every prompt with labels there)."""
    with user_errors():
        data = load_prompt_logs(logs)
        with progress_bar("embedding", quiet) as on_progress:
            model = train_prompt_model(data, head=head, tune=tune, encoder=encoder, seed=seed, on_progress=on_progress)
        model.save(out_dir)
        tuned = model.fit_log.get("knn_tuning")
        settings = ("" if not tuned else "; query-agnostic: the best single prompt for every query"
                    if tuned["query_agnostic"] else
                    f"; tuned k={tuned['neighbours']}, w={tuned['prior_weight']}, T={tuned['similarity_temperature']}")
        out.print(f"prompt model ({head}) on {model.train_info['rows']} queries × {len(model.known_prompts)} prompts → "
                  f"{out_dir}{settings}", highlight=False)
        if tuned:
            gain = tuned["cv_success"] - tuned["best_prompt_cv_success"]
            out.print(f"cross-validated success on training queries: per-query selection {tuned['cv_success']:.3f}, "
                      f"best single prompt {tuned['best_prompt_cv_success']:.3f} (gain {gain:+.3f} ± "
                      f"{tuned['cv_gain_se']:.3f} s.e.)", highlight=False)
            if tuned["query_agnostic"]:
                console.print("[yellow]warning:[/] no query-dependent signal in these logs (the cross-validated "
                              "gain is within one standard error), so the model picks the best single prompt for "
                              "every query", highlight=False)


@prompt_opt_app.command("select")
def select(
    model_dir: Annotated[Path, typer.Argument(help="A model directory from `prompt-opt train`.")],
    queries: Annotated[Path, typer.Option(help="A .txt (one query per line) or a record file with --field.")],
    output: Annotated[Path, typer.Option(help="JSONL: query, chosen prompt, predicted P(correct).")],
    field: str = "query",
    prompts: Annotated[Path | None, typer.Option(help="Candidate prompts (.txt lines); default: the training prompts "
                                                      "and every other prompt in the logs.")] = None,
    only_trained: Annotated[bool, typer.Option(help="Choose among the trained prompts only.")] = False,
    allow_external_encoder: AllowExternalEncoderOpt = False,
) -> None:
    """Pick a prompt for each new query without calling the LLM."""
    from rewardlab.data.records import read_texts
    from rewardlab.optimize.prompt_opt import select_prompts_for_queries
    from rewardlab.optimize.prompts import PromptRewardModel

    with user_errors():
        model = PromptRewardModel.load(model_dir, allow_external_encoder=allow_external_encoder)
        picks = select_prompts_for_queries(model, read_texts(queries, field), read_texts(prompts) if prompts else None,
                                           only_trained=only_trained)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", encoding="utf-8") as f:
            for row in picks:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.print(f"{len(picks)} queries → {output}", highlight=False)


@prompt_opt_app.command("table")
def table(
    out_dir: Annotated[Path, typer.Option("--out", help="Where table.md and results.json go.")] = Path("docs/prompt-oirl"),
    datasets: Annotated[str | None, typer.Option(help="Comma-separated (default: gsm8k, svamp and mawps).")] = None,
    head: Annotated[str | None, typer.Option(help="Prompt-model head: knn, mlp, logistic or lgbm (default knn).")] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder spec (see `rewardlab encoders`); default: the "
                                                     "study's.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the study's).")] = None,
    quiet: Quiet = False,
) -> None:
    """Regenerate the paper-vs-rewardlab comparison: every dataset, both splits, every k and subset."""
    from rewardlab.report import write_report
    from rewardlab.studies.prompt_oirl import OirlConfig, build_report, run_table

    with user_errors():
        given: dict[str, Any] = {"datasets": None if datasets is None else split_list(datasets, str, "--datasets"), "head": head,
                 "encoder": encoder, "seed": seed}
        config = OirlConfig(**{k: v for k, v in given.items() if v is not None})
        with progress_bar("subset models", quiet) as on_progress:
            record = run_table(config, lambda _, done, total: on_progress(done, total))
        path = write_report(build_report(record), out_dir, record)
        out.print(f"table: {path} ({record['seconds']:.0f}s)", highlight=False)
