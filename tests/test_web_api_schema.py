"""The JSON API against its own OpenAPI description: schemathesis generates requests for every operation
(bounded: a few dozen per operation, on 127.0.0.1) and checks that the app never fails with a 5xx, answers
only documented status codes and content types, and that each answer matches its documented schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.web import WebServer
from tests.web_stores import WebStore, build_web_store

pytestmark = pytest.mark.slow

TOKEN = "schema-test-token-" + "0123456789abcdef"
HEADERS = {"X-Invoices-Token": TOKEN}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> WebStore:
    return build_web_store(tmp_path_factory.mktemp("schema") / "store")


@pytest.fixture(scope="module")
def running(built: WebStore) -> Iterator[WebServer]:
    root = built.path.parent
    store = built
    folder = root / "hot"
    for name in ("", "done", "failed", ".processing"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "failed" / "one.pdf").write_bytes(b"%PDF-1.4 broken")
    server = WebServer(str(store.path), "schema-clerk", token=TOKEN, folder=folder).start()
    try:
        yield server
    finally:
        server.close()


def test_the_api_keeps_to_its_openapi_description(
    running: WebServer, built: WebStore, tmp_path: Path
) -> None:
    """``st run`` (schemathesis' own runner) over every operation, bounded and repeatable.

    A real invoice's id goes into the path parameters, so corrections and lookups reach the library
    rather than a 404. A correction may be refused (400) although it fits the schema: whether a value is
    an amount or a date that exists is the field's rule, not the JSON's.
    """
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'"path.document_id" = "{built.ids["vat_e_general.pdf"]}"\n'
        '"path.field" = "buyer_name"\n\n'
        "[[operations]]\n"
        'include-path = "/api/v1/documents/{document_id}/fields/{field}"\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]\n',
        encoding="utf-8",
    )
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        running.address + "/api/v1/openapi.json",
        "--header",
        f"X-Invoices-Token: {TOKEN}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        "--seed",
        "16",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout and "Operations" in run.stdout, run.stdout[-3000:]


def test_the_description_declares_the_token_header(running: WebServer) -> None:
    import httpx

    spec = httpx.get(running.address + "/api/v1/openapi.json", headers=HEADERS, timeout=20).json()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "X-Invoices-Token"}.items() <= next(
        iter(schemes.values())
    ).items()
    assert set(spec["paths"]) >= {
        "/api/v1/search",
        "/api/v1/documents",
        "/api/v1/documents/{document_id}",
        "/api/v1/documents/{document_id}/fields/{field}",
        "/api/v1/uploads/{document_id}",
        "/api/v1/reconciliation",
        "/api/v1/statistics",
    }
