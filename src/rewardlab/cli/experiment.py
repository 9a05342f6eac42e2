"""`rewardlab experiment`: reproducible studies that write a report (bon-noise, demo-reward, rm-recipes,
pluralistic, prm).

The studies live in `rewardlab.studies`, which no library module imports; these commands import a study inside
their bodies, so loading the CLI never loads one. A study setting left out takes the study's own default (its
config dataclass), so each default exists in one place; every setting used is in the report's Settings table
and in results.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rewardlab.cli.console import console, out, progress_bars, user_errors
from rewardlab.cli.options import LimitPromptsOpt, Quiet, RayOpt, format_estimate, split_list

experiment_app = typer.Typer(no_args_is_help=True, help="Reproducible studies that write a report (options left out "
                                                        "take the study's defaults).")

Setting = Annotated[str | None, typer.Option(help="Comma-separated (default: the study's).")]
StudyEncoderOpt = Annotated[str | None, typer.Option("--encoder", help="Encoder spec (see `rewardlab encoders`); "
                                                                       "default: the study's.")]

StudyDeviceOpt = Annotated[str | None, typer.Option(
    "--device", help="Where the encoder runs and the torch heads fit: auto (a CUDA GPU when there is one, else the "
                     "CPU), cpu, cuda or cuda:N (default: the CPU; cpu gives the same numbers). LightGBM heads fit on "
                     "the CPU, and so do fits run as Ray tasks (--ray).")]

DemoRayOpt = Annotated[str | None, typer.Option(
    "--ray", metavar="ADDRESS",
    help="Embed the texts the reward models need on a Ray cluster ('local', 'auto' or HOST:PORT, as elsewhere), then "
         "fit and score the three reward models there as Ray tasks (same numbers). Sampling the policies and "
         "fine-tuning one stay on this machine: each is one model's work, not independent fits. Needs pip install "
         "'rewardlab[ray]'.")]


def _given(**settings: Any) -> dict[str, Any]:
    """The settings the user gave: None means "the study's default"."""
    return {name: value for name, value in settings.items() if value is not None}


def _listed(text: str | None, cast: Any, option: str) -> tuple[Any, ...] | None:
    return None if text is None else split_list(text, cast, option)


def bon_noise(
    candidates: Annotated[str | None, typer.Option(help="Candidates with gold: alpaca-eval, gsm8k or a JSONL file "
                                                        "(default alpaca-eval).")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of study settings (the keys of results.json's config); "
                                                     "command-line options given explicitly win.")] = None,
    betas: Annotated[str | None, typer.Option(help="Annotator rationalities β, comma-separated.")] = None,
    budgets: Annotated[str | None, typer.Option(help="Annotation budgets (pairs), comma-separated.")] = None,
    pairings: Setting = None,
    learners: Setting = None,
    seeds: int | None = None,
    ensemble_members: int | None = None,
    ensemble_learners: Setting = None,
    ensemble_budget: int | None = None,
    lam: Annotated[float | None, typer.Option(help="λ of the mean − λ·std aggregate.")] = None,
    limit_prompts: LimitPromptsOpt = None,
    exclude_sources: Annotated[str | None, typer.Option(help="Candidate sources to leave out ('' keeps all; "
                                                             "default NullModel).")] = None,
    encoder: StudyEncoderOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report directory (default: runs/<time>-bon-noise).")] = None,
    ray: RayOpt = None,
    device: StudyDeviceOpt = None,
    quiet: Quiet = False,
) -> None:
    """The BT-vs-classification noise study: simulated labels × learners × seeds, best-of-n against gold, report."""
    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.evaluate.record import new_run_dir
    from rewardlab.report import write_report
    from rewardlab.studies.bon_noise import make_config, run_study
    from rewardlab.studies.bon_noise_report import build_report
    from rewardlab.studies.device import study_device

    with user_errors():
        study = make_config(_given(
            candidates=candidates, betas=_listed(betas, float, "--betas"), budgets=_listed(budgets, int, "--budgets"),
            pairings=_listed(pairings, str, "--pairings"), learners=_listed(learners, str, "--learners"), seeds=seeds,
            ensemble_members=ensemble_members, ensemble_learners=_listed(ensemble_learners, str, "--ensemble-learners"),
            ensemble_budget=ensemble_budget, lam=lam, limit_prompts=limit_prompts, encoder=encoder,
            exclude_sources=_listed(exclude_sources, str, "--exclude-sources"), device=device), config)
        study_device(study.device)  # a GPU that is not here: one line, before Ray or the data
        with ray_connected(ray), progress_bars(quiet) as bars:
            on_embed = bars.bar("embedding")
            on_fit = bars.bar("training")
            record = run_study(study, on_step=lambda _, done, total: on_fit(done, total), on_embed_progress=on_embed,
                               ray=ray)
        report = write_report(build_report(record), out_dir or new_run_dir("runs", "bon-noise"), record)
        for finding in record["findings"]:
            console.print(f"[bold]{finding['verdict']}[/]: {finding['claim']} — {finding['evidence']}", highlight=False)
        out.print(f"report: {report} ({record['timing']['total_seconds']:.0f}s)", highlight=False)


def demo_reward(
    train_prompts: Annotated[int | None, typer.Option(help="Training prompts (their chosen responses are the "
                                                           "demonstrations; default 500).")] = None,
    test_size: Annotated[float | None, typer.Option(help="Share of prompts held out.")] = None,
    data: Annotated[str | None, typer.Option(help="An HH-RLHF file (default: the shared harmless-base set).")] = None,
    model: Annotated[str | None, typer.Option(help="Policy: a model folder or .gguf (default SmolLM2-135M).")] = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    sft_steps: Annotated[int | None, typer.Option(help="Fine-tuning steps on the demonstrations.")] = None,
    sft_layers: Annotated[int | None, typer.Option(help="Transformer blocks fine-tuned (the top ones).")] = None,
    learner: Annotated[str | None, typer.Option(help="The discriminator head: outcome-logistic, outcome-mlp or "
                                                     "outcome-lgbm.")] = None,
    bt_learner: Annotated[str | None, typer.Option(help="The pairwise reference.")] = None,
    encoder: StudyEncoderOpt = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the split, sampling and fine-tuning.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for samples, the fine-tuned policy and results.")]
    = Path("runs/demo-reward"),
    ray: DemoRayOpt = None,
    device: StudyDeviceOpt = None,
    quiet: Quiet = False,
) -> None:
    """Demonstration-only rewards vs Bradley-Terry on HH-RLHF harmless: held-out pairwise accuracy with CIs."""
    from dataclasses import replace

    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.report import write_report
    from rewardlab.studies.demo_reward import DemoRewardConfig, build_report, run_study
    from rewardlab.studies.device import study_device

    with user_errors():
        defaults = DemoRewardConfig()
        config = replace(defaults, **_given(
            data=data, train_prompts=train_prompts, test_size=test_size, model=model, max_new_tokens=max_new_tokens,
            temperature=temperature, learner=learner, bt_learner=bt_learner, encoder=encoder, seed=seed, device=device),
            sft=replace(defaults.sft, **_given(steps=sft_steps, trainable_layers=sft_layers, seed=seed)))
        study_device(config.device)  # a GPU that is not here: one line, before Ray or the data
        with ray_connected(ray), progress_bars(quiet) as bars:
            record = run_study(config, out_dir, on_stage=None if quiet else lambda s: console.print(s, highlight=False),
                               on_progress=bars.bar, ray=ray)
        path = write_report(build_report(record), out_dir, record)
        table = Table(title="held-out pairwise accuracy (95% CI, prompts resampled)", title_justify="left")
        for column in ("reward", "accuracy", "minus BT (paired)"):
            table.add_column(column)
        for name, estimate in record["accuracy"].items():
            table.add_row(name, format_estimate(estimate), format_estimate(record["minus_bt"].get(name)))
        out.print(table)
        out.print(f"results: {path} ({record['timing_seconds']['total']:.0f}s)", highlight=False)


@experiment_app.command("rm-recipes")
def rm_recipes(
    sets: Annotated[str | None, typer.Option(help="Training sets, comma-separated: registered names (`rewardlab "
                                                  "datasets`), alpaca-eval-judge (simulated), or feedback files.")] = None,
    recipes: Annotated[str | None, typer.Option(help="Recipes, comma-separated (interaction, joint, +debias, "
                                                     "+off-topic; default: the whole grid).")] = None,
    heads: Setting = None,
    encoder: StudyEncoderOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the splits, the simulated pairs and the fits.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N rows of each set (quick runs).")] = None,
    probe: Annotated[str | None, typer.Option(help="Bias probes: evalbiasbench, an EvalBiasBench-format file, or '' "
                                                   "for none.")] = None,
    alpaca_pairs: Annotated[int | None, typer.Option(help="Pairs of the simulated AlpacaEval set.")] = None,
    resamples: Annotated[int | None, typer.Option(help="Bootstrap resamples per CI.")] = None,
    speed_probe: Annotated[str | None, typer.Option(help="Encoders whose embedding rate is measured, comma-separated "
                                                         "('' for none).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: runs/<time>-rm-recipes).")] = None,
    ray: RayOpt = None,
    device: StudyDeviceOpt = None,
    quiet: Quiet = False,
) -> None:
    """Which reward-model recipe transfers across data sets (set × recipe × head, beside length controls)."""
    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.evaluate.record import new_run_dir
    from rewardlab.studies.device import study_device
    from rewardlab.studies.rm_recipes import make_config, run_study
    from rewardlab.studies.rm_recipes_report import write

    with user_errors():
        study = make_config(_given(
            sets=_listed(sets, str, "--sets"), recipes=_listed(recipes, str, "--recipes"),
            heads=_listed(heads, str, "--heads"), encoder=encoder, seed=seed, limit=limit, probe=probe,
            alpaca_pairs=alpaca_pairs, n_resamples=resamples, speed_probe=_listed(speed_probe, str, "--speed-probe"),
            device=device))
        study_device(study.device)  # a GPU that is not here: one line, before Ray or the data
        with ray_connected(ray), progress_bars(quiet) as bars:
            on_embed = bars.bar("embedding")
            on_fit = bars.bar("training (set × recipe × head)")
            record = run_study(study, on_step=lambda _, done, total: on_fit(done, total), on_embed_progress=on_embed,
                               ray=ray)
        path = write(record, out_dir or new_run_dir("runs", "rm-recipes"))
        chosen = record["selection"]["chosen"]
        table = Table(title="over cross-set transfers", title_justify="left")
        for column in ("recipe / head", "mean balanced", "min balanced", "mean Δ vs length-only", "Δ CI >0 / <0"):
            table.add_column(column)
        for r in record["summary"]:
            mark = " ←" if chosen and (r["recipe"], r["head"]) == (chosen["recipe"], chosen["head"]) else ""
            table.add_row(f"{r['recipe']} / {r['head']}{mark}", _num(r["mean_balanced"]), _num(r["min_balanced"]),
                          _num(r["mean_delta"]), f"{r['delta_above']} / {r['delta_below']}")
        out.print(table)
        if chosen:
            out.print(f"default: {chosen['recipe']} / {chosen['head']}", highlight=False)
        for target in record["targets"]:
            verdict = "n/a" if target["met"] is None else ("met" if target["met"] else "NOT met")
            out.print(f"{verdict}: {target['target']} — {target['evidence']}", highlight=False)
        t = record["timing"]
        out.print(f"report: {path} ({t['total_seconds']:.0f}s: embedding {t['embed_seconds']:.0f}s, fitting "
                  f"{t['fit_seconds']:.0f}s)", highlight=False)



@experiment_app.command("pluralistic")
def pluralistic(
    candidates: Annotated[str | None, typer.Option(help="Candidates with gold: alpaca-eval, gsm8k or a JSONL file "
                                                        "(default alpaca-eval).")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of study settings (the keys of results.json's config); "
                                                     "command-line options given explicitly win.")] = None,
    prompts: Annotated[int | None, typer.Option(help="Candidate pools used (default 300).")] = None,
    pairs: Annotated[int | None, typer.Option(help="Training pairs of the minority question.")] = None,
    minority_share: Annotated[float | None, typer.Option(help="Share of annotators in the minority (default 0.3).")] = None,
    disagree: Annotated[float | None, typer.Option(help="Share of prompts on which the minority's utility is −gold "
                                                        "(default 0.5).")] = None,
    careless_share: Annotated[float | None, typer.Option(help="Share of annotators flipping coins (default 0.2).")] = None,
    seeds: int | None = None,
    simulated: Annotated[bool | None, typer.Option("--simulated/--no-simulated", help="Run the simulated populations "
                                                                                     "(default: yes).")] = None,
    real: Annotated[str | None, typer.Option(help="Real multi-annotator sets, comma-separated: wmt (WMT23 MQM raters), "
                                                  "convabuse (ordinal ratings); '' for none (default both).")] = None,
    limit: Annotated[int | None, typer.Option(help="Quick runs: the first N WMT segments per language pair and N "
                                                   "ConvAbuse ratings (default: 60 segments, every rating).")] = None,
    real_seeds: Annotated[int | None, typer.Option(help="Seeds of the real-data fits (default 1).")] = None,
    encoder: StudyEncoderOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report directory (default: runs/<time>-pluralistic).")] = None,
    ray: RayOpt = None,
    device: StudyDeviceOpt = None,
    quiet: Quiet = False,
) -> None:
    """Annotator-aware vs unimodal reward models: simulated populations (a minority, careless annotators) and real
    raters (WMT23 MQM per-rater comparisons, ConvAbuse ordinal ratings), paired CIs."""
    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.evaluate.record import new_run_dir
    from rewardlab.report import write_report
    from rewardlab.studies.device import study_device
    from rewardlab.studies.pluralistic import make_config, run_study
    from rewardlab.studies.pluralistic_report import build_report

    with user_errors():
        real_sets = None if real is None else split_list(real, str, "--real")  # '' is () : no real set
        study = make_config(_given(candidates=candidates, prompts=prompts, pairs=pairs, minority_share=minority_share,
                                   disagree=disagree, careless_share=careless_share, seeds=seeds, encoder=encoder,
                                   simulated=simulated, real=real_sets, wmt_segments=limit, convabuse_ratings=limit,
                                   real_seeds=real_seeds, device=device),
                            config)
        study_device(study.device)  # a GPU that is not here: one line, before Ray or the data
        with ray_connected(ray), progress_bars(quiet) as bars:
            on_embed = bars.bar("embedding")
            on_fit = bars.bar("training")
            record = run_study(study, on_step=lambda _, done, total: on_fit(done, total), on_embed_progress=on_embed,
                               ray=ray)
        report = write_report(build_report(record), out_dir or new_run_dir("runs", "pluralistic"), record)
        for finding in record["findings"]:
            console.print(f"[bold]{finding['verdict']}[/]: {finding['claim']} — {finding['evidence']}", highlight=False)
        out.print(f"report: {report} ({record['timing']['total_seconds']:.0f}s)", highlight=False)


@experiment_app.command("prm")
def prm(
    candidates: Annotated[str | None, typer.Option(help="Pools with correctness gold: gsm8k or a JSONL file "
                                                        "(default gsm8k).")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of study settings (the keys of results.json's config); "
                                                     "command-line options given explicitly win.")] = None,
    limit: Annotated[int | None, typer.Option(help="The first N pools only (quick runs; default all).")] = None,
    encoder: StudyEncoderOpt = None,
    head: Annotated[str | None, typer.Option(help="Head of the ORM and the PRMs (default outcome-mlp).")] = None,
    split: Annotated[str | None, typer.Option(help="Steps by 'line' or 'sentence' (default line).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split and the fits.")] = None,
    resamples: Annotated[int | None, typer.Option(help="Bootstrap resamples per CI.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder (default: the user cache).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report directory (default: runs/<time>-prm).")] = None,
    ray: RayOpt = None,
    device: StudyDeviceOpt = None,
    quiet: Quiet = False,
) -> None:
    """Process vs outcome rewards on GSM8K: best-of-n accuracy of PRM aggregations, the ORM, majority vote and the
    arithmetic checker, paired CIs by question, read against Lightman et al."""
    from rich.markup import escape

    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.evaluate.record import new_run_dir
    from rewardlab.report import write_report
    from rewardlab.studies.device import study_device
    from rewardlab.studies.prm import make_config, run_study
    from rewardlab.studies.prm_report import build_report

    with user_errors():
        study = make_config(_given(candidates=candidates, limit=limit, encoder=encoder, head=head, split=split,
                                   seed=seed, n_resamples=resamples, device=device), config)
        study_device(study.device)  # a GPU that is not here: one line, before Ray or the data
        with ray_connected(ray), progress_bars(quiet) as bars:
            record = run_study(study, None if cache_dir is None else str(cache_dir),
                               log=(lambda _: None) if quiet else (lambda line: console.print(line, highlight=False)),
                               ray=ray, on_embed=bars.bar("embedding on Ray") if ray else None)
        report = write_report(build_report(record), out_dir or new_run_dir("runs", "prm"), record, html=True)
        table = Table(title=f"best-of-{record['pool_size']} on {record['questions']['test']} held-out questions "
                            "(95% CIs by question, differences paired)", title_justify="left")
        for column in ("rule", "accuracy", "minus ORM", "minus majority vote", "n"):
            table.add_column(column)
        for name, accuracy in record["accuracy"].items():
            table.add_row(escape(name), format_estimate(accuracy),
                          format_estimate(record["minus_orm"].get(name), signed=True),
                          format_estimate(record["minus_majority"].get(name), signed=True), str(accuracy["n"]))
        out.print(table)
        out.print(f"report: {report} ({record['timing']['total_seconds']:.0f}s)", highlight=False)


@experiment_app.command("fine-grained")
def fine_grained(
    data: Annotated[str | None, typer.Option(help="A QA-Feedback file (default: the shared copy).")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of study settings (the keys of results.json's config); "
                                                     "command-line options given explicitly win.")] = None,
    limit: Annotated[int | None, typer.Option(help="The first N questions only (quick runs; default all 500).")] = None,
    encoder: StudyEncoderOpt = None,
    bt_head: Annotated[str | None, typer.Option(help="The direct Bradley-Terry head (default bt-mlp).")] = None,
    folds: Annotated[int | None, typer.Option(help="Cross-validation folds by question (default 5).")] = None,
    seeds: Annotated[str | None, typer.Option(help="Seeds, comma-separated: each another fold assignment and "
                                                   "initialisation (default 0,1,2).")] = None,
    resamples: Annotated[int | None, typer.Option(help="Bootstrap resamples per CI.")] = None,
    spans: Annotated[bool | None, typer.Option("--spans/--no-spans", help="Also the span rewards (error detection "
                                                                        "per span, the span-aggregate reward); "
                                                                        "default on.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder (default: the user cache).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report directory (default: runs/<time>-fine-grained).")]
    = None,
    ray: RayOpt = None,
    device: StudyDeviceOpt = None,
    quiet: Quiet = False,
) -> None:
    """Multi-objective and span rewards on QA-Feedback (relevance, factuality, completeness): holistic pairwise accuracy
    vs a direct BT, fixed vs gated weights, which objective decided, each objective and each span as an error detector;
    paired CIs by question."""
    from rich.markup import escape

    from rewardlab.cli.ray_embedding import ray_connected
    from rewardlab.evaluate.record import new_run_dir
    from rewardlab.report import write_report
    from rewardlab.studies.device import study_device
    from rewardlab.studies.fine_grained import make_config, run_study
    from rewardlab.studies.fine_grained_report import build_report

    with user_errors():
        study = make_config(_given(data=data, limit=limit, encoder=encoder, bt_head=bt_head, folds=folds,
                                   seeds=_listed(seeds, int, "--seeds"), n_resamples=resamples, spans=spans,
                                   device=device), config)
        study_device(study.device)  # a GPU that is not here: one line, before Ray or the data
        with ray_connected(ray), progress_bars(quiet) as bars:
            record = run_study(study, None if cache_dir is None else str(cache_dir),
                               log=(lambda _: None) if quiet else (lambda line: console.print(line, highlight=False)),
                               on_embed=bars.bar("embedding"), ray=ray)
        report = write_report(build_report(record), out_dir or new_run_dir("runs", "fine-grained"), record, html=True)
        table = Table(title=f"pairwise accuracy on {record['decided_pairs']} held-out preferences of "
                            f"{record['questions']} questions (95% CIs by question, differences paired)",
                      title_justify="left")
        for column in ("rule", "accuracy", "minus direct BT", "n"):
            table.add_column(column)
        for name, accuracy in record["accuracy"].items():
            table.add_row(escape(name), format_estimate(accuracy),
                          format_estimate(record["minus_bt"].get(name), signed=True), str(accuracy["n"]))
        out.print(table)
        out.print(f"report: {report} ({record['timing']['total_seconds']:.0f}s)", highlight=False)


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"
