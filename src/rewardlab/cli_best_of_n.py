"""Best-of-n sub-commands: `bon-eval` (a reward model's picks against gold), `select`, `experiment bon-noise`."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from rewardlab.cli_generate import (
    ApiKeyOpt,
    BatchOpt,
    ConcurrencyOpt,
    GgufOpt,
    ModelNameOpt,
    ModelOpt,
    TimeoutOpt,
    build_generator,
    load_generator,
)
from rewardlab.cli_support import CacheDir, EncoderOpt, Quiet, console, out, progress_bar, progress_bars, user_errors
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import DataError, ModelError, RewardlabError

experiment_app = typer.Typer(no_args_is_help=True, help="Reproducible studies that write a report.")

CandidatesArg = Annotated[str, typer.Argument(help="alpaca-eval, gsm8k (shared data) or a candidate JSONL file.")]
ModelArg = Annotated[Path, typer.Argument(help="A trained reward model directory.")]
AggregateOpt = Annotated[str | None, typer.Option(help="Ensembles: score by mean, min or lcb (mean − λ·std).")]
LimitPromptsOpt = Annotated[int | None, typer.Option(help="Use only the first N prompts.")]
ExcludeOpt = Annotated[str, typer.Option(help="Comma-separated candidate sources to leave out, e.g. NullModel.")]
StrategyOpt = Annotated[str, typer.Option(help="argmax, soft (sample ∝ exp(r/T)) or conservative (ensembles).")]
ConservativeOpt = Annotated[str, typer.Option(help="conservative: min or lcb.")]
LamOpt = Annotated[float, typer.Option(help="conservative lcb: mean − λ·std.")]


def _load_sets(candidates: str, limit: int | None, exclude: str) -> list[Any]:
    from rewardlab.data.candidates import load_candidates

    names = {name.strip() for name in exclude.split(",") if name.strip()}
    return [s.without_sources(names) for s in load_candidates(candidates, limit)]


def _candidate_scores(model: Any, sets: list[Any], aggregate: str | None, lam: float | None, quiet: bool
                      ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Per-set rewards, and for ensembles each set's (members, candidates) rewards behind them."""
    from rewardlab.data.candidates import split_by_pool
    from rewardlab.rewards.ensemble import EnsembleHead

    prompts = [s.prompt for s in sets for _ in s.responses]
    responses = [r for s in sets for r in s.responses]
    with progress_bar("embedding candidates", quiet):
        x = model.featurize(prompts, responses)
    members = None
    if isinstance(model.head, EnsembleHead):
        members = model.head.predict_members(x)
        flat = model.head.predict_stats(x, lam)[aggregate or model.head.aggregate]
    elif aggregate is not None:
        raise ModelError(f"--aggregate {aggregate} needs an ensemble reward model (train with --ensemble N)")
    else:
        flat = np.asarray(model.head.predict(x))
    return split_by_pool(flat, sets), None if members is None else split_by_pool(members, sets)


def bon_eval(
    model: ModelArg,
    candidates: CandidatesArg,
    n: Annotated[str, typer.Option(help="Comma-separated n values; 'max' = each prompt's whole pool.")] = "1,4,16,max",
    aggregate: AggregateOpt = None,
    lam: Annotated[float | None, typer.Option(help="λ of the lcb aggregate (default: the model's).")] = None,
    limit: LimitPromptsOpt = None,
    exclude_sources: ExcludeOpt = "",
    record: Annotated[Path | None, typer.Option(help="Write the JSON record here.")] = None,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Best-of-n against gold: expected gold of the pick (unbiased, all subsets), oracle, gain recovered, Spearman."""
    from rewardlab.evaluate.best_of_n import best_of_n, summarize_best_of_n
    from rewardlab.rewards.model import RewardModel

    with user_errors():
        ns = _parse_ns(n)
        sets = _load_sets(candidates, limit, exclude_sources)
        if any(s.gold is None for s in sets):
            raise DataError("bon-eval needs gold scores for every candidate set", source=candidates)
        rm = RewardModel.load(model, cache_dir=cache_dir)
        scores, _ = _candidate_scores(rm, sets, aggregate, lam, quiet)
        result = best_of_n(sets, scores, max_n=max([k for k in ns if isinstance(k, int)] + [1]))
        summary = summarize_best_of_n(result, ns)
        table = Table(title=f"best-of-n of {model} on {candidates} ({len(sets)} prompts, pools of "
                            f"{result.pool_size.min()}–{result.pool_size.max()}); 95% CIs over prompts",
                      title_justify="left")
        for column in ("n", "KL(BoN)", "gold of pick", "oracle", "share of oracle gain"):
            table.add_column(column)
        for k in ns:
            row = summary[str(k)]
            table.add_row(str(k), f"{result.kl(k):.2f}", str(row["gold"]), str(row["oracle"]), str(row["oracle_gain_fraction"]))
        out.print(table)
        out.print(f"random pick: {summary['all']['random']}   per-prompt Spearman(reward, gold): "
                  f"{summary['all']['spearman']} over {summary['all']['spearman'].n} prompts", highlight=False)
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            payload = {"kind": "bon-eval", "model": str(model), "candidates": candidates, "prompts": len(sets),
                       "aggregate": aggregate, "metrics": {k: {m: e.as_dict() for m, e in v.items()} for k, v in summary.items()},
                       "curve": {"n": list(range(1, result.max_n + 1)), "gold": result.curve.mean(0).tolist()}}
            record.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            out.print(f"record: {record}", highlight=False)


def _parse_ns(text: str) -> list[int | str]:
    ns: list[int | str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "max":
            ns.append("max")
        elif part.isdigit() and int(part) >= 1:
            ns.append(int(part))
        else:
            raise RewardlabError(f"--n: expected positive integers or 'max', got {part!r}")
    if not ns:
        raise RewardlabError("--n: give at least one n")
    return ns


def select(
    model: ModelArg,
    candidates: CandidatesArg,
    output: Annotated[Path, typer.Option(help="JSONL: one chosen response per prompt.")],
    strategy: StrategyOpt = "argmax",
    temperature: Annotated[float, typer.Option(help="soft: temperature T in reward units.")] = 1.0,
    aggregate: ConservativeOpt = "lcb",
    lam: LamOpt = 1.0,
    seed: int = 0,
    limit: LimitPromptsOpt = None,
    exclude_sources: ExcludeOpt = "",
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Pick one response per prompt from candidate sets with a reward model; writes the picks as JSONL."""
    from rewardlab.optimize.selection import STRATEGIES, soft_best_of_n_kl
    from rewardlab.optimize.selection import select as pick
    from rewardlab.rewards.model import RewardModel

    with user_errors():
        if strategy not in STRATEGIES:
            raise RewardlabError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        sets = _load_sets(candidates, limit, exclude_sources)
        rm = RewardModel.load(model, cache_dir=cache_dir)
        scores, members = _candidate_scores(rm, sets, None, None, quiet)
        if strategy == "conservative" and members is None:
            raise ModelError("--strategy conservative needs an ensemble reward model (train with --ensemble N)")
        rng = np.random.default_rng(seed)
        output.parent.mkdir(parents=True, exist_ok=True)
        gold_picked = []
        with output.open("w", encoding="utf-8") as f:
            for i, s in enumerate(sets):
                given = members[i] if strategy == "conservative" and members is not None else scores[i]
                index = pick(given, strategy, temperature=temperature, how=aggregate, lam=lam, rng=rng)
                row: dict[str, Any] = {"prompt": s.prompt, "response": s.responses[index], "index": index,
                                       "reward": float(scores[i][index]), "strategy": strategy}
                if s.sources:
                    row["source"] = s.sources[index]
                if strategy == "soft":
                    row["kl_to_uniform"] = soft_best_of_n_kl(scores[i], temperature)
                if s.gold is not None:
                    row["gold"] = float(s.gold[index])
                    gold_picked.append(row["gold"])
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary = f"; mean gold of picks {np.mean(gold_picked):.4f}" if gold_picked else ""
        out.print(f"{len(sets)} picks ({strategy}) → {output}{summary}", highlight=False)


def bon(
    prompts_file: Annotated[Path, typer.Argument(help="Prompts: a .txt (one per line) or a record file with --field.")],
    reward_model: Annotated[Path, typer.Option(help="A trained reward model directory.")],
    output: Annotated[Path, typer.Option("--out", help="JSONL: the pick and every scored candidate, per prompt.")]
    = Path("bon.jsonl"),
    n: Annotated[int, typer.Option("--n", help="Samples per prompt.")] = 8,
    generator: Annotated[str, typer.Option(help="'local' (a local model: --model/--gguf, default SmolLM2) or the base "
                                                "URL of an OpenAI-compatible server (then --model-name).")] = "local",
    model: ModelOpt = None,
    gguf: GgufOpt = None,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = "none",
    strategy: StrategyOpt = "argmax",
    soft_temperature: Annotated[float, typer.Option(help="soft: T in reward units.")] = 1.0,
    aggregate: ConservativeOpt = "lcb",
    lam: LamOpt = 1.0,
    prompt_format: Annotated[str, typer.Option(help="How the reward model sees a prompt: last-user (the last user "
                                                    "message: a plain prompt as is) or hh (HH-RLHF dialogue text, "
                                                    "for models trained on HH-RLHF).")] = "last-user",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the generator.")] = 1.0,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    seed: int = 0,
    field: Annotated[str, typer.Option(help="The prompt field of a record file.")] = "prompt",
    limit: LimitPromptsOpt = None,
    batch_size: BatchOpt = 8,
    concurrency: ConcurrencyOpt = 4,
    timeout: TimeoutOpt = 120.0,
    cache_dir: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Live best-of-n: sample n responses per prompt, score them with a reward model, keep one per prompt."""
    from rewardlab.data.records import read_texts
    from rewardlab.generate.base import SamplingParams
    from rewardlab.optimize.live_best_of_n import live_best_of_n
    from rewardlab.optimize.selection import STRATEGIES
    from rewardlab.optimize.trl_rewards import PROMPT_FORMATS
    from rewardlab.rewards.model import RewardModel

    with user_errors():
        if strategy not in STRATEGIES:
            raise RewardlabError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        if prompt_format not in PROMPT_FORMATS:
            raise RewardlabError(f"--prompt-format must be one of {', '.join(PROMPT_FORMATS)}")
        if soft_temperature <= 0:
            raise RewardlabError("--soft-temperature must be > 0")
        rm = RewardModel.load(reward_model, cache_dir=cache_dir)
        if strategy == "conservative" and not hasattr(rm.head, "predict_members"):
            raise ModelError("--strategy conservative needs an ensemble reward model (train with --ensemble N)")
        local = generator == "local"
        if not local and not generator.startswith(("http://", "https://")):
            raise RewardlabError(f"--generator must be 'local' or an http(s) base URL, not {generator!r}")
        gen = build_generator(model, gguf, None if local else generator, model_name, api_key, batch_size, concurrency, timeout)
        params = SamplingParams(n, temperature, top_p, max_new_tokens, seed)
        prompts = read_texts(prompts_file, field, limit)
        load_generator(gen, quiet)
        output.parent.mkdir(parents=True, exist_ok=True)
        picked, first = [], []
        with output.open("w", encoding="utf-8") as f, progress_bar("sampling and scoring", quiet) as on_progress:
            for pick in live_best_of_n(gen, rm, prompts, params, strategy=strategy, soft_temperature=soft_temperature,
                                       aggregate=aggregate, lam=lam, prompt_format=prompt_format, batch_size=batch_size,
                                       seed=seed, on_progress=on_progress):
                f.write(json.dumps(pick.record(gen.id), ensure_ascii=False) + "\n")
                f.flush()
                picked.append(float(pick.rewards[pick.index]))
                first.append(float(pick.rewards[0]))
        out.print(f"{len(picked)} prompts × {n} samples from {gen.id} → {output}; mean reward of picks "
                  f"{np.mean(picked):.3f} vs {np.mean(first):.3f} for one sample (the same reward model judges both)",
                  highlight=False)


def simulate(
    candidates: CandidatesArg,
    output: Annotated[Path, typer.Option(help="Directory for the feedback dataset (rewardlab Parquet format).")],
    pairs: Annotated[int, typer.Option(help="Annotation budget: how many comparisons.")] = 5000,
    beta: Annotated[str, typer.Option(help="Rationality β (inf = noiseless); comma-separated = one annotator each.")] = "1",
    flip_rate: Annotated[float, typer.Option(help="Probability of flipping each label.")] = 0.0,
    position_bias: Annotated[float, typer.Option(help="Logit in favour of the response shown first.")] = 0.0,
    length_bias: Annotated[float, typer.Option(help="Logit per std of log-length difference, for the longer one.")] = 0.0,
    pairing: Annotated[str, typer.Option(help="same-prompt or cross-prompt.")] = "same-prompt",
    seed: int = 0,
    limit: LimitPromptsOpt = None,
    exclude_sources: ExcludeOpt = "",
) -> None:
    """Label pairs of candidates with simulated annotators (Bradley-Terry noise, flips, biases) from their gold."""
    from rewardlab.collect.simulate import SimulatedAnnotator, agreement_with_gold, simulate_comparisons
    from rewardlab.data.parquet import write_parquet

    with user_errors():
        sets = _load_sets(candidates, limit, exclude_sources)
        if any(s.gold is None for s in sets):
            raise DataError("simulated annotators need gold scores for every candidate set", source=candidates)
        try:
            team = [SimulatedAnnotator(f"sim-{i}-beta{b:g}", beta=b, flip_rate=flip_rate, position_bias=position_bias,
                                       length_bias=length_bias) for i, b in enumerate(_split_list(beta, float))]
            dataset = simulate_comparisons(sets, pairs, team, pairing=pairing, seed=seed,
                                           name=f"simulated-{Path(candidates).stem}")
        except ValueError as exc:
            raise RewardlabError(str(exc)) from None
        write_parquet(dataset, output)
        out.print(f"{len(dataset.comparisons)} {pairing} comparisons over {len(dataset.prompts)} prompts → {output}; "
                  f"{agreement_with_gold(dataset, sets):.1%} of labels agree with gold (gold ties left out)", highlight=False)


def _split_list(text: str, cast: type) -> tuple[Any, ...]:
    try:
        return tuple(cast(p.strip()) for p in text.split(",") if p.strip())
    except ValueError:
        raise RewardlabError(f"cannot read {text!r} as a comma-separated list of {cast.__name__}") from None


@experiment_app.command("bon-noise")
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
            "candidates": candidates, "betas": _split_list(betas, float), "budgets": _split_list(budgets, int),
            "pairings": _split_list(pairings, str), "learners": _split_list(learners, str), "seeds": seeds,
            "ensemble_members": ensemble_members, "ensemble_learners": _split_list(ensemble_learners, str),
            "ensemble_budget": ensemble_budget, "lam": lam, "limit_prompts": limit_prompts, "encoder": encoder,
            "exclude_sources": _split_list(exclude_sources, str),
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
