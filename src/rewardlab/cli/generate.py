"""`rewardlab generate`: sample candidate responses (local model or OpenAI-compatible server), or serve a local model."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardlab.cli.console import console, out, progress_bar, user_errors
from rewardlab.cli.options import (
    FROM_CONFIG,
    GENERATOR_OPTIONS,
    DeviceOpt,
    GgufOpt,
    LimitPromptsOpt,
    ModelOpt,
    PromptsFileArg,
    Quiet,
    SeedOpt,
    config_defaults,
    with_options,
)
from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.generate.base import CANDIDATE_SAMPLING, Generator
from rewardlab.generate.factory import local_generator, make_generator
from rewardlab.serve.limits import GenerateLimits

generate_app = typer.Typer(no_args_is_help=True, help="Sample candidate responses from an LLM; serve a local model.")


def load_generator(generator: Generator, quiet: bool) -> None:
    """Load a local model before any progress bar starts (a GGUF takes a while); servers need nothing."""
    from rewardlab.generate.local import LocalGenerator

    if isinstance(generator, LocalGenerator):
        with nullcontext() if quiet else console.status(f"loading {generator.id}"):
            generator.load()


@generate_app.command("run")
@config_defaults(CANDIDATE_SAMPLING, make_generator)
@with_options(GENERATOR_OPTIONS)
def run(
    prompts_file: PromptsFileArg,
    output: Annotated[Path, typer.Option("--out", help="Candidate JSONL to write.")] = Path("candidates.jsonl"),
    n: Annotated[int, typer.Option("--n", help="Samples per prompt.")] = FROM_CONFIG,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = FROM_CONFIG,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling: keep the smallest token set with this mass.")]
    = FROM_CONFIG,
    max_new_tokens: Annotated[int, typer.Option(help="Most new tokens per sample.")] = FROM_CONFIG,
    seed: SeedOpt = FROM_CONFIG,
    system: Annotated[str | None, typer.Option(help="A system prompt before every prompt.")] = None,
    field: Annotated[str, typer.Option(help="The prompt field of a record file.")] = "prompt",
    limit: LimitPromptsOpt = None,
    quiet: Quiet = False,
    **generator_options: Any,
) -> None:
    """Sample N responses per prompt into candidate sets (the JSONL `best-of-n` reads)."""
    from rewardlab.data.records import read_texts
    from rewardlab.generate.base import SamplingParams
    from rewardlab.generate.candidates import write_generated_candidates


    with user_errors():
        generator = make_generator(**generator_options)
        params = SamplingParams(n, temperature, top_p, max_new_tokens, seed)
        prompts = read_texts(prompts_file, field, limit)
        started = time.perf_counter()
        load_generator(generator, quiet)
        with progress_bar("generating", quiet) as on_progress:
            sets = write_generated_candidates(generator, prompts, params, output,
                                              generator_options["batch_size"], system, on_progress)
        out.print(f"{sets} prompts × {n} candidates from {generator.id} → {output} "
                  f"({time.perf_counter() - started:.1f}s)", highlight=False)


@generate_app.command("serve")
@config_defaults(GenerateLimits)
def serve(
    model: ModelOpt = None,
    gguf: GgufOpt = None,
    host: Annotated[str, typer.Option(help="Interface to bind; the default keeps the server on this machine.")] = "127.0.0.1",
    port: int = 8001,
    model_name: Annotated[str | None, typer.Option(help="The model id clients use (default: local:<file>).")] = None,
    api_key: Annotated[str | None, typer.Option(
        envvar="REWARDLAB_GENERATE_API_KEY", show_default=False,
        help="Require Authorization: Bearer <key> on every request (default: no key).")] = FROM_CONFIG,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most max_tokens a request may ask for.")] = FROM_CONFIG,
    max_n: Annotated[int, typer.Option(min=1, help="Most samples (n) a request may ask for.")] = FROM_CONFIG,
    request_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds a request may take from its arrival, waiting for the model included; past them "
                        "it gets a 504 and its sampling stops.")] = FROM_CONFIG,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body, counted as it arrives.")]
    = FROM_CONFIG,
    device: DeviceOpt = DEFAULT_DEVICE,
) -> None:
    """Serve a local model as an OpenAI-compatible API (/v1/chat/completions, /v1/models)."""
    from rewardlab.generate.server import serve as run_server

    with user_errors():
        limits = GenerateLimits(api_key=api_key or None, max_body_bytes=max_body_bytes, max_tokens=max_tokens,
                                max_n=max_n, request_timeout=request_timeout)
        generator = local_generator(model, gguf, batch_size=1, device=device)
        console.print(f"loading {generator.id} …", highlight=False)
        generator.load()
        out.print(f"{model_name or generator.id} on http://{host}:{port}/v1"
                  f"{' (API key required)' if limits.api_key else ''}", highlight=False)
        run_server(generator, host, port, model_name, limits)
