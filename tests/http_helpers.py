"""Running an app on 127.0.0.1 in a thread, and posting chunked bodies: what the HTTP services' tests share."""

from __future__ import annotations

import http.client
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from rewardlab.collect.local_postgres import free_port


@contextmanager
def running(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free 127.0.0.1 port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def send_chunked(base: str, path: str, chunks: Iterator[bytes], headers: dict[str, str] | None = None
                 ) -> tuple[int, bytes, int]:
    """POST a chunked body (no Content-Length), stopping as soon as the server answers: status, body, bytes sent."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    assert conn.sock is not None
    sent = 0
    try:
        for chunk in chunks:
            if select.select([conn.sock], [], [], 0)[0]:
                break
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        else:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, sent
