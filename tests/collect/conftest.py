"""Real databases for the annotation tests: a SQLite file per test, and a PostgreSQL server the suite starts
itself on 127.0.0.1 (initdb in a temp dir), with a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardlab.collect.local_postgres import PG_BIN, create_database, throwaway_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Base URL (no database) of a throwaway PostgreSQL 15 server on 127.0.0.1."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN} (set REWARDLAB_PG_BIN)")
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes ``db_url`` runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "annotations.db")
    return create_database(request.getfixturevalue("postgres_server"))
