"""`rewardlab serve`: reward models over HTTP (/score, /compare, OpenRLHF's /get_reward, /health, /models, /metrics)."""

from __future__ import annotations

from typing import Annotated

import typer

from rewardlab.cli.console import console, out, user_errors
from rewardlab.cli.options import FROM_CONFIG, config_defaults
from rewardlab.errors import RewardlabError
from rewardlab.serve.config import QuerySplit, ServeConfig


def _unescape(text: str) -> str:
    """``\\n`` and ``\\t`` typed on a command line as the characters they name."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


@config_defaults(ServeConfig)
def serve(
    models: Annotated[list[str], typer.Argument(help="Reward-model directories, each as MODEL or MODEL=NAME (the name "
                                                     "clients use; default: the folder's name). The first is the "
                                                     "default model.", show_default=False)],
    host: Annotated[str, typer.Option(help="Interface to bind; the default keeps the server on this machine.")] = "127.0.0.1",
    port: int = 8002,
    api_key: Annotated[str | None, typer.Option(
        envvar="REWARDLAB_SERVE_API_KEY", show_default=False,
        help="Require Authorization: Bearer <key> (or X-API-Key) on every endpoint but /health (default: no key; "
             "OpenRLHF's client sends none).")] = FROM_CONFIG,
    max_items: Annotated[int, typer.Option(min=1, help="Most (prompt, response) pairs per request.")] = FROM_CONFIG,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest prompt, response or query, in characters.")]
    = FROM_CONFIG,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body, counted as it arrives.")]
    = FROM_CONFIG,
    request_timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds a request may take from its arrival, waiting for the model included (then 504).")]
    = FROM_CONFIG,
    max_wait_ms: Annotated[float, typer.Option(
        min=0, max=1000, help="How long a request waits for others to share its micro-batch.")] = FROM_CONFIG,
    max_batch: Annotated[int, typer.Option(min=1, help="Most pairs per micro-batch.")] = FROM_CONFIG,
    max_queue: Annotated[int, typer.Option(min=1, help="Most pairs waiting for a model; past them, 503.")] = FROM_CONFIG,
    cache_size: Annotated[int, typer.Option(min=0, help="Feature rows of recent pairs kept in memory per model.")]
    = FROM_CONFIG,
    query_separator: Annotated[str | None, typer.Option(
        help="/get_reward: cut a query without a matching prompt at the last occurrence of this text, e.g. "
             "'<|im_start|>assistant\\n' (\\n and \\t are unescaped).")] = None,
    strip: Annotated[list[str] | None, typer.Option(
        help="/get_reward: end-of-sequence markers removed from the end of a response (repeatable; default: "
             "<|im_end|>, <|endoftext|>, <|eot_id|>, </s>).")] = None,
    no_strip: Annotated[bool, typer.Option("--no-strip", help="/get_reward: keep responses exactly as sent.")] = False,
    prompt_format: Annotated[str | None, typer.Option(
        help="/get_reward: score the prompt as the TRL bridge does with this --prompt-format (hh or last-user), so "
             "OpenRLHF and TRL runs get the same rewards (default: the prompt as cut).")] = None,
    ray_serve: Annotated[bool, typer.Option(
        "--ray-serve", help="Deploy the same app as Ray Serve replicas behind Ray's HTTP proxy (on --host/--port); "
                            "every node must see the model paths. Needs pip install 'rewardlab[ray]'.")] = False,
    replicas: Annotated[int, typer.Option(min=1, help="--ray-serve: replicas of the app.")] = 2,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS", help="--ray-serve: the Ray cluster: local (default: Ray started on this machine), "
                                         "auto (the one `ray start` runs here) or HOST:PORT of a head node.")] = None,
) -> None:
    """Serve reward models over HTTP for trainers (OpenRLHF --remote_rm_url, TRL) and apps."""
    from rewardlab.serve.reward_server import serve as run_server
    from rewardlab.serve.scoring import load_served_models

    with user_errors():
        try:
            config = ServeConfig(api_key=api_key or None, max_body_bytes=max_body_bytes, max_items=max_items,
                                 max_text_chars=max_text_chars, request_timeout=request_timeout,
                                 max_wait_ms=max_wait_ms, max_batch=max_batch, max_queue=max_queue,
                                 cache_size=cache_size)
            split = QuerySplit(separator=None if query_separator is None else _unescape(query_separator),
                               strip=() if no_strip else tuple(strip) if strip else QuerySplit().strip,
                               prompt_format=prompt_format)
        except ValueError as exc:
            raise RewardlabError(str(exc)) from None
        if ray is not None and not ray_serve:
            raise RewardlabError("--ray names the cluster of --ray-serve; give --ray-serve too")
        if ray_serve:
            from rewardlab.serve.ray_serve import serve_on_ray

            load_served_models(models, config)  # a bad model is one clear line here, not a replica crash loop
            where = f"http://{host}:{port}"
            serve_on_ray(models, host, port, config, split, replicas, ray or "local", on_ready=lambda: out.print(
                f"{replicas} Ray Serve replica(s) on {where} (/score /compare /get_reward /models /metrics)"
                f"{' (API key required)' if config.api_key else ''}", highlight=False))
            return
        console.print(f"loading {len(models)} reward model(s) …", highlight=False)
        served = load_served_models(models, config)
        names = ", ".join(m.name for m in served)
        out.print(f"{names} on http://{host}:{port} (/score /compare /get_reward /models /metrics)"
                  f"{' (API key required)' if config.api_key else ''}", highlight=False)
        run_server(served, host, port, config, split)
