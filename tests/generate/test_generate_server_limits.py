"""`generate serve`'s limits over real HTTP on 127.0.0.1: body size counted as it arrives (chunked too), caps on
max_tokens and n, a time budget whose expiry frees the model for the next request, an optional API key, errors
that do not echo their input, a clear 400 for out-of-range numbers, and SIGTERM that stops it within 5 s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from http_helpers import running, send_chunked
from rewardlab.collect.local_postgres import free_port
from rewardlab.generate.local import LocalGenerator
from rewardlab.generate.openai_client import OpenAIGenerator
from rewardlab.generate.server import create_app
from rewardlab.serve.limits import GenerateLimits

HELLO = [{"role": "user", "content": "hello"}]


class SlowModel:
    """A forward pre-hook that sleeps ``delay`` seconds per decoding step: the tiny model made as slow as a big one."""

    def __init__(self) -> None:
        self.delay = 0.0

    def __call__(self, *_: Any) -> None:
        if self.delay:
            time.sleep(self.delay)


@pytest.fixture(scope="module")
def slow() -> SlowModel:
    return SlowModel()


@pytest.fixture(scope="module")
def generator(tiny_model: Path, slow: SlowModel) -> LocalGenerator:
    """A generator of this module's own (the session's `tiny_server` is left alone), with a speed knob."""
    generator = LocalGenerator(tiny_model).load()
    generator._model.register_forward_pre_hook(slow)
    return generator


LIMITS = GenerateLimits(max_body_bytes=64 * 1024, max_tokens=32, max_n=4, request_timeout=8.0)


@pytest.fixture(scope="module")
def limited(generator: LocalGenerator) -> Iterator[str]:
    with running(create_app(generator, "tiny", LIMITS)) as base:
        yield base


def chat(base: str, timeout: float = 60, **fields: Any) -> httpx.Response:
    return httpx.post(f"{base}/v1/chat/completions", json={"messages": HELLO, **fields}, timeout=timeout)


def long_message(total: int, chunk: int = 8 * 1024) -> Iterator[bytes]:
    yield b'{"messages": [{"role": "user", "content": "'
    for _ in range(total // chunk):
        yield b"a" * chunk
        time.sleep(0.002)
    yield b'"}]}'


def test_chunked_body_over_the_limit_is_refused_as_it_arrives(limited: str) -> None:
    status, body, sent = send_chunked(limited, "/v1/chat/completions", long_message(16 * LIMITS.max_body_bytes))
    assert status == 413, body[:300]
    assert str(LIMITS.max_body_bytes) in json.loads(body)["error"]["message"]
    assert sent < 16 * LIMITS.max_body_bytes


def test_default_body_limit_holds_for_chunked_bodies(generator: LocalGenerator) -> None:
    limit = GenerateLimits().max_body_bytes
    with running(create_app(generator, "tiny")) as base:
        status, body, sent = send_chunked(base, "/v1/chat/completions", long_message(4 * limit, 64 * 1024))
    assert status == 413 and sent < 4 * limit, body[:300]


def test_token_and_sample_caps(limited: str, generator: LocalGenerator) -> None:
    for fields, param in (({"max_tokens": 2**70, "n": 8}, "n"), ({"max_tokens": 2**70}, "max_tokens"),
                          ({"max_completion_tokens": 33}, "max_completion_tokens"), ({"n": 5}, "n")):
        reply = chat(limited, **fields)
        assert reply.status_code == 400 and reply.json()["error"]["param"] == param, (fields, reply.text[:300])
        assert len(reply.content) < 1000
    reply = chat(limited, max_tokens=1, n=4, seed=1)
    assert reply.status_code == 200 and len(reply.json()["choices"]) == 4, reply.text[:300]
    reply = chat(limited, max_tokens=32, n=1, seed=1)
    assert reply.status_code == 200, reply.text[:300]
    with running(create_app(generator, "tiny")) as base:  # the defaults: 1,024 tokens, 64 samples
        for fields, status in (({"max_tokens": 1025}, 400), ({"n": 65, "max_tokens": 1}, 400),
                               ({"max_tokens": 1024, "n": 1}, 200)):  # 1,024 is then cut to the tiny model's context
            reply = chat(base, **fields)
            assert reply.status_code == status, (fields, reply.text[:300])


def test_out_of_range_numbers_are_400s(limited: str) -> None:
    for fields in ({"seed": 2**70}, {"seed": -(2**70)}, {"max_tokens": 0}, {"n": 0}):
        reply = chat(limited, max_tokens=fields.pop("max_tokens", 2), **fields)
        assert reply.status_code == 400, (fields, reply.text[:300])
    for raw in ('"temperature": NaN', '"top_p": NaN', '"temperature": Infinity', '"max_tokens": 2, "n": "\\ud800"'):
        reply = httpx.post(f"{limited}/v1/chat/completions", timeout=60, headers={"Content-Type": "application/json"},
                           content=f'{{"messages": [{{"role": "user", "content": "hi"}}], {raw}}}')
        assert reply.status_code == 400, (raw, reply.text[:300])
    reply = httpx.post(f"{limited}/v1/chat/completions", timeout=60, headers={"Content-Type": "application/json"},
                       content=b'{"messages": [{"role": "user", "content": "a \\ud800 b"}], "max_tokens": 2}')
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "messages.0.content", reply.text[:300]
    assert chat(limited, seed=2**64 - 1, max_tokens=2).status_code == 200


def test_errors_do_not_echo_the_input(limited: str) -> None:
    reply = httpx.get(f"{limited}/v1/models/{'m' * 5000}", timeout=30)
    assert reply.status_code == 404 and len(reply.content) < 1000
    reply = httpx.post(f"{limited}/v1/chat/completions", timeout=30,
                       json={"messages": [{"role": "r" * 20_000, "content": "hi"}]})
    assert reply.status_code == 400 and len(reply.content) < 1000 and "rrrrr" not in reply.text


def test_a_timed_out_request_is_cancelled_and_frees_the_model(limited: str, slow: SlowModel) -> None:
    slow.delay = 0.5  # 32 tokens × 0.5 s: far past the 8 s budget
    try:
        started = time.monotonic()
        reply = chat(limited, max_tokens=32, n=4, temperature=1.0, seed=0)
        assert reply.status_code == 504 and reply.json()["error"]["type"] == "timeout", reply.text[:300]
        assert time.monotonic() - started < LIMITS.request_timeout + 5  # at the budget, not at the end
        # had the timed-out sampling gone on holding the model, this one would time out too
        reply = chat(limited, max_tokens=1, n=1, seed=0)
        assert reply.status_code == 200, reply.text[:300]
    finally:
        slow.delay = 0.0


def test_a_request_waiting_behind_a_timed_out_one_gets_the_model(limited: str, slow: SlowModel) -> None:
    slow.delay = 0.5
    replies: dict[str, httpx.Response] = {}
    try:
        first = threading.Thread(target=lambda: replies.setdefault("long", chat(limited, max_tokens=32, n=4, seed=0)))
        first.start()
        time.sleep(4)  # the long request holds the model; this one queues behind it, with 4 s of budget to spare
        replies["short"] = chat(limited, max_tokens=1, n=1, seed=0)
        first.join(timeout=60)
    finally:
        slow.delay = 0.0
    assert replies["long"].status_code == 504
    assert replies["short"].status_code == 200, replies["short"].text[:300]


def test_api_key(generator: LocalGenerator) -> None:
    with running(create_app(generator, "tiny", GenerateLimits(api_key="s3cret"))) as base:
        assert httpx.get(f"{base}/v1/models").status_code == 401
        assert httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(f"{base}/v1/chat/completions", json={"messages": HELLO}).status_code == 401
        assert httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        client = OpenAIGenerator("tiny", f"{base}/v1", api_key="s3cret", timeout=30, max_retries=0)
        assert len(client.generate(["hi"], n=2, max_new_tokens=3)[0]) == 2


SERVE_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rewardlab.generate.local import LocalGenerator
    from rewardlab.generate.server import serve

    model, port, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    generator = LocalGenerator(model).load()

    def slow(*_):  # a big model's pace: 0.2 s a step, so a 100-token answer takes 20 s
        marker.touch()
        time.sleep(0.2)

    generator._model.register_forward_pre_hook(slow)
    serve(generator, "127.0.0.1", port, "tiny")
""")


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_stops_the_server_within_5_s_while_it_samples(tiny_model: Path, tmp_path: Path) -> None:
    port, marker = free_port(), tmp_path / "sampling"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT, str(tiny_model), str(port), str(marker)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 120, "the server to start")
        replies: list[Any] = []

        def long_request() -> None:
            try:
                replies.append(chat(f"http://127.0.0.1:{port}", timeout=120, max_tokens=100, n=4, seed=0).status_code)
            except httpx.TransportError as exc:
                replies.append(exc)

        thread = threading.Thread(target=long_request, daemon=True)
        thread.start()
        wait_for(marker.exists, 60, "sampling to start")
        time.sleep(0.5)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("the server was still running 5 s after SIGTERM")
        assert time.monotonic() - signalled < 5
        thread.join(timeout=10)
        assert replies and replies[0] != 200  # the request was stopped, not finished
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
