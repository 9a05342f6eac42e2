"""`rewardlab generate`: sample candidate responses (local model or OpenAI-compatible server), or serve a local model."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewardlab.cli_support import Quiet, console, out, progress_bar, user_errors

if TYPE_CHECKING:
    from rewardlab.generate.base import Generator
    from rewardlab.generate.local import LocalGenerator

generate_app = typer.Typer(no_args_is_help=True, help="Sample candidate responses from an LLM; serve a local model.")

ModelOpt = Annotated[Path | None, typer.Option("--model", help="A Hugging Face model folder or a .gguf file "
                                                               "(default: SmolLM2-135M-Instruct GGUF).")]
GgufOpt = Annotated[str | None, typer.Option("--gguf", help="A .gguf file, or with --model the file's name in that folder.")]
BatchOpt = Annotated[int, typer.Option(help="Prompts per batch (local: per forward pass).")]


def local_generator(model: Path | None, gguf: str | None, batch_size: int) -> LocalGenerator:
    """--model / --gguf to a local generator (a bare .gguf path or a folder, default SmolLM2)."""
    from rewardlab.generate.local import LocalGenerator

    if model is None and gguf is not None:
        return LocalGenerator(gguf, batch_size=batch_size)
    return LocalGenerator(model, gguf_file=gguf, batch_size=batch_size)


BaseUrlOpt = Annotated[str | None, typer.Option(help="An OpenAI-compatible server, e.g. http://127.0.0.1:8001/v1 "
                                                    "(then --model-name is needed).")]
ModelNameOpt = Annotated[str | None, typer.Option(help="The model name the server knows.")]
ApiKeyOpt = Annotated[str, typer.Option(envvar="OPENAI_API_KEY", help="API key for --base-url.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="--base-url: requests in flight at once.")]
TimeoutOpt = Annotated[float, typer.Option(help="--base-url: seconds per request.")]


def build_generator(model: Path | None, gguf: str | None, base_url: str | None, model_name: str | None, api_key: str,
                    batch_size: int, concurrency: int, timeout: float) -> Generator:
    """A server client for ``--base-url``, else a local model; mixing the two kinds of options is an error."""
    from rewardlab.generate.base import GenerationError
    from rewardlab.generate.openai_client import OpenAIGenerator

    if base_url is not None:
        if model is not None or gguf is not None:
            raise GenerationError("pass either --base-url (a server) or --model/--gguf (a local model), not both")
        if not model_name:
            raise GenerationError("--base-url needs --model-name (the model the server should run)")
        return OpenAIGenerator(model_name, base_url, api_key, timeout=timeout, concurrency=concurrency)
    if model_name is not None:
        raise GenerationError("--model-name goes with --base-url; for a local model use --model/--gguf")
    return local_generator(model, gguf, batch_size)


def load_generator(generator: Generator, quiet: bool) -> None:
    """Load a local model before any progress bar starts (a GGUF takes a while); servers need nothing."""
    from rewardlab.generate.local import LocalGenerator

    if isinstance(generator, LocalGenerator):
        with nullcontext() if quiet else console.status(f"loading {generator.id}"):
            generator.load()


@generate_app.command("run")
def run(
    prompts_file: Annotated[Path, typer.Argument(help="Prompts: a .txt (one per line) or a record file with --field.")],
    output: Annotated[Path, typer.Option("--out", help="Candidate JSONL to write.")] = Path("candidates.jsonl"),
    n: Annotated[int, typer.Option("--n", help="Samples per prompt.")] = 8,
    model: ModelOpt = None,
    gguf: GgufOpt = None,
    base_url: BaseUrlOpt = None,
    model_name: ModelNameOpt = None,
    api_key: ApiKeyOpt = "none",
    temperature: float = 1.0,
    top_p: float = 0.95,
    max_new_tokens: int = 256,
    seed: int = 0,
    system: Annotated[str | None, typer.Option(help="A system prompt before every prompt.")] = None,
    field: Annotated[str, typer.Option(help="The prompt field of a record file.")] = "prompt",
    limit: Annotated[int | None, typer.Option(help="Only the first N prompts.")] = None,
    batch_size: BatchOpt = 8,
    concurrency: ConcurrencyOpt = 4,
    timeout: TimeoutOpt = 120.0,
    quiet: Quiet = False,
) -> None:
    """Sample N responses per prompt into candidate sets (the JSONL `best-of-n` reads)."""
    from rewardlab.data.records import read_texts
    from rewardlab.generate.base import SamplingParams
    from rewardlab.generate.candidates import write_generated_candidates

    with user_errors():
        generator = build_generator(model, gguf, base_url, model_name, api_key, batch_size, concurrency, timeout)
        params = SamplingParams(n, temperature, top_p, max_new_tokens, seed)
        prompts = read_texts(prompts_file, field, limit)
        started = time.perf_counter()
        load_generator(generator, quiet)
        with progress_bar("generating", quiet) as on_progress:
            sets = write_generated_candidates(generator, prompts, params, output, batch_size, system, on_progress)
        out.print(f"{sets} prompts × {n} candidates from {generator.id} → {output} "
                  f"({time.perf_counter() - started:.1f}s)", highlight=False)


@generate_app.command("serve")
def serve(
    model: ModelOpt = None,
    gguf: GgufOpt = None,
    host: Annotated[str, typer.Option(help="Interface to bind; the default keeps the server on this machine.")] = "127.0.0.1",
    port: int = 8001,
    model_name: Annotated[str | None, typer.Option(help="The model id clients use (default: local:<file>).")] = None,
) -> None:
    """Serve a local model as an OpenAI-compatible API (/v1/chat/completions, /v1/models)."""
    from rewardlab.generate.server import serve as run_server

    with user_errors():
        generator = local_generator(model, gguf, batch_size=1)
        console.print(f"loading {generator.id} …", highlight=False)
        generator.load()
        out.print(f"{model_name or generator.id} on http://{host}:{port}/v1", highlight=False)
        run_server(generator, host, port, model_name)
