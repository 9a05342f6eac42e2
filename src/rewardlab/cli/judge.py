"""`rewardlab judge`: an LLM judge as an annotator; its labels are an ordinary feedback dataset (RLAIF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardlab.cli.console import out, progress_bar, user_errors
from rewardlab.cli.options import (
    DATA_OPTIONS,
    FROM_CONFIG,
    GENERATOR_OPTIONS,
    DataArg,
    Quiet,
    SeedOpt,
    config_defaults,
    format_estimate,
    with_options,
)
from rewardlab.collect.judge import JudgeConfig
from rewardlab.generate.factory import make_generator


def _fmt(entry: dict[str, Any] | None) -> str:
    return "—" if not entry or entry.get("value") is None else f"{format_estimate(entry)} (n={entry['n']})"


@config_defaults(JudgeConfig, make_generator)
@with_options(DATA_OPTIONS, GENERATOR_OPTIONS)
def judge(
    data: DataArg,
    output: Annotated[Path, typer.Option("--out", help="Dataset directory to write (rewardlab Parquet).")],
    mode: Annotated[str, typer.Option(help="pairwise (each pair in both orders) or rating (each response).")]
    = FROM_CONFIG,
    principle: Annotated[list[str] | None, typer.Option(
        "--principle", help="A principle to judge by, repeatable (e.g. 'Which response is less harmful?'); each "
                            "is asked on its own and the answers are averaged. Default: one helpful/honest/harmless "
                            "question.")] = None,
    principles_file: Annotated[Path | None, typer.Option(help="Principles, one per line (added to --principle).")]
    = None,
    scale: Annotated[tuple[int, int], typer.Option(help="Rating mode: the scale's low and high end.")] = FROM_CONFIG,
    logprobs: Annotated[bool, typer.Option(help="Read answer probabilities (local model: always available; server: "
                                                "if it returns logprobs); else parse the answer text.")]
    = FROM_CONFIG,
    max_new_tokens: Annotated[int, typer.Option(help="Text answers: most tokens per answer.")] = FROM_CONFIG,
    max_chars: Annotated[int, typer.Option(help="Each prompt and response is clipped to this many characters.")]
    = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    cache_dir: Annotated[Path | None, typer.Option(help="Judgement cache (default: <rewardlab cache>/judge).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ask the model every time; store nothing.")] = False,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the agreement CIs.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    quiet: Quiet = False,
    **options: Any,
) -> None:
    """Label pairs (both orders) or responses with an LLM judge; writes feedback with annotator judge:<model> and,
    where the data already has labels (e.g. human preferences), says how far the judge agrees with them."""
    from rewardlab.cli.generate import load_generator
    from rewardlab.cli.pipeline import load_data
    from rewardlab.collect.annotation_stats import json_safe
    from rewardlab.collect.judge import JudgementCache, agreement_with_labels, judge_backend
    from rewardlab.collect.judge import judge as run_judge
    from rewardlab.data.parquet import write_parquet
    from rewardlab.embed.cache import default_cache_dir

    data_options = {k: options.pop(k) for k in ("format", "map", "label_values", "on_empty", "on_error", "limit")}
    with user_errors():
        principles = list(principle or [])
        if principles_file is not None:
            principles += [line.strip() for line in principles_file.read_text(encoding="utf-8").splitlines()
                           if line.strip()]
        config = JudgeConfig(mode, tuple(principles), tuple(scale), logprobs, max_new_tokens,  # type: ignore[arg-type]
                             max_chars, seed)
        source = load_data(data, **data_options)
        generator = make_generator(**options)
        backend = judge_backend(generator, options["batch_size"])
        cache = JudgementCache(None if no_cache else (cache_dir or default_cache_dir() / "judge"))
        load_generator(generator, quiet)
        with progress_bar("judging", quiet) as on_progress:
            report = run_judge(source, backend, config, cache, None, on_progress)
        write_parquet(report.dataset, output)
        result: dict[str, Any] = {**report.as_dict(), "out": str(output)}
        agreement = agreement_with_labels(report, source, resamples, seed)
        if agreement is not None:
            result["agreement_with_source"] = agreement
        result = json_safe(result)
        if as_json:
            out.print_json(json.dumps(result))
            return
        out.print(f"{result['feedback_rows']} feedback rows from {report.annotator} → {output} "
                  f"({report.requests} requests, {report.cached} answers from the cache)", highlight=False)
        for note in report.dataset.notes:
            out.print(f"note: {note}", highlight=False)
        if agreement is not None:
            out.print(f"agreement with the labels in {data}: {_fmt(result['agreement_with_source']['agreement'])}"
                      + (f"; on the pairs the judge decided: {_fmt(result['agreement_with_source'].get('decided'))}"
                         if "decided" in result["agreement_with_source"] else ""), highlight=False)
            if "prefer_longer" in result["agreement_with_source"]:
                out.print(f"control, prefer the longer response: "
                          f"{_fmt(result['agreement_with_source']['prefer_longer'])}", highlight=False)
