"""A throwaway PostgreSQL server on 127.0.0.1 (initdb in a temp dir, trust auth), removed on exit.

Tests and `benchmarks/annotate_load.py` run the annotation service against a real PostgreSQL with it; it is
also the quickest way to try `rewardlab annotate` on PostgreSQL without touching a system database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rewardlab.errors import RewardlabError

HOST = "127.0.0.1"
PG_BIN = Path(os.environ.get("REWARDLAB_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for the throwaway server to listen on."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yields the server's SQLAlchemy URL without a database name (see `create_database`)."""
    if not (PG_BIN / "initdb").exists():
        raise RewardlabError(f"PostgreSQL binaries not found in {PG_BIN} (set REWARDLAB_PG_BIN)")
    data_dir = Path(tempfile.mkdtemp(prefix="rewardlab-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    port, pg_ctl = free_port(), str(PG_BIN / "pg_ctl")
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(data_dir / "db")]),
                       check=True, capture_output=True)
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data_dir / "db"), "-l", str(data_dir / "log"), "-w", "-o",
                                     f"-p {port} -k {data_dir} -c listen_addresses={HOST} -c fsync=on "
                                     "-c max_connections=300", "start"]),
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@{HOST}:{port}"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data_dir / "db"), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server; returns its URL."""
    import psycopg

    name = name or "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"
