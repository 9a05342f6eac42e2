"""`rewardlab generate serve`: a `LocalGenerator` behind an OpenAI-compatible API.

Only what candidate generation needs: ``POST /v1/chat/completions`` (messages, n, temperature, top_p,
max_tokens / max_completion_tokens, seed; no streaming, tools or logprobs) and ``GET /v1/models``. Any
OpenAI client — ours included — can then sample from a local model, so one code path serves local and
hosted models. Requests run one at a time (the generator holds a lock): a CPU model gains nothing from
overlapping them, and a seeded request stays reproducible.

Every request is bounded (`GenerateLimits`): the body is counted as it arrives, ``max_tokens`` and ``n`` have
caps, and a request gets a time budget from its arrival. A request past its budget is answered 504 and its
sampling is stopped at the next decoding step (a forward pre-hook on the model checks the budget of the
request its thread serves), so it releases the model to the requests behind it. SIGTERM stops sampling the
same way, so the server exits within seconds. An optional API key is checked on every endpoint.
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
import weakref
from types import FrameType
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rewardlab.generate.base import Completion, GenerationError, SamplingParams
from rewardlab.generate.local import LocalGenerator
from rewardlab.serve.limits import BodyLimit, GenerateLimits, clip

DEFAULT_MAX_TOKENS = 256
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed takes
SHUTDOWN_GRACE_S = 3  # after SIGTERM, how long open connections get before uvicorn drops them


class Cancelled(Exception):
    """Raised inside the model's forward pass to stop a request's sampling (budget spent or server stopping)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Budget(threading.local):
    """The budget of the request the current worker thread samples for (none outside a request)."""

    deadline: float | None = None
    cancel: threading.Event | None = None
    stopping: threading.Event | None = None


_budget = _Budget()
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()


def _check_budget(*_: Any) -> None:
    """Forward pre-hook: every decoding step of a request ends here first."""
    if _budget.stopping is not None and _budget.stopping.is_set():
        raise Cancelled("stopping")
    if (_budget.cancel is not None and _budget.cancel.is_set()) or (
            _budget.deadline is not None and time.monotonic() > _budget.deadline):
        raise Cancelled("timeout")


def _watch_decoding_steps(generator: LocalGenerator) -> None:
    """Hook `_check_budget` onto the generator's model once (no-op for calls made outside a request)."""
    model = generator.load()._model  # the module the generator samples from; the hook is all we add to it
    if model not in _hooked:
        model.register_forward_pre_hook(_check_budget)
        _hooked.add(model)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = Field(min_length=1, max_length=64)
    # a string, or OpenAI's list of content parts ({"type": "text", "text": ...})
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. a client's `user` or `metadata`: harmless to drop

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    n: int | None = Field(default=1, ge=1)  # capped by `GenerateLimits.max_n`
    temperature: float | None = Field(default=1.0, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1)  # capped by `GenerateLimits.max_tokens`
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    stream: bool | None = False


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> JSONResponse:
    """Errors in OpenAI's shape, so OpenAI clients raise their usual exception with our message."""
    return JSONResponse({"error": {"message": clip(message, 300), "type": kind, "param": param, "code": None}},
                        status_code=status)


def _error_body(message: str) -> bytes:
    return bytes(_error(413, message).body)


def create_app(generator: LocalGenerator, model_name: str | None = None, limits: GenerateLimits | None = None,
               stopping: threading.Event | None = None) -> FastAPI:
    """The API over ``generator``; ``model_name`` is the id clients see (default: the generator's id).

    ``stopping``, once set, stops every request's sampling at its next decoding step (`serve` sets it on SIGTERM).
    """
    name = model_name or generator.id
    limits = limits or GenerateLimits()
    stopping = stopping or threading.Event()
    created = int(time.time())
    _watch_decoding_steps(generator)
    app = FastAPI(title="rewardlab generate", docs_url=None, redoc_url=None)
    app.state.limits, app.state.stopping = limits, stopping
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, error_body=_error_body)

    @app.middleware("http")
    async def api_key(request: Request, call_next: Any) -> Any:
        if limits.api_key is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {limits.api_key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return _error(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                              kind="authentication_error")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = clip(".".join(str(p) for p in first.get("loc", ())[1:]), 80) or None
        return _error(400, f"{param or 'request'}: {first.get('msg', 'invalid request')}", param=param)

    @app.exception_handler(GenerationError)
    async def generation_error(_: Request, exc: GenerationError) -> JSONResponse:
        return _error(400, str(exc))

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "rewardlab"}]}

    @app.get("/v1/models/{model_id}", response_model=None)
    def model(model_id: str) -> dict[str, Any] | JSONResponse:
        if model_id != name:
            return _error(404, f"model {model_id!r} not found; this server has {name!r}", param="model")
        return {"id": name, "object": "model", "created": created, "owned_by": "rewardlab"}

    def sample(body: ChatRequest, deadline: float, cancel: threading.Event) -> dict[str, Any] | JSONResponse:
        """The blocking part, in a worker thread: tokenize, check the budget of tokens, sample."""
        chat = [{"role": m.role, "content": m.text()} for m in body.messages]
        for i, message in enumerate(chat):
            try:
                message["content"].encode("utf-8")
            except UnicodeEncodeError:  # JSON can carry a lone surrogate ("\ud800"); no tokenizer takes one
                return _error(400, f"messages.{i}.content: not valid Unicode text (a lone surrogate)",
                              param=f"messages.{i}.content")
        prompt_tokens = generator.count_prompt_tokens(chat)
        max_tokens = body.max_completion_tokens or body.max_tokens or min(DEFAULT_MAX_TOKENS, limits.max_tokens)
        context = generator.context_length
        if context is not None:  # like hosted APIs: the answer gets what the prompt leaves of the context
            if prompt_tokens >= context:
                return _error(400, f"the prompt has {prompt_tokens} tokens; this model's context is {context}",
                              param="messages")
            max_tokens = min(max_tokens, context - prompt_tokens)
        params = SamplingParams(n=body.n or 1, temperature=1.0 if body.temperature is None else body.temperature,
                                top_p=body.top_p or 1.0, max_new_tokens=max_tokens, seed=body.seed)
        _budget.deadline, _budget.cancel, _budget.stopping = deadline, cancel, stopping
        try:
            completions: list[Completion] = generator.complete([chat], params)[0]
        finally:
            _budget.deadline = _budget.cancel = _budget.stopping = None
        completion_tokens = sum(c.completion_tokens for c in completions)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "system_fingerprint": generator.id,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason,
                 "logprobs": None}
                for i, c in enumerate(completions)
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> dict[str, Any] | JSONResponse:
        deadline = time.monotonic() + limits.request_timeout
        if body.stream:
            return _error(400, "streaming is not supported by this server", param="stream")
        for field, value, cap in (("n", body.n, limits.max_n), ("max_tokens", body.max_tokens, limits.max_tokens),
                                  ("max_completion_tokens", body.max_completion_tokens, limits.max_tokens)):
            if value is not None and value > cap:
                return _error(400, f"{field}: at most {cap} on this server, not {clip(str(value), 40)}", param=field)
        if stopping.is_set():
            return _error(503, "the server is shutting down", kind="server_error")
        cancel = threading.Event()
        timed_out = _error(504, f"the request ran past this server's {limits.request_timeout:g} s budget (waiting for "
                                "the model included); ask for fewer tokens or samples", kind="timeout")
        try:
            # sampling blocks, so it runs in a worker thread; on timeout we stop waiting for it at once and the
            # thread stops sampling at its next decoding step (or as soon as it gets the model, if it was queued)
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                return await anyio.to_thread.run_sync(sample, body, deadline, cancel, abandon_on_cancel=True)
        except TimeoutError:
            cancel.set()
            return timed_out
        except Cancelled as exc:
            if exc.reason == "stopping":
                return _error(503, "the server is shutting down", kind="server_error")
            return timed_out

    return app


def make_server(app: FastAPI, host: str, port: int, stopping: threading.Event) -> Any:
    """A uvicorn server whose exit signals (SIGTERM, Ctrl-C) also set ``stopping``, so sampling in flight ends at
    its next decoding step, and which gives open connections `SHUTDOWN_GRACE_S` seconds before closing them."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            stopping.set()
            super().handle_exit(sig, frame)

    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                 timeout_graceful_shutdown=SHUTDOWN_GRACE_S))


def serve(generator: LocalGenerator, host: str = "127.0.0.1", port: int = 8001, model_name: str | None = None,
          limits: GenerateLimits | None = None) -> None:
    """Load the model, then serve it with uvicorn (blocking) until SIGTERM or Ctrl-C."""
    stopping = threading.Event()
    make_server(create_app(generator.load(), model_name, limits, stopping), host, port, stopping).run()
