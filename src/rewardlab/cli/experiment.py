"""`rewardlab experiment`: reproducible studies that write a report (bon-noise, demo-reward)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rewardlab.cli.console import console, out, progress_bars, user_errors
from rewardlab.cli.options import EncoderOpt, LimitPromptsOpt, Quiet, SeedOpt, format_estimate, split_list
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import DataError, RewardlabError

experiment_app = typer.Typer(no_args_is_help=True, help="Reproducible studies that write a report.")


def bon_noise(
    ctx: typer.Context,
    candidates: Annotated[str, typer.Option(help="Candidates with gold: alpaca-eval, gsm8k or a JSONL file.")] = "alpaca-eval",
    config: Annotated[Path | None, typer.Option(help="JSON file of study settings (the keys of results.json's config); "
                                                     "command-line options given explicitly win.")] = None,
    betas: Annotated[str, typer.Option(help="Annotator rationalities β.")] = "0.5,1,3,10",
    budgets: Annotated[str, typer.Option(help="Annotation budgets (pairs).")] = "1000,5000,20000",
    pairings: str = "same-prompt,cross-prompt",
    learners: str = "bt-mlp,clf-mlp,clf-lgbm",
    seeds: int = 3,
    ensemble_members: int = 5,
    ensemble_learners: str = "bt-mlp,clf-mlp",
    ensemble_budget: int = 5000,
    lam: Annotated[float, typer.Option(help="λ of the mean − λ·std aggregate.")] = 1.0,
    limit_prompts: LimitPromptsOpt = None,
    exclude_sources: Annotated[str, typer.Option(help="Candidate sources to leave out ('' keeps all).")] = "NullModel",
    encoder: EncoderOpt = DEFAULT_ENCODER,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report directory (default: runs/<time>-bon-noise).")] = None,
    quiet: Quiet = False,
) -> None:
    """The BT-vs-classification noise study: simulated labels × learners × seeds, best-of-n against gold, report."""
    from rewardlab.evaluate.record import new_run_dir
    from rewardlab.experiments.bon_noise import BonNoiseConfig, run_study
    from rewardlab.report.bon_noise import write_report

    with user_errors():
        settings: dict[str, Any] = {
            "candidates": candidates, "betas": split_list(betas, float, "--betas"),
            "budgets": split_list(budgets, int, "--budgets"), "pairings": split_list(pairings, str, "--pairings"),
            "learners": split_list(learners, str, "--learners"), "seeds": seeds, "ensemble_members": ensemble_members,
            "ensemble_learners": split_list(ensemble_learners, str, "--ensemble-learners"),
            "ensemble_budget": ensemble_budget, "lam": lam, "limit_prompts": limit_prompts, "encoder": encoder,
            "exclude_sources": split_list(exclude_sources, str, "--exclude-sources"),
        }
        if config is not None:
            settings = _merge_config_file(config, settings, ctx)
        try:
            study = BonNoiseConfig(**settings)
        except (TypeError, ValueError) as exc:
            raise RewardlabError(f"bad study settings: {exc}") from None
        with progress_bars(quiet) as bars:
            on_embed = bars.bar("embedding")
            on_fit = bars.bar("training")
            record = run_study(study, on_step=lambda _, done, total: on_fit(done, total), on_embed_progress=on_embed)
        target = out_dir or new_run_dir("runs", "bon-noise")
        report = write_report(record, target)
        for finding in record["findings"]:
            console.print(f"[bold]{finding['verdict']}[/]: {finding['claim']} — {finding['evidence']}", highlight=False)
        out.print(f"report: {report} ({record['timing']['total_seconds']:.0f}s)", highlight=False)


def _merge_config_file(path: Path, settings: dict[str, Any], ctx: typer.Context) -> dict[str, Any]:
    """Settings from a JSON file, overridden by options the user typed (the context knows which ones those are)."""
    from rewardlab.experiments.bon_noise import BonNoiseConfig

    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read study settings: {exc}", source=path) from None
    if not isinstance(loaded, dict):
        raise DataError("expected a JSON object of settings", source=path)
    known = {f.name for f in fields(BonNoiseConfig)}
    unknown = sorted(set(loaded) - known)
    if unknown:
        raise DataError(f"unknown settings {unknown}; known: {', '.join(sorted(known))}", source=path)
    typed = {name for name in settings if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}
    merged = {k: v for k, v in settings.items() if k in typed or k not in loaded}
    merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in loaded.items() if k not in typed})
    return merged


def demo_reward(
    train_prompts: Annotated[int, typer.Option(help="Training prompts (their chosen responses are the demonstrations).")]
    = 500,
    test_size: Annotated[float, typer.Option(help="Share of prompts held out.")] = 0.5,
    data: Annotated[str, typer.Option(help="An HH-RLHF file (default: the shared harmless-base set).")] = "",
    model: Annotated[str | None, typer.Option(help="Policy: a model folder or .gguf (default SmolLM2-135M).")] = None,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    sft_steps: int = 60,
    sft_layers: int = 8,
    learner: Annotated[str, typer.Option(help="The discriminator head: outcome-logistic, outcome-mlp or outcome-lgbm.")]
    = "outcome-logistic",
    bt_learner: Annotated[str, typer.Option(help="The pairwise reference.")] = "bt-mlp",
    encoder: EncoderOpt = DEFAULT_ENCODER,
    seed: SeedOpt = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for samples, the fine-tuned policy and results.")]
    = Path("runs/demo-reward"),
    quiet: Quiet = False,
) -> None:
    """Demonstration-only rewards vs Bradley-Terry on HH-RLHF harmless: held-out pairwise accuracy with CIs."""
    from rewardlab.experiments.demo_reward import DemoRewardConfig, run_study
    from rewardlab.optimize.sft import SftConfig

    with user_errors():
        config = DemoRewardConfig(data=data, train_prompts=train_prompts, test_size=test_size, model=model,
                                  max_new_tokens=max_new_tokens, temperature=temperature,
                                  sft=SftConfig(steps=sft_steps, trainable_layers=sft_layers, seed=seed),
                                  learner=learner, bt_learner=bt_learner, encoder=encoder, seed=seed)
        with progress_bars(quiet) as bars:
            record = run_study(config, out_dir, on_stage=None if quiet else lambda s: console.print(s, highlight=False),
                               on_progress=bars.bar)
        table = Table(title="held-out pairwise accuracy (95% CI, prompts resampled)", title_justify="left")
        for column in ("reward", "accuracy", "minus BT (paired)"):
            table.add_column(column)
        for name, estimate in record["accuracy"].items():
            diff = record["minus_bt"].get(name)
            table.add_row(name, format_estimate(estimate), format_estimate(diff))
        out.print(table)
        out.print(f"results: {out_dir / 'results.md'} ({record['timing_seconds']['total']:.0f}s)", highlight=False)
