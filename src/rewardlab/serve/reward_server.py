"""`rewardlab serve`: reward models over HTTP, for trainers (OpenRLHF's remote RM, TRL reward functions) and apps.

Endpoints (JSON; every one but ``/health`` needs the API key when the server has one):

- ``POST /score`` ``{"model"?, "items": [{"prompt", "response"}, ...]}`` → ``{"model", "rewards": [...]}``, plus
  ``mean``, ``std``, ``min`` and ``lcb`` lists for an ensemble (`RewardModel.score_stats`);
- ``POST /compare`` ``{"model"?, "items": [{"prompt", "a", "b"}, ...]}`` → ``{"model", "probabilities",
  "rewards_a", "rewards_b"}``: P(a ≻ b) = sigmoid(r(a) − r(b)), the Bradley-Terry probability the model was trained
  to give and whose calibration `rewardlab evaluate` reports (ECE);
- ``POST /get_reward[?model=NAME]`` ``{"query": [...], "prompts"?: [...], "labels"?: [...]}`` → ``{"rewards",
  "scores", "extra_logs"}``: OpenRLHF's remote reward-model protocol; each query is cut into prompt and response as
  `rewardlab.serve.config.QuerySplit` says;
- ``GET /health`` (no key), ``GET /models``, ``GET /metrics`` (Prometheus text).

``model`` names one of the served models; without it a request goes to the first one given. A request's pairs
are micro-batched with concurrent requests' (`rewardlab.serve.batching`) and their feature rows cached
(`rewardlab.serve.scoring`); the numbers are those of in-process ``RewardModel.score_stats`` on the same pairs.

Every request is bounded (`ServeConfig`): the body is counted as it arrives (chunked too), the pairs per request
and the characters per text have caps, a request has a time budget from its arrival (504 past it), and a full
queue is a 503. A bad request gets one 4xx whose message never carries more than a few hundred characters of it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from rewardlab.errors import InvalidValueError, RewardlabError
from rewardlab.evaluate.pairwise import preference_probability
from rewardlab.serve.batching import Busy
from rewardlab.serve.config import QuerySplit, ServeConfig
from rewardlab.serve.limits import BodyLimit, Message, Receive, Scope, Send, clip
from rewardlab.serve.metrics import CONTENT_TYPE, Metrics
from rewardlab.serve.scoring import Pairs, ServedModel, SplitError, split_query

ENDPOINTS = ("/score", "/compare", "/get_reward", "/health", "/models", "/metrics")
OPEN_PATHS = frozenset({"/health"})
MODEL_NAME_CHARS = 200


class ServeError(Exception):
    """A request the service refuses: ``status`` and a message (already cut short)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = clip(message, 300)
        self.headers = headers


class PairItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: StrictStr
    response: StrictStr


class CompareItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: StrictStr
    a: StrictStr
    b: StrictStr


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(default=None, max_length=MODEL_NAME_CHARS)
    items: list[PairItem]


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(default=None, max_length=MODEL_NAME_CHARS)
    items: list[CompareItem]


class RewardRequest(BaseModel):
    """What OpenRLHF's remote RM client posts; ``labels`` (and anything else) is accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    query: list[StrictStr]
    prompts: list[StrictStr] | None = None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": clip(message, 300)}, status_code=status, headers=headers)


def _key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class Guard:
    """ASGI middleware: the API key (constant-time), the request's time budget, and its metrics.

    The key is taken from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; both sides are hashed before
    `hmac.compare_digest`, so the comparison takes the same time whatever the key's length. The budget counts
    from the request's arrival and covers reading the body and waiting for the model; past it the request is
    cancelled and answered 504 (a batch already running finishes, but its result for this request is dropped).
    """

    def __init__(self, app: Any, config: ServeConfig, metrics: Metrics) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.key = None if config.api_key is None else _key_digest(config.api_key)

    def _authorized(self, scope: Scope) -> bool:
        if self.key is None or scope.get("path") in OPEN_PATHS:
            return True
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        given = headers.get(b"x-api-key")
        if given is None:
            auth = headers.get(b"authorization", b"")
            given = auth[7:] if auth[:7].lower() == b"bearer " else b""
        return hmac.compare_digest(hashlib.sha256(given.strip()).digest(), self.key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        status = 500
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            await send(message)

        async def answer(code: int, message: str, headers: dict[str, str] | None = None) -> None:
            await _error(code, message, headers)(scope, receive, watched_send)

        try:
            if not self._authorized(scope):
                await answer(401, "missing or wrong API key (send Authorization: Bearer <key> or X-API-Key: <key>)",
                             {"WWW-Authenticate": "Bearer"})
                return
            with anyio.move_on_after(self.config.request_timeout) as budget:
                await self.app(scope, receive, watched_send)
            if budget.cancelled_caught and not started:
                await answer(504, f"the request ran past this server's {self.config.request_timeout:g} s budget "
                                  "(reading the body and waiting for the model included)")
        finally:
            self.metrics.observe(str(scope.get("path", "")), status, time.perf_counter() - arrived)


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON numbers (a non-finite reward, which no head should give, is null rather than invalid JSON)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def create_app(models: Sequence[ServedModel], config: ServeConfig | None = None,
               split: QuerySplit | None = None) -> FastAPI:
    """The service over ``models`` (the first is the default); ``config`` bounds requests, ``split`` cuts queries."""
    if not models:
        raise InvalidValueError("serve at least one model")
    config = config or ServeConfig()
    split = split or QuerySplit()
    by_name = {m.name: m for m in models}
    if len(by_name) != len(models):
        raise InvalidValueError(f"model names must differ: {[m.name for m in models]}")
    default = models[0]
    metrics = Metrics(ENDPOINTS)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for model in models:
            await model.batcher.close()

    app = FastAPI(title="rewardlab serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.models, app.state.config, app.state.split, app.state.metrics = by_name, config, split, metrics
    # added innermost first: Guard (key, budget, metrics) outermost, so it times and counts the 413s too
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(Guard, config=config, metrics=metrics)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """One 400 naming the first bad field, without the ``input`` FastAPI would echo back."""
        first = exc.errors()[0] if exc.errors() else {}
        where = clip(".".join(str(p) for p in first.get("loc", ())[1:]), 80) or "body"
        return _error(400, f"{where}: {clip(str(first.get('msg', 'invalid request')), 120)}")

    @app.exception_handler(ServeError)
    async def refused(_: Request, exc: ServeError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    def pick(name: str | None) -> ServedModel:
        if name is None:
            return default
        if name not in by_name:
            raise ServeError(404, f"model {clip(name, 80)!r} is not served here; models: {', '.join(by_name)}")
        return by_name[name]

    def check(count: int, what: str, texts: Sequence[tuple[str, str]]) -> None:
        """The caps: ``count`` pairs per request, characters per text; and text a tokenizer can take."""
        if count > config.max_items:
            raise ServeError(400, f"{what}: {count} pairs to score; this server takes at most {config.max_items} "
                                  "per request")
        for where, text in texts:
            if len(text) > config.max_text_chars:
                raise ServeError(400, f"{where}: {len(text)} characters; this server takes at most "
                                      f"{config.max_text_chars}")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ServeError(400, f"{where}: not valid Unicode text (a lone surrogate)") from None

    async def scored(model: ServedModel, pairs: Pairs) -> dict[str, np.ndarray]:
        try:
            return await model.score(pairs)
        except Busy as exc:
            raise ServeError(503, str(exc), {"Retry-After": "1"}) from None
        except RewardlabError as exc:
            raise ServeError(400, f"the model cannot score this request: {exc}") from None

    @app.post("/score")
    async def score(body: ScoreRequest) -> dict[str, Any]:
        model = pick(body.model)
        pairs = [(item.prompt, item.response) for item in body.items]
        check(len(pairs), "items", [(f"items.{i}.{field}", getattr(item, field)) for i, item in enumerate(body.items)
                                    for field in ("prompt", "response")])
        stats = await scored(model, pairs)
        reply: dict[str, Any] = {"model": model.name, "rewards": _floats(stats["score"])}
        if model.model.is_ensemble:
            reply.update({key: _floats(stats[key]) for key in ("mean", "std", "min", "lcb")})
        return reply

    @app.post("/compare")
    async def compare(body: CompareRequest) -> dict[str, Any]:
        model = pick(body.model)
        pairs = [(item.prompt, item.a) for item in body.items] + [(item.prompt, item.b) for item in body.items]
        check(len(pairs), "items", [(f"items.{i}.{field}", getattr(item, field)) for i, item in enumerate(body.items)
                                    for field in ("prompt", "a", "b")])
        rewards = (await scored(model, pairs))["score"]
        n = len(body.items)
        return {"model": model.name, "probabilities": _floats(preference_probability(rewards[:n], rewards[n:])),
                "rewards_a": _floats(rewards[:n]), "rewards_b": _floats(rewards[n:])}

    @app.post("/get_reward")
    async def get_reward(body: RewardRequest, model: str | None = None) -> dict[str, Any]:
        served = pick(model)
        if body.prompts is not None and len(body.prompts) != len(body.query):
            raise ServeError(400, f"prompts: {len(body.prompts)} prompts for {len(body.query)} queries")
        check(len(body.query), "query", [(f"query.{i}", q) for i, q in enumerate(body.query)]
              + [(f"prompts.{i}", p) for i, p in enumerate(body.prompts or [])])
        pairs = []
        for i, query in enumerate(body.query):
            try:
                pairs.append(split_query(query, None if body.prompts is None else body.prompts[i], split))
            except SplitError as exc:
                raise ServeError(400, f"query.{i}: {exc}") from None
        stats = await scored(served, pairs)
        rewards = _floats(stats["score"])
        extra = {"reward_std": _floats(stats["std"])} if served.model.is_ensemble else {}
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "models": len(models)}

    @app.get("/models")
    def list_models() -> dict[str, Any]:
        return {"default": default.name, "models": [m.describe() for m in models],
                "limits": {"max_items": config.max_items, "max_text_chars": config.max_text_chars,
                           "max_body_bytes": config.max_body_bytes, "request_timeout": config.request_timeout}}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(models), media_type=CONTENT_TYPE)

    return app


def serve(models: Sequence[ServedModel], host: str = "127.0.0.1", port: int = 8002, config: ServeConfig | None = None,
          split: QuerySplit | None = None) -> None:
    """Serve ``models`` with uvicorn (blocking) until SIGTERM or Ctrl-C."""
    import uvicorn

    uvicorn.run(create_app(models, config, split), host=host, port=port, log_level="warning", timeout_keep_alive=30,
                timeout_graceful_shutdown=3)


__all__ = ["ServeError", "create_app", "serve"]
