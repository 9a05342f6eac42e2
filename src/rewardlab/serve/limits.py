"""Request limits shared by rewardlab's HTTP services.

`BodyLimit` is plain ASGI middleware that counts request-body bytes as they arrive, so a chunked upload (no
``Content-Length``) is cut off as soon as it passes the limit instead of being read into memory first; a
declared ``Content-Length`` over the limit is refused before anything is read. `clip` shortens text taken
from a request before it goes into an error body, so an error never echoes more than a few hundred bytes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from rewardlab.errors import InvalidValueError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The most characters of request-derived text an error message carries.
ECHO_LIMIT = 200


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, marked with the number left out."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def detail_body(message: str) -> bytes:
    """The ``{"detail": ...}`` error body FastAPI apps use."""
    return json.dumps({"detail": message}).encode()


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413, counting bytes as they arrive.

    After the 413 the application sees the client as gone (``http.disconnect``) and anything it still sends
    is dropped; the connection is closed, so the rest of an over-limit upload is never read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, error_body: Callable[[str], bytes] = detail_body,
                 headers: dict[str, str] | None = None) -> None:
        if max_bytes < 0:
            raise InvalidValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.error_body = error_body
        self.headers = headers or {}

    async def _refuse(self, send: Send) -> None:
        body = self.error_body(f"request body over {self.max_bytes} bytes")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
        if declared and not all(v.strip().isdigit() and int(v) <= self.max_bytes for v in declared):
            await self._refuse(send)
            return

        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; whatever the app makes of the "disconnect" is not sent
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise


@dataclass(frozen=True)
class GenerateLimits:
    """What one request may ask of `rewardlab generate serve` (the CLI's options take their defaults from here).

    ``request_timeout`` counts from the request's arrival, time spent waiting for the model included; a request
    past it is answered 504 and its sampling stops at the next decoding step, so it cannot hold the model for
    everyone else. ``api_key=None`` serves without one (the server binds 127.0.0.1 by default).
    """

    api_key: str | None = None
    max_body_bytes: int = 1024 * 1024
    max_tokens: int = 1024
    max_n: int = 64
    request_timeout: float = 90.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_tokens", "max_n"):
            if getattr(self, name) < 1:
                raise InvalidValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not self.request_timeout > 0:
            raise InvalidValueError(f"request_timeout must be > 0 seconds, not {self.request_timeout}")
