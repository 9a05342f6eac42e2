"""One generator from the settings a user gives: a local model (folder or GGUF) or an OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path

from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.generate.base import GenerationError, Generator
from rewardlab.generate.local import LocalGenerator


def local_generator(model: str | Path | None = None, gguf: str | None = None, batch_size: int = 8,
                    device: str = "cpu") -> LocalGenerator:
    """A local model: a bare ``gguf`` path, a folder (with ``gguf`` the file's name in it), or SmolLM2 by default,
    on ``device`` (auto, cpu, cuda[:i]; the CPU by default, as `LocalGenerator`)."""
    if model is None and gguf is not None:
        return LocalGenerator(gguf, batch_size=batch_size, device=device)
    return LocalGenerator(model, gguf_file=gguf, batch_size=batch_size, device=device)


def make_generator(model: str | Path | None = None, gguf: str | None = None, base_url: str | None = None,
                   model_name: str | None = None, api_key: str = "none", batch_size: int = 8, concurrency: int = 4,
                   timeout: float = 120.0, device: str = DEFAULT_DEVICE) -> Generator:
    """A server client for ``base_url``, else a local model on ``device`` (auto: CUDA when present; sampling is all
    the caller does with it); mixing the two kinds of settings is an error (``device`` is ignored for a server)."""
    if base_url is not None:
        from rewardlab.generate.openai_client import OpenAIGenerator

        if model is not None or gguf is not None:
            raise GenerationError("pass either --base-url (a server) or --model/--gguf (a local model), not both")
        if not model_name:
            raise GenerationError("--base-url needs --model-name (the model the server should run)")
        if not base_url.startswith(("http://", "https://")):
            raise GenerationError(f"--base-url must be an http(s) URL, not {base_url!r}")
        return OpenAIGenerator(model_name, base_url, api_key, timeout=timeout, concurrency=concurrency)
    if model_name is not None:
        raise GenerationError("--model-name goes with --base-url; for a local model use --model/--gguf")
    return local_generator(model, gguf, batch_size, device)
