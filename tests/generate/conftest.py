"""Generation fixtures: a test server over the tiny GPT-2 (built in tests/conftest.py) on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def tiny_server(tiny_model: Path) -> Iterator[str]:
    """`generate serve`'s app over the tiny model, on a free 127.0.0.1 port; yields the base URL (…/v1)."""
    import uvicorn

    from rewardlab.generate.local import LocalGenerator
    from rewardlab.generate.server import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(LocalGenerator(tiny_model).load(), "tiny"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)
