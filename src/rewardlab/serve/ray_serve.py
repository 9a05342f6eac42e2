"""`rewardlab serve --ray-serve`: the same FastAPI app (`create_app`) as Ray Serve replicas behind Ray's HTTP proxy.

Each replica loads the models itself (from the paths, which every node must see) and micro-batches its own
requests; Ray's proxy spreads requests over the replicas. Endpoints, limits, keys and answers are the in-process
server's, since each replica runs that very app; a response says which replica answered in ``X-Rewardlab-Replica``.
Ray is imported only here, and only when asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab.embed.ray_embed import LOCAL, ray_session
from rewardlab.errors import InvalidValueError
from rewardlab.serve.config import QuerySplit, ServeConfig
from rewardlab.serve.limits import Message, Receive, Scope, Send

REPLICA_HEADER = "x-rewardlab-replica"
APP_NAME = "rewardlab"


class ReplicaTag:
    """ASGI middleware: ``X-Rewardlab-Replica: <pid>`` on every response, so a client (and the tests) can tell
    replicas apart."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tag = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REPLICA_HEADER.encode(), self.tag)]}
            await send(message)

        await self.app(scope, receive, tagged)


def absolute_specs(specs: Sequence[str]) -> list[str]:
    """``PATH[=NAME]`` with PATH made absolute: replicas run in other processes, with another working directory."""
    from rewardlab.serve.scoring import parse_model_spec

    out = []
    for spec in specs:
        path, name = parse_model_spec(spec)
        out.append(f"{Path(path).resolve()}={name}")
    return out


def reward_deployment(replicas: int, cpus_per_replica: float) -> Any:
    """The Ray Serve deployment class: ``replicas`` copies of the reward app, each holding ``cpus_per_replica``."""
    from ray import serve

    @serve.deployment(name="RewardService", num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica},
                      max_ongoing_requests=256)
    @serve.ingress()
    class RewardService:
        def __init__(self, specs: list[str], config: ServeConfig, split: QuerySplit, threads: int) -> None:
            self.specs, self.config, self.split, self.threads = specs, config, split, threads

        def __serve_build_asgi_app__(self) -> Any:
            import torch

            from rewardlab.serve.reward_server import create_app
            from rewardlab.serve.scoring import load_served_models

            torch.set_num_threads(self.threads)  # replicas share the node's cores instead of each taking them all
            return ReplicaTag(create_app(load_served_models(self.specs, self.config), self.config, self.split))

    return RewardService


def start_ray_serve(specs: Sequence[str], host: str, port: int, config: ServeConfig, split: QuerySplit,
                    replicas: int) -> Any:
    """Deploy on the connected Ray cluster and return once every replica is up (a `DeploymentHandle`)."""
    from ray import serve

    if replicas < 1:
        raise InvalidValueError("--replicas must be at least 1")
    import ray

    cpus = float(ray.cluster_resources().get("CPU", 1))
    per_replica = min(1.0, cpus / replicas)
    serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
    deployment = reward_deployment(replicas, per_replica)
    bound = deployment.bind(absolute_specs(specs), config, split, max(1, int(per_replica)))
    return serve.run(bound, name=APP_NAME, route_prefix="/")


def serve_on_ray(specs: Sequence[str], host: str, port: int, config: ServeConfig, split: QuerySplit, replicas: int,
                 address: str | None = LOCAL, on_ready: Any = None) -> None:
    """Serve until Ctrl-C or SIGTERM on the Ray cluster at ``address`` (``local``: a Ray instance on this machine)."""
    import signal

    with ray_session(address, num_cpus=max(os.cpu_count() or 1, 1)):
        from ray import serve

        stop = False

        def request_stop(*_: Any) -> None:
            nonlocal stop
            stop = True

        # after ray.init, whose native handler would abort the process with a stack dump on SIGTERM
        previous = signal.signal(signal.SIGTERM, request_stop)
        try:
            start_ray_serve(specs, host, port, config, split, replicas)
            if on_ready and not stop:
                on_ready()
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            serve.shutdown()
