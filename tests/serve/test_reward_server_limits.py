"""`rewardlab serve`'s limits over real HTTP on 127.0.0.1: the API key on every endpoint, the body limit (declared
and chunked), the caps on pairs and text length, bad input as one short 4xx that never echoes it, the time budget
and a full queue."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from http_helpers import running, send_chunked
from rewardlab.rewards.model import RewardModel
from rewardlab.serve.config import ServeConfig
from rewardlab.serve.reward_server import create_app
from rewardlab.serve.scoring import ServedModel

KEY = "k-" + "x" * 30
CONFIG = ServeConfig(api_key=KEY, max_body_bytes=32 * 1024, max_items=4, max_text_chars=1000, request_timeout=5.0)
AUTH = {"Authorization": f"Bearer {KEY}"}
PAIR = {"prompt": "question 1 about bread", "response": "thank you"}
SURROGATE = b'{"items": [{"prompt": "a \\ud800 b", "response": "r"}]}'
BODIES: dict[str, dict[str, Any]] = {
    "/score": {"items": [PAIR]},
    "/compare": {"items": [{"prompt": "q", "a": "thank you", "b": "no"}]},
    "/get_reward": {"query": ["q: a"], "prompts": ["q:"]},
}


class SlowEncoder:
    """The model's encoder with a sleep per call: a hashing model made as slow as a neural one."""

    def __init__(self, encoder: Any) -> None:
        self.inner, self.delay = encoder, 0.0
        self.dim, self.spec = encoder.dim, encoder.spec

    def fingerprint(self) -> str:
        return str(self.inner.fingerprint())

    def encode(self, texts: Any) -> np.ndarray:
        time.sleep(self.delay)
        return np.asarray(self.inner.encode(texts))


@pytest.fixture(scope="module")
def slow_model(model_dirs: dict[str, Path]) -> ServedModel:
    model = RewardModel.load(model_dirs["polite"])
    model.encoder = SlowEncoder(model.encoder)  # type: ignore[assignment]
    return ServedModel("polite", model, config=ServeConfig(cache_size=0, max_queue=8))


@pytest.fixture(scope="module")
def limited(slow_model: ServedModel) -> Iterator[str]:
    with running(create_app([slow_model], CONFIG)) as base:
        yield base


def post(base: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base}{path}", json=body, headers=AUTH if headers is None else headers, timeout=60, **kwargs)


def short_error(reply: httpx.Response, status: int) -> str:
    """The reply is ``status`` with a short ``{"detail": message}``; returns the message."""
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    assert len(reply.content) < 600, reply.text[:300]
    return str(reply.json()["detail"])


def test_every_endpoint_but_health_needs_the_key(limited: str) -> None:
    for path, body in BODIES.items():
        assert post(limited, path, body).status_code == 200, path
        assert post(limited, path, body, headers={"X-API-Key": KEY}).status_code == 200, path
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"},
                        {"Authorization": f"Bearer {KEY}x"}, {"X-API-Key": KEY[:-1]}, {"Authorization": "Bearer"}):
            reply = post(limited, path, body, headers=headers)
            assert "API key" in short_error(reply, 401), (path, headers)
            assert reply.headers["www-authenticate"] == "Bearer"
    for path in ("/models", "/metrics"):
        assert httpx.get(f"{limited}{path}", timeout=30).status_code == 401
        assert httpx.get(f"{limited}{path}", headers=AUTH, timeout=30).status_code == 200
    assert httpx.get(f"{limited}/health", timeout=30).json()["ok"] is True
    # an unauthorised over-limit body is refused without being read either way
    assert post(limited, "/score", content=b"x" * (CONFIG.max_body_bytes + 1), headers={}).status_code in (401, 413)


def test_declared_and_chunked_bodies_over_the_limit_are_413(limited: str) -> None:
    reply = httpx.post(f"{limited}/score", content=b"{" + b" " * CONFIG.max_body_bytes + b"}", headers=AUTH, timeout=30)
    assert str(CONFIG.max_body_bytes) in short_error(reply, 413)

    def long_body(total: int, chunk: int = 4096) -> Iterator[bytes]:
        yield b'{"items": [{"prompt": "q", "response": "'
        for _ in range(total // chunk):
            yield b"a" * chunk
            time.sleep(0.002)
        yield b'"}]}'

    for path in BODIES:
        status, body, sent = send_chunked(limited, path, long_body(16 * CONFIG.max_body_bytes), AUTH)
        assert status == 413, (path, body[:300])
        assert str(CONFIG.max_body_bytes) in json.loads(body)["detail"] and len(body) < 600
        assert sent < 16 * CONFIG.max_body_bytes  # cut off as it arrived, not read to the end
    # a chunked body under the limit is served
    status, body, _ = send_chunked(limited, "/score", iter([b'{"items": [', json.dumps(PAIR).encode(), b"]}"]), AUTH)
    assert status == 200, body[:300]


def test_caps_on_pairs_and_text_length(limited: str) -> None:
    assert "at most 4" in short_error(post(limited, "/score", {"items": [PAIR] * 5}), 400)
    assert post(limited, "/score", {"items": [PAIR] * 4}).status_code == 200
    compare = {"prompt": "q", "a": "x", "b": "y"}
    assert "at most 4" in short_error(post(limited, "/compare", {"items": [compare] * 3}), 400)  # 6 pairs
    assert post(limited, "/compare", {"items": [compare] * 2}).status_code == 200
    assert "at most 4" in short_error(post(limited, "/get_reward", {"query": ["q: a"] * 5, "prompts": ["q:"] * 5}), 400)
    long = "w " * 600
    for path, body, where in (("/score", {"items": [PAIR, {"prompt": "q", "response": long}]}, "items.1.response"),
                              ("/score", {"items": [{"prompt": long, "response": "r"}]}, "items.0.prompt"),
                              ("/compare", {"items": [{"prompt": "q", "a": "x", "b": long}]}, "items.0.b"),
                              ("/get_reward", {"query": ["q: " + long], "prompts": ["q:"]}, "query.0"),
                              ("/get_reward", {"query": ["q: a"], "prompts": [long]}, "prompts.0")):
        message = short_error(post(limited, path, body), 400)
        assert message.startswith(where) and "1000" in message and "w w w" not in message, (path, message)


def test_bad_input_is_one_short_4xx_that_does_not_echo_it(limited: str) -> None:
    secret = "SECRET" * 3000
    bad: list[tuple[str, Any]] = [
        ("/score", b"{not json"), ("/score", b""), ("/score", b"[]"), ("/score", b"null"),
        ("/score", {"items": "x"}), ("/score", {"items": [{"prompt": "p"}]}),
        ("/score", {"items": [{"prompt": 1, "response": "r"}]}),
        ("/score", {"items": [{"prompt": secret, "response": 7}]}), ("/score", {"model": secret, "items": [PAIR]}),
        ("/score", {"model": "nope", "items": [PAIR]}), ("/score", b"[" * 20_000 + b"]" * 20_000),
        ("/score", SURROGATE),
        ("/compare", {"items": [{"prompt": "q", "a": "x"}]}),
        ("/compare", b'{"items": [{"prompt": "q", "a": "\\udfff", "b": "x"}]}'),
        ("/get_reward", {"prompts": ["x"]}), ("/get_reward", {"query": "not a list"}),
        ("/get_reward", {"query": ["q: a", "q: b"], "prompts": ["q:"]}), ("/get_reward", {"query": [secret[:900]]}),
        ("/get_reward", {"query": ["q: a"], "prompts": ["other"]}), ("/get_reward", {"query": [None]}),
        ("/get_reward", b'{"query": [1e999]}'), ("/score", b'{"items": [{"prompt": NaN, "response": "r"}]}'),
    ]
    for path, body in bad:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = httpx.post(f"{limited}{path}", content=content, timeout=30,
                           headers={**AUTH, "Content-Type": "application/json"})
        assert 400 <= reply.status_code < 500, (path, content[:80], reply.status_code, reply.text[:300])
        assert len(reply.content) < 600 and "SECRETSECRET" not in reply.text, (path, reply.text[:300])
    assert "not valid Unicode" in short_error(httpx.post(f"{limited}/score", headers={**AUTH, "Content-Type": "application/json"},
                                                          content=SURROGATE, timeout=30), 400)
    assert short_error(post(limited, "/score", {"model": "nope", "items": [PAIR]}), 404).startswith("model 'nope'")
    # a form body, and the wrong method, are 4xx too
    assert 400 <= httpx.post(f"{limited}/score", data={"items": "x"}, headers=AUTH, timeout=30).status_code < 500
    assert httpx.get(f"{limited}/score", headers=AUTH, timeout=30).status_code == 405
    assert post(limited, "/score", {"items": []}).json()["rewards"] == []  # nothing to score is not an error


def test_a_request_past_its_budget_is_504_and_the_next_is_served(limited: str, slow_model: ServedModel) -> None:
    encoder: SlowEncoder = slow_model.model.encoder  # type: ignore[assignment]
    encoder.delay = CONFIG.request_timeout + 2
    try:
        started = time.monotonic()
        reply = post(limited, "/score", {"items": [{"prompt": "slow", "response": "slow"}]})
        assert "budget" in short_error(reply, 504)
        assert time.monotonic() - started < CONFIG.request_timeout + 1.5  # answered at the budget, not when done
    finally:
        encoder.delay = 0.0
    time.sleep(2.5)  # the batch that timed out finishes in its thread
    assert post(limited, "/score", {"items": [PAIR]}).status_code == 200


def test_a_full_queue_is_503(limited: str, slow_model: ServedModel) -> None:
    encoder: SlowEncoder = slow_model.model.encoder  # type: ignore[assignment]
    encoder.delay = 1.5
    replies: list[httpx.Response] = []
    try:
        # one batch runs (4 pairs); 8 pairs may wait behind it; the rest are refused at once
        threads = [threading.Thread(target=lambda i=i: replies.append(
            post(limited, "/score", {"items": [{"prompt": f"q{i}", "response": f"r{i}"}] * 4}))) for i in range(6)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(timeout=60)
    finally:
        encoder.delay = 0.0
    statuses = sorted(r.status_code for r in replies)
    assert 503 in statuses and 200 in statuses and set(statuses) <= {200, 503, 504}, statuses
    refused = next(r for r in replies if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and "waiting" in short_error(refused, 503)
