"""Best-of-n commands: `bon-eval` (a reward model's picks against gold), `select` (picks from pools), `bon` (live)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from rewardlab.cli.console import out, print_table, progress_bar, user_errors
from rewardlab.cli.generate import load_generator
from rewardlab.cli.options import (
    FROM_CONFIG,
    GENERATOR_OPTIONS,
    AllowExternalEncoderOpt,
    CacheDir,
    CandidatesArg,
    ConservativeOpt,
    ExcludeOpt,
    FieldOpt,
    LamOpt,
    LimitPromptsOpt,
    ModelArg,
    PromptFormatOpt,
    PromptsFileArg,
    Quiet,
    RayOpt,
    RewardModelOpt,
    SeedOpt,
    StrategyOpt,
    config_defaults,
    with_options,
)
from rewardlab.errors import DataError, ModelError, RewardlabError
from rewardlab.generate.base import CANDIDATE_SAMPLING, SamplingParams
from rewardlab.generate.factory import make_generator
from rewardlab.optimize.live_best_of_n import live_best_of_n

if TYPE_CHECKING:
    from rewardlab.evaluate.best_of_n import LengthRuleRow
    from rewardlab.evaluate.bootstrap import Estimate

AggregateOpt = Annotated[str | None, typer.Option(help="Ensembles: score by mean, min or lcb (mean − λ·std).")]


def load_sets(candidates: str, limit: int | None, exclude: str) -> list[Any]:
    """Candidate pools, less the sources the user excluded."""
    from rewardlab.data.candidates import load_candidates

    names = {name.strip() for name in exclude.split(",") if name.strip()}
    return [s.without_sources(names) for s in load_candidates(candidates, limit)]


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
    allow_external_encoder: AllowExternalEncoderOpt = False,
    ray: RayOpt = None,
    quiet: Quiet = False,
) -> None:
    """Best-of-n against gold: expected gold of the pick (unbiased, all subsets), oracle, gain recovered, Spearman;
    beside it, on the same pools and n, picking the longest or the shortest candidate (a model that cannot beat
    both has learned length)."""
    from rewardlab.cli.ray_embedding import warm_pairs_on_ray
    from rewardlab.evaluate.best_of_n import (
        best_of_n,
        length_rules,
        length_rules_record,
        summarize_best_of_n,
        summarize_length_rules,
    )
    from rewardlab.evaluate.bootstrap import GroupBootstrap
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.scoring import score_candidate_sets

    with user_errors():
        ns = _parse_ns(n)
        sets = load_sets(candidates, limit, exclude_sources)
        if any(s.gold is None for s in sets):
            raise DataError("bon-eval needs gold scores for every candidate set", source=candidates)
        rm = RewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
        warm_pairs_on_ray([s.prompt for s in sets for _ in s.responses], [r for s in sets for r in s.responses], rm,
                          ray, quiet)
        with progress_bar("embedding candidates", quiet) as on_progress:
            scores, _ = score_candidate_sets(rm, sets, aggregate, lam, on_progress)
        max_n = max([k for k in ns if isinstance(k, int)] + [1])
        result = best_of_n(sets, scores, max_n=max_n)
        bootstrap = GroupBootstrap(np.arange(len(sets)))  # one set of resamples: every Δ below is paired by prompt
        summary = summarize_best_of_n(result, ns, bootstrap)
        by_length, rho_length = summarize_length_rules(result, length_rules(sets, scores, max_n), ns, bootstrap)
        table = Table(title=f"best-of-n of {model} on {candidates} ({len(sets)} prompts, pools of "
                            f"{result.pool_size.min()}–{result.pool_size.max()}); 95% CIs over prompts",
                      title_justify="left")
        for column in ("n", "KL(BoN)", "gold of pick", "oracle", "share of oracle gain"):
            table.add_column(column)
        for k in ns:
            row = summary[str(k)]
            table.add_row(str(k), f"{result.kl(k):.2f}", str(row["gold"]), str(row["oracle"]), str(row["oracle_gain_fraction"]))
        print_table(table)
        out.print(f"random pick: {summary['all']['random']}   per-prompt Spearman(reward, gold): "
                  f"{summary['all']['spearman']} over {summary['all']['spearman'].n} prompts", highlight=False)
        _print_length_rules(by_length, rho_length)
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            payload = {"kind": "bon-eval", "model": str(model), "candidates": candidates, "prompts": len(sets),
                       "aggregate": aggregate, "metrics": {k: {m: e.as_dict() for m, e in v.items()} for k, v in summary.items()},
                       "curve": {"n": list(range(1, result.max_n + 1)), "gold": result.curve.mean(0).tolist()},
                       "length_controls": length_rules_record(by_length, rho_length)}
            record.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            out.print(f"record: {record}", highlight=False)


def _print_length_rules(rows: list[LengthRuleRow], rho: Estimate) -> None:
    """The model's picks beside picking by length alone, on the same pools and n."""
    table = Table(title="length controls (same pools and n; length in characters): gold of picking the longest or "
                        "the shortest candidate, and the model minus the better of the two, paired by prompt",
                  title_justify="left")
    for column in ("n", "model", "pick longest", "pick shortest", "Δ vs better length rule"):
        table.add_column(column)
    for row in rows:
        delta = row.minus_better_rule
        table.add_row(row.n, str(row.gold), str(row.longest), str(row.shortest),
                      f"{delta.value:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}] vs {row.better_rule}")
    print_table(table)
    out.print(f"per-prompt Spearman(reward, characters): {rho} over {rho.n} prompts", highlight=False)


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
    seed: SeedOpt = 0,
    limit: LimitPromptsOpt = None,
    exclude_sources: ExcludeOpt = "",
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    aggregate_steps: Annotated[str | None, typer.Option(help="MODEL is a step reward model (`rewardlab steps train`): "
                                                             "pick by its step rewards folded with min, product, last "
                                                             "or mean (the strategy options do not apply).")] = None,
    quiet: Quiet = False,
) -> None:
    """Pick one response per prompt from candidate sets with a reward model; writes the picks as JSONL."""
    from rewardlab.optimize.picks import pick_from_sets
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.scoring import score_candidate_sets

    with user_errors():
        if aggregate_steps is not None:
            from rewardlab.cli.steps import write_step_picks

            return write_step_picks(model, candidates, output, aggregate_steps, limit, exclude_sources, cache_dir,
                                    allow_external_encoder, quiet)
        sets = load_sets(candidates, limit, exclude_sources)
        rm = RewardModel.load(model, cache_dir=cache_dir, allow_external_encoder=allow_external_encoder)
        with progress_bar("embedding candidates", quiet) as on_progress:
            scores, members = score_candidate_sets(rm, sets, None, None, on_progress)
        picks = pick_from_sets(sets, scores, members, strategy, temperature, aggregate, lam, seed)
        write_picks(picks, output, strategy)


def write_picks(picks: list[dict[str, Any]], output: Path, how: str) -> None:
    """The picks as JSONL at ``output``, and one line saying how many, how they were picked and their mean gold."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for row in picks:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    gold = [row["gold"] for row in picks if "gold" in row]
    summary = f"; mean gold of picks {np.mean(gold):.4f}" if gold else ""
    out.print(f"{len(picks)} picks ({how}) → {output}{summary}", highlight=False)


@config_defaults(CANDIDATE_SAMPLING, live_best_of_n, make_generator)
@with_options(GENERATOR_OPTIONS)
def bon(
    prompts_file: PromptsFileArg,
    reward_model: RewardModelOpt,
    output: Annotated[Path, typer.Option("--out", help="JSONL: the pick and every scored candidate, per prompt.")]
    = Path("bon.jsonl"),
    n: Annotated[int, typer.Option("--n", help="Samples per prompt.")] = FROM_CONFIG,
    strategy: StrategyOpt = FROM_CONFIG,
    soft_temperature: Annotated[float, typer.Option(help="soft: T in reward units.")] = FROM_CONFIG,
    aggregate: ConservativeOpt = FROM_CONFIG,
    lam: LamOpt = FROM_CONFIG,
    prompt_format: PromptFormatOpt = FROM_CONFIG,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the generator.")] = FROM_CONFIG,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling: keep the smallest token set with this mass.")]
    = FROM_CONFIG,
    max_new_tokens: Annotated[int, typer.Option(help="Most new tokens per sample.")] = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    field: FieldOpt = "prompt",
    limit: LimitPromptsOpt = None,
    generator: Annotated[str | None, typer.Option(hidden=True, help="Renamed: --base-url.")] = None,
    cache_dir: CacheDir = None,
    allow_external_encoder: AllowExternalEncoderOpt = False,
    quiet: Quiet = False,
    **generator_options: Any,
) -> None:
    """Live best-of-n: sample n responses per prompt, score them with a reward model, keep one per prompt."""
    from rewardlab.data.records import read_texts
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
        if generator is not None:
            raise RewardlabError("--generator was renamed: pass --base-url URL for an OpenAI-compatible server, or "
                                 "nothing (or --model/--gguf) for a local model")
        rm = RewardModel.load(reward_model, cache_dir=cache_dir,
                                allow_external_encoder=allow_external_encoder)
        if strategy == "conservative" and not rm.is_ensemble:
            raise ModelError("--strategy conservative needs an ensemble reward model (train with --ensemble N)")
        gen = make_generator(**generator_options)
        params = SamplingParams(n, temperature, top_p, max_new_tokens, seed)
        prompts = read_texts(prompts_file, field, limit)
        load_generator(gen, quiet)
        output.parent.mkdir(parents=True, exist_ok=True)
        picked, first = [], []
        with output.open("w", encoding="utf-8") as f, progress_bar("sampling and scoring", quiet) as on_progress:
            for pick in live_best_of_n(gen, rm, prompts, params, strategy=strategy, soft_temperature=soft_temperature,
                                       aggregate=aggregate, lam=lam, prompt_format=prompt_format,
                                       batch_size=generator_options["batch_size"],
                                       seed=seed, on_progress=on_progress):
                f.write(json.dumps(pick.record(gen.id), ensure_ascii=False) + "\n")
                f.flush()
                picked.append(float(pick.rewards[pick.index]))
                first.append(float(pick.rewards[0]))
        out.print(f"{len(picked)} prompts × {n} samples from {gen.id} → {output}; mean reward of picks "
                  f"{np.mean(picked):.3f} vs {np.mean(first):.3f} for one sample (the same reward model judges both)",
                  highlight=False)
