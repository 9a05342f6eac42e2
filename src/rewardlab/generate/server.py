"""`rewardlab generate serve`: a `LocalGenerator` behind an OpenAI-compatible API.

Only what candidate generation needs: ``POST /v1/chat/completions`` (messages, n, temperature, top_p,
max_tokens / max_completion_tokens, seed; no streaming, tools or logprobs) and ``GET /v1/models``. Any
OpenAI client — ours included — can then sample from a local model, so one code path serves local and
hosted models. Requests run one at a time (the generator holds a lock): a CPU model gains nothing from
overlapping them, and a seeded request stays reproducible.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rewardlab.generate.base import GenerationError, SamplingParams
from rewardlab.generate.local import LocalGenerator

DEFAULT_MAX_TOKENS = 256
MAX_N = 64


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
    n: int | None = Field(default=1, ge=1, le=MAX_N)
    temperature: float | None = Field(default=1.0, ge=0, le=2)
    top_p: float | None = Field(default=1.0, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stream: bool | None = False


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None) -> JSONResponse:
    """Errors in OpenAI's shape, so OpenAI clients raise their usual exception with our message."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status_code=status)


def create_app(generator: LocalGenerator, model_name: str | None = None) -> FastAPI:
    """The API over ``generator``; ``model_name`` is the id clients see (default: the generator's id)."""
    name = model_name or generator.id
    created = int(time.time())
    app = FastAPI(title="rewardlab generate", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
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

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(body: ChatRequest) -> dict[str, Any] | JSONResponse:
        # a plain `def`: FastAPI runs it in a worker thread, so sampling does not block the event loop
        if body.stream:
            return _error(400, "streaming is not supported by this server", param="stream")
        chat = [{"role": m.role, "content": m.text()} for m in body.messages]
        prompt_tokens = generator.count_prompt_tokens(chat)
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
        context = generator.context_length
        if context is not None:  # like hosted APIs: the answer gets what the prompt leaves of the context
            if prompt_tokens >= context:
                return _error(400, f"the prompt has {prompt_tokens} tokens; this model's context is {context}",
                              param="messages")
            max_tokens = min(max_tokens, context - prompt_tokens)
        params = SamplingParams(n=body.n or 1, temperature=1.0 if body.temperature is None else body.temperature,
                                top_p=body.top_p or 1.0, max_new_tokens=max_tokens, seed=body.seed)
        completions = generator.complete([chat], params)[0]
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

    return app


def serve(generator: LocalGenerator, host: str = "127.0.0.1", port: int = 8001, model_name: str | None = None) -> None:
    """Load the model, then serve it with uvicorn (blocking)."""
    import uvicorn

    uvicorn.run(create_app(generator.load(), model_name), host=host, port=port, log_level="warning")
