"""Generation fixtures: a free port (the server over the tiny GPT-2, `tiny_server`, is in tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()
