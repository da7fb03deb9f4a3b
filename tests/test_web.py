"""The web app (``invoices serve``) over real HTTP on 127.0.0.1: search, invoice, statistics, folder,
the JSON API, the language switch and the security rules. The store is filled from the text-layer PDF
samples (real extraction, no OCR) plus one invoice whose seller is named ``<script>``."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.errors import ConfigError
from pipeline.store import open_store
from pipeline.web import WebServer
from tests.conftest import SAMPLES
from tests.web_stores import (
    PDF_SAMPLES,
    SCRIPT_SELLER,
    WebStore,
    build_web_store,
    expected_fields,
    platform_and_ledger,
)


class App:
    """A running app and a client: pages under /<token>/, the API with the token header."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.http = httpx.Client(timeout=30, follow_redirects=False)

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.server.url + path.lstrip("/"), **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Invoices-Token": self.server.token, **kwargs.pop("headers", {})}
        return self.http.request(method, self.server.address + "/api/v1" + path, headers=headers, **kwargs)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> WebStore:
    return build_web_store(tmp_path_factory.mktemp("web") / "store")


@pytest.fixture
def fresh_store(tmp_path: Path) -> WebStore:
    return build_web_store(tmp_path / "store")


def start(store: WebStore, **kwargs: Any) -> App:
    opener: Any = str(store.path) if store.index is None else store.open
    return App(WebServer(opener, "web-clerk", **kwargs).start())


@pytest.fixture(scope="module")
def app(web_store: WebStore) -> Iterator[App]:
    running = start(web_store)
    try:
        yield running
    finally:
        running.close()
        running.server.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[App, WebStore]]:
    """The same store on each index backend (SQLite beside the store, or PostgreSQL), served."""
    index = None if request.param == "sqlite" else request.getfixturevalue("postgres").create_database()
    store = build_web_store(tmp_path_factory.mktemp(f"web-{request.param}") / "store", index)
    running = start(store)
    try:
        yield running, store
    finally:
        running.close()
        running.server.close()


@pytest.fixture
def writable(fresh_store: WebStore, tmp_path: Path) -> Iterator[tuple[App, WebStore, Path]]:
    folder = tmp_path / "hot"
    for name in ("", "done", "failed", ".processing"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    running = start(fresh_store, folder=folder)
    try:
        yield running, fresh_store, folder
    finally:
        running.close()
        running.server.close()


def results(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [row["source_name"] for row in answer.json()["results"]]


# ---- security ----------------------------------------------------------------------------------


def test_every_page_and_api_call_needs_the_token(app: App, web_store: WebStore) -> None:
    server = app.server
    doc = web_store.ids["vat_e_general.pdf"]
    address = server.address
    for path in ("search", f"invoice/{doc}", "stats", "folder", "review", f"documents/{doc}/pages/0.png"):
        assert app.page(path).status_code == 200, path
        assert app.http.get(f"{address}/{path}").status_code == 403, path
        assert app.http.get(f"{address}/wrong-token/{path}").status_code == 403, path
        assert app.http.get(f"{address}/{server.token[:-1]}/{path}").status_code == 403, path
    for path in ("/search", f"/documents/{doc}", "/openapi.json", "/statistics"):
        assert app.api("GET", path).status_code == 200, path
        denied = app.http.get(f"{address}/api/v1{path}")
        assert denied.status_code == 403 and "token" in denied.json()["error"], path
        # Not in the query string, not in a cookie, not in the path: only the header counts.
        assert app.http.get(f"{address}/api/v1{path}?token={server.token}").status_code == 403
        assert (
            app.http.get(f"{address}/api/v1{path}", headers={"Cookie": f"token={server.token}"}).status_code
            == 403
        )
        assert app.http.get(f"{address}/{server.token}/api/v1{path}").status_code == 404
    bearer = app.http.get(f"{address}/api/v1/search", headers={"Authorization": f"Bearer {server.token}"})
    assert bearer.status_code == 200
    # DNS rebinding: a page of another name that resolves to 127.0.0.1 gets nothing.
    assert app.page("search", headers={"Host": "evil.example"}).status_code == 403
    assert app.api("GET", "/search", headers={"Host": "evil.example:80"}).status_code == 403


def test_a_write_needs_the_header_and_the_same_origin(writable: tuple[App, WebStore, Path]) -> None:
    app, store, _ = writable
    doc = store.ids["vat_e_general.pdf"]
    url = f"/documents/{doc}/fields/seller_name"
    body = {"value": "北京智源医疗器械有限公司"}

    def history() -> list[Any]:
        return app.server.call(lambda s: s.review_records(doc))  # type: ignore[no-any-return]

    # Another site's page: a form post (no header possible), or a script sending its own Origin.
    form = app.http.post(app.server.url + "api/v1" + url, data={"value": "x"})
    assert form.status_code == 403
    no_header = app.http.post(app.server.address + "/api/v1" + url, json=body)
    assert no_header.status_code == 403
    evil = app.api("POST", url, json=body, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-origin" in evil.json()["error"]
    other_port = app.api("POST", url, json=body, headers={"Origin": "http://127.0.0.1:1"})
    assert other_port.status_code == 403
    site = app.api("POST", url, json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert site.status_code == 403
    preflight = app.http.options(
        app.server.address + "/api/v1" + url,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    retry = app.http.post(app.server.address + "/api/v1/folder/retry", json={"name": "x.pdf"})
    assert retry.status_code == 403
    assert history() == []
    # The same request from the app's own page goes through.
    same = app.api("POST", url, json=body, headers={"Origin": app.server.address})
    assert same.status_code == 200, same.text
    assert len(history()) == 1


def test_markup_in_a_value_is_shown_as_text(app: App, web_store: WebStore) -> None:
    pages = {
        "search": app.page("search", params={"q": "script"}),
        "all": app.page("search"),
        "invoice": app.page(f"invoice/{web_store.script_id}"),
        "stats": app.page("stats"),
        "folder": app.page("folder"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        html = page.text
        assert "<script>alert" not in html, name
        assert "<img src=x" not in html and "<b>bold</b>" not in html, name
        # Only the app's own script files are scripts.
        assert html.count("<script") == html.count('<script src="'), name
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;科技有限公司" in pages["invoice"].text
    assert "&lt;script&gt;alert(" in pages["search"].text
    assert "script-src 'self'" in pages["invoice"].headers["content-security-policy"]
    # The API returns the value as data, unchanged.
    answer = app.api("GET", f"/documents/{web_store.script_id}").json()
    assert answer["result"]["fields"]["seller_name"]["value"] == SCRIPT_SELLER


def test_only_loopback_without_a_token_file(web_store: WebStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs --token-file"):
        WebServer(str(web_store.path), "x", host="0.0.0.0")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--no-browser",
            "--store",
            str(web_store.path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "needs --token-file" in run.stderr, run.stderr
    short = tmp_path / "short-token"
    short.write_text("abc\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "serve",
            "--no-browser",
            "--token-file",
            str(short),
            "--store",
            str(web_store.path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "at least 16 characters" in run.stderr, run.stderr
    # A loopback server with a token file uses that token.
    token = "t" * 12 + "-" + "0123456789abcdef"
    with WebServer(str(web_store.path), "x", token=token) as server:
        server.start()
        assert server.url.endswith(f"/{token}/")
        assert httpx.get(server.url + "search", timeout=20).status_code == 200


def test_binding_another_address_warns_and_keeps_the_token_out_of_the_output(
    web_store: WebStore, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token = "s3cret-" + "x" * 24
    token_file.write_text(token + "\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--token-file",
            str(token_file),
            "--no-browser",
            "--store",
            str(web_store.path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        warning = process.stdout.readline()
        address = process.stdout.readline()
        assert warning.startswith("WARNING: listening on 0.0.0.0"), warning
        assert "<token from the token file>" in address and token not in address
        port = int(address.split("0.0.0.0:", 1)[1].split("/")[0])
        answer = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/search", headers={"X-Invoices-Token": token}, timeout=20
        )
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert token not in stdout + stderr


def test_the_command_serves_either_index(backend: tuple[App, WebStore]) -> None:
    """`invoices serve --index postgresql://…` (or the SQLite file in the store) answers a search."""
    store = backend[1]
    index = ["--index", store.index] if store.index else []
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--no-browser", "--store", str(store.path), *index],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        assert address.startswith("Invoices: http://127.0.0.1:"), address
        url = address.split(" ", 1)[1]
        answer = httpx.get(url.rsplit("/", 1)[0] + "/search", params={"q": "智源"}, timeout=20)
        assert answer.status_code == 200 and "vat_e_general.pdf" in answer.text
        assert "fully_digital_general.pdf" not in answer.text
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


# ---- search -------------------------------------------------------------------------------------


def test_search_finds_an_invoice_by_any_key(backend: tuple[App, WebStore]) -> None:
    app = backend[0]
    vat = expected_fields("vat_e_general.pdf")
    digital = expected_fields("fully_digital_general.pdf")

    def search(q: str, **params: Any) -> list[str]:
        return results(app.api("GET", "/search", params={"q": q, **params}))

    assert search("智源") == ["vat_e_general.pdf"]  # part of the seller's name
    assert search("北京智源医疗器戒") == ["vat_e_general.pdf"]  # one character misread
    assert search("众合") == ["vat_e_general.pdf"]  # the buyer
    assert search("blauwal") == ["en_invoice.pdf"]  # vendor, any case
    assert search(vat["invoice_number"]) == ["vat_e_general.pdf"]
    assert search(vat["invoice_code"]) == ["vat_e_general.pdf"]
    assert search(digital["seller_tax_id"].lower()) == ["fully_digital_general.pdf"]
    assert search(vat["total_amount"]) == ["vat_e_general.pdf"]
    assert search("¥" + f"{Decimal(digital['total_amount']):,}") == ["fully_digital_general.pdf"]
    assert search("INV-2025-7285") == ["en_invoice.pdf"]  # any text on the page
    assert search("nothing like this anywhere") == []

    everything = search("")
    assert len(everything) == 4
    by_amount = results(app.api("GET", "/search", params={"sort": "amount", "order": "asc"}))
    assert by_amount == [
        "<img src=x onerror=alert(1)>.png",
        "en_invoice.pdf",
        "vat_e_general.pdf",
        "fully_digital_general.pdf",
    ]
    second = app.api(
        "GET", "/search", params={"sort": "amount", "order": "asc", "per_page": 1, "page": 2}
    ).json()
    assert second["total"] == 4 and [r["source_name"] for r in second["results"]] == ["en_invoice.pdf"]
    assert search("", date_from="2024-01-01", date_to="2024-12-31") == [
        "<img src=x onerror=alert(1)>.png",
        "fully_digital_general.pdf",
    ]
    assert search("", amount_min=5000, amount_max=10000) == ["vat_e_general.pdf"]
    # The markup invoice needs review too (its buyer's name is not an organisation's, no check code).
    flagged = ["en_invoice.pdf", "<img src=x onerror=alert(1)>.png"]
    assert search("", status="needs_review") == search("", needs_review="true") == flagged
    assert search("", kind="fully_digital_general") == ["fully_digital_general.pdf"]
    assert search("", source=".pdf", sort="name", order="asc") == list(PDF_SAMPLES)
    assert search("", outcome="not_in_ledger") == []  # nothing reconciled in this store
    assert app.api("GET", "/search", params={"status": "bogus"}).status_code == 422
    assert app.api("GET", "/search", params={"amount_min": "nan"}).status_code == 422


def test_the_search_page_keeps_the_query_in_its_address(app: App) -> None:
    page = app.page("search", params={"q": "智源", "sort": "amount", "order": "asc"})
    assert page.status_code == 200
    html = page.text
    assert 'value="智源"' in html and "vat_e_general.pdf" in html and "fully_digital_general.pdf" not in html
    assert "<b>1</b>" in html  # one result
    # The export links and the sort links carry the same query.
    assert "search.csv?q=%E6%99%BA%E6%BA%90" in html
    assert "sort=date" in html
    csv_body = app.page("search.csv", params={"q": "智源"}).content.decode("utf-8-sig")
    assert csv_body.splitlines()[0].startswith("document_id,") and len(csv_body.splitlines()) == 2
    bad = app.page("search", params={"date_from": "2024-13-45"})
    assert bad.status_code == 200 and "is not a date" in bad.text


# ---- statistics ---------------------------------------------------------------------------------


def test_statistics_add_up_the_selection(backend: tuple[App, WebStore]) -> None:
    app = backend[0]
    from openpyxl import load_workbook

    expected = {name: expected_fields(name) for name in PDF_SAMPLES}

    def money(field: str) -> Decimal:
        return sum((Decimal(f[field]) for f in expected.values()), Decimal(0))

    tables = app.api("GET", "/statistics", params={"source": ".pdf"}).json()
    months = tables["months"]
    assert sum(row["count"] for row in months) == 3
    assert Decimal(str(round(sum(row["total"] for row in months), 2))) == money("total_amount")
    assert Decimal(str(round(sum(row["tax"] for row in months), 2))) == money("tax_amount")
    assert Decimal(str(round(sum(row["amount"] for row in months), 2))) == money("amount_excl_tax")
    by_month = {row["month"]: row for row in months}
    vat = expected["vat_e_general.pdf"]
    assert Decimal(str(by_month[vat["issue_date"][:7]]["total"])) == Decimal(vat["total_amount"])
    assert {row["kind"] for row in tables["kinds"]} == {
        "generic_invoice",
        "fully_digital_general",
        "vat_e_invoice_general",
    }
    assert {row["rate"] for row in tables["rates"]} == {"6%", "19%"}  # 6 % on both fapiao, 19 % German VAT
    sellers = {row["seller"]: row["total"] for row in tables["sellers"]}
    assert Decimal(str(sellers[vat["seller_name"]])) == Decimal(vat["total_amount"])

    page = app.page("stats", params={"source": ".pdf"})
    assert page.status_code == 200
    assert f'<b data-key="total">{money("total_amount"):.2f}</b>' in page.text
    assert page.text.count("<svg") >= 4
    csv_rows = (
        app.page("stats.csv", params={"source": ".pdf", "table": "months"})
        .content.decode("utf-8-sig")
        .splitlines()
    )
    assert csv_rows[0] == "month,count,amount,tax,total" and len(csv_rows) == 1 + len(months)
    xlsx = app.page("stats.xlsx", params={"source": ".pdf", "table": "sellers"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [cell.value for cell in sheet[1]] == ["seller", "count", "amount", "tax", "total"]
    assert sheet.max_row == 1 + len(tables["sellers"])
    # The whole store: one failure this month, two invoices of four needed review.
    quality = app.api("GET", "/statistics").json()["quality"]
    assert sum(row["failed"] for row in quality) == 1
    assert sum(row["reviewed"] for row in quality) == 2 and sum(row["documents"] for row in quality) == 4


# ---- the invoice --------------------------------------------------------------------------------


def test_the_invoice_view_shows_fields_boxes_rules_and_downloads(backend: tuple[App, WebStore]) -> None:
    app, web_store = backend
    doc = web_store.ids["vat_e_general.pdf"]
    page = app.page(f"invoice/{doc}")
    assert page.status_code == 200
    html = page.text
    fields = expected_fields("vat_e_general.pdf")
    for name in ("seller_name", "invoice_number", "total_amount"):
        assert fields[name] in html
    assert html.count('<g class="box') >= 5  # field boxes drawn over the page image
    assert f"documents/{doc}/pages/0.png" in html and "text_layer" in html
    assert 'class="checks"' in html and "passed" in html
    assert "Not reconciled yet." in html and "No correction yet." in html
    original = app.page(f"documents/{doc}/original")
    assert original.content == (SAMPLES / "vat_e_general.pdf").read_bytes()
    assert (
        original.headers["content-type"] == "application/pdf"
        and "attachment" in original.headers["content-disposition"]
    )
    result = app.page(f"documents/{doc}/result.json").json()
    assert (
        result["document_id"] == doc and result["fields"]["total_amount"]["value"] == fields["total_amount"]
    )
    assert app.page("invoice/" + "0" * 64).status_code == 404
    assert app.page("invoice/..%2F..%2Fetc").status_code == 404


def test_correct_a_field_with_validation_and_audit(writable: tuple[App, WebStore, Path]) -> None:
    app, store, _ = writable
    doc = store.ids["en_invoice.pdf"]
    url = f"/documents/{doc}/fields/issue_date"
    refused = app.api("POST", url, json={"value": "2025-02-30"})
    assert refused.status_code == 400 and "not a date that exists" in refused.json()["error"]
    done = app.api("POST", url, json={"value": "2025-09-02", "reviewer": "api-clerk"})
    assert done.status_code == 200, done.text
    assert (done.json()["action"], done.json()["value"]) == ("correct", "2025-09-02")
    html = app.page(f"invoice/{doc}").text
    assert "api-clerk" in html and "2025-02-09" in html and "2025-09-02" in html  # the audit row
    assert results(app.api("GET", "/search", params={"q": "", "date_from": "2025-09-01"})) == [
        "en_invoice.pdf"
    ]
    assert app.api("POST", f"/documents/{doc}/fields/no_such_field", json={"value": "1"}).status_code == 400
    assert (
        app.api("POST", "/documents/" + "0" * 64 + "/fields/issue_date", json={"value": "1"}).status_code
        == 404
    )


def test_reconciliation_outcomes_and_differences(
    writable: tuple[App, WebStore, Path], tmp_path: Path
) -> None:
    from pipeline.cli import main

    app, store, _ = writable
    vat = expected_fields("vat_e_general.pdf")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "发票代码,发票号码,开票日期,金额,税额,价税合计,销售方名称\n"
        f"{vat['invoice_code']},{vat['invoice_number']},{vat['issue_date']},"
        f"{vat['amount_excl_tax']},{vat['tax_amount']},9999.99,{vat['seller_name']}\n",
        encoding="utf-8",
    )
    assert (
        main(["reconcile", "--ledger", str(ledger), "--store", str(store.path), "--out", str(tmp_path / "r")])
        == 0
    )
    doc = store.ids["vat_e_general.pdf"]
    html = app.page(f"invoice/{doc}").text
    assert 'class="badge matched_with_differences"' in html and "9999.99" in html
    assert vat["total_amount"] in html
    missing = results(
        app.api("GET", "/search", params={"outcome": "not_in_ledger", "sort": "name", "order": "asc"})
    )
    assert "fully_digital_general.pdf" in missing and "vat_e_general.pdf" not in missing
    outcomes = app.api("GET", "/reconciliation", params={"outcome": "matched_with_differences"}).json()
    assert outcomes["total"] == 1 and outcomes["results"][0]["document_id"] == doc
    assert any(d["ledger"] == "9999.99" for d in outcomes["results"][0]["differences"])


# ---- upload, hot folder ------------------------------------------------------------------------


def test_upload_answers_with_the_id_then_the_result(tmp_path: Path) -> None:
    path = tmp_path / "store"
    open_store(str(path)).close()
    app = start(WebStore(path, {}, ""))
    try:
        data = (SAMPLES / "vat_e_general.pdf").read_bytes()
        sent = app.api("POST", "/documents", files={"file": ("发票.pdf", data, "application/pdf")})
        assert sent.status_code == 202, sent.text
        answer = sent.json()
        assert answer["document_id"] == hashlib.sha256(data).hexdigest() and answer["state"] == "processing"
        deadline = time.monotonic() + 120
        while True:
            state = app.api("GET", answer["status_url"].removeprefix("/api/v1"))
            if state.status_code != 202 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state.status_code == 200, state.text
        body = state.json()
        assert body["state"] == "stored" and body["result"]["source_name"] == "发票.pdf"
        assert (
            body["result"]["fields"]["total_amount"]["value"]
            == expected_fields("vat_e_general.pdf")["total_amount"]
        )
        assert results(app.api("GET", "/search", params={"q": "智源"})) == ["发票.pdf"]
        again = app.api("POST", "/documents", files={"file": ("again.pdf", data, "application/pdf")})
        assert again.status_code == 200 and again.json()["state"] == "already_stored"
        bad = app.api("POST", "/documents", files={"file": ("x.pdf", b"not a pdf at all", "application/pdf")})
        assert bad.status_code == 202
        deadline = time.monotonic() + 120
        while (state := app.api("GET", bad.json()["status_url"].removeprefix("/api/v1"))).status_code == 202:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert state.json()["state"] == "failed" and state.json()["message"]
        assert app.api("GET", "/uploads/" + "1" * 64).status_code == 404
        empty = app.api("POST", "/documents", files={"file": ("e.pdf", b"", "application/pdf")})
        assert empty.status_code == 202  # taken, and failed like an empty file in the hot folder
    finally:
        app.close()
        app.server.close()


def test_a_failed_hot_folder_file_is_retried(writable: tuple[App, WebStore, Path]) -> None:
    app, _, folder = writable
    (folder / "failed" / "scan 1.pdf").write_bytes(b"%PDF-1.4 broken")
    (folder / "failed" / "scan 1.pdf.error.txt").write_text(
        "ImageUnreadable: the PDF has no pages\n\nfile: scan 1.pdf\n"
    )
    (folder / "scan 1.pdf").write_bytes(b"a newer scan with the same name")
    overview = app.api("GET", "/folder").json()
    assert overview["folder"]["counts"] == {"inbox": 1, "processing": 0, "done": 0, "failed": 1}
    assert [(f["name"], f["reason"]) for f in overview["folder"]["failed"]] == [
        ("scan 1.pdf", "ImageUnreadable: the PDF has no pages")
    ]
    html = app.page("folder").text
    assert "ImageUnreadable: the PDF has no pages" in html and 'data-name="scan 1.pdf"' in html
    moved = app.api("POST", "/folder/retry", json={"name": "scan 1.pdf"})
    assert moved.status_code == 200 and moved.json()["moved_to"] == "scan 1 (2).pdf"
    assert (folder / "scan 1 (2).pdf").read_bytes() == b"%PDF-1.4 broken"
    assert (folder / "scan 1.pdf").read_bytes() == b"a newer scan with the same name"  # never overwritten
    assert list((folder / "failed").iterdir()) == []
    assert app.api("POST", "/folder/retry", json={"name": "scan 1.pdf"}).status_code == 404
    assert app.api("POST", "/folder/retry", json={"name": "../etc/passwd"}).status_code == 400
    assert app.api("POST", "/folder/retry", json={"name": ".processing"}).status_code == 400


def test_batches_and_last_documents(backend: tuple[App, WebStore]) -> None:
    app = backend[0]
    overview = app.api("GET", "/folder").json()
    assert overview["folder"] is None and overview["store"]["failed"] == 1
    assert sum(batch["documents"] for batch in overview["batches"]) == 4
    recent = {row["source_name"]: row for row in overview["recent"]}
    pdf = recent["vat_e_general.pdf"]
    assert pdf["page_count"] == 1 and pdf["seconds"] > 0 and pdf["pages_per_second"] > 0
    html = app.page("folder").text
    assert "invoices serve --folder" in html and "broken.pdf" in html


# ---- language -----------------------------------------------------------------------------------


def test_chinese_or_english_by_browser_and_switch(app: App) -> None:
    english = app.page("search", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and ">Statistics<" in english.text
    chinese = app.page("search", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in chinese.text and ">统计<" in chinese.text and "条结果" in chinese.text
    assert ">统计<" in app.page("stats", headers={"Accept-Language": "de-DE,zh;q=0.5,en;q=0.3"}).text
    switched = app.page("search", params={"q": "智源", "lang": "zh"}, headers={"Accept-Language": "en"})
    assert ">统计<" in switched.text and switched.cookies.get("lang") == "zh"
    assert 'href="?q=%E6%99%BA%E6%BA%90&amp;lang=en"' in switched.text  # the switch keeps the search
    kept = app.page("search", headers={"Accept-Language": "en", "Cookie": "lang=zh"})
    assert ">统计<" in kept.text
    back = app.page("search", params={"lang": "en"}, headers={"Cookie": "lang=zh"})
    assert ">Statistics<" in back.text and back.cookies.get("lang") == "en"


# ---- the tax platform (three-way reconciliation), other files of one invoice, e-invoices ------------------


def test_the_tax_platform_outcome_on_the_invoice_view_and_in_search(
    writable: tuple[App, WebStore, Path], tmp_path: Path
) -> None:
    from pipeline.cli import main

    app, store, _ = writable
    vat_doc, digital_doc = store.ids["vat_e_general.pdf"], store.ids["fully_digital_general.pdf"]
    assert "Not in the last three-way reconciliation" in app.page(f"invoice/{vat_doc}?lang=en").text
    platform, ledger = platform_and_ledger(tmp_path)
    args = ["reconcile", "--ledger", str(ledger), "--tax-platform", str(platform)]
    assert main([*args, "--store", str(store.path), "--out", str(tmp_path / "r")]) in (0, 1)

    html = app.page(f"invoice/{vat_doc}?lang=en").text
    section = html[html.index('id="three-way"') :]
    assert 'data-code="red_reversed_but_booked"' in section and "partly red-reversed" in section
    assert (
        "held: present" in section
        and "in the ledger: present" in section
        and "on the platform: present" in section
    )
    assert "red-reversed: <b" in section and "1060.00" in section
    assert "6789.81" in section  # 7849.81 - 1060.00 remains
    zh = app.page(f"invoice/{vat_doc}?lang=zh").text
    assert "已入账但已红冲" in zh and "部分红冲" in zh and "剩余金额" in zh

    answer = app.api("GET", f"/documents/{digital_doc}").json()["three_way"]
    assert answer["outcome"] == "voided_but_booked" and answer["platform_status"] == "voided"
    assert answer["platform_status_label"] == {"en": "voided", "zh": "作废"}
    assert (answer["in_held"], answer["in_ledger"], answer["in_platform"]) == (True, True, True)
    assert answer["codes"][0]["zh"] == "已入账但平台显示作废" and answer["reason_zh"]

    assert results(app.api("GET", "/search", params={"outcome": "voided_but_booked"})) == [
        "fully_digital_general.pdf"
    ]
    assert results(app.api("GET", "/search", params={"platform_status": "partly_red_reversed"})) == [
        "vat_e_general.pdf"
    ]
    assert (
        results(app.api("GET", "/search", params={"outcome": "matched", "platform_status": "voided"})) == []
    )
    assert app.api("GET", "/search", params={"outcome": "nonsense"}).status_code == 422
    page = app.page("search?outcome=voided_but_booked&lang=en").text
    assert "fully_digital_general.pdf" in page and "vat_e_general.pdf" not in page
    assert 'value="voided_but_booked" selected' in page
    assert "platform_status: unknown" in app.page("search?platform_status=lost").text


EINVOICES = SAMPLES.parent / "samples_einvoice"


def upload_and_wait(app: App, name: str, data: bytes) -> dict[str, Any]:
    """``POST /documents``, then poll its status URL until stored or failed."""
    sent = app.api("POST", "/documents", files={"file": (name, data, "application/octet-stream")})
    assert sent.status_code in (200, 202), sent.text
    url = sent.json()["status_url"].removeprefix("/api/v1")
    deadline = time.monotonic() + 120
    while (state := app.api("GET", url)).status_code == 202:
        assert time.monotonic() < deadline, f"{name} still processing"
        time.sleep(0.2)
    assert state.status_code == 200, state.text
    return dict(state.json())


def test_e_invoices_upload_and_show_their_pages(tmp_path: Path) -> None:
    """OFD and XML e-invoices sent through the API are read from their data (no OCR) and their page
    images, drawn for them, appear in the invoice view."""
    from PIL import Image

    path = tmp_path / "store"
    open_store(str(path)).close()
    app = start(WebStore(path, {}, ""))
    try:
        for name in ("vat_e_general_blue.ofd", "fully_digital_special_blue.xml"):
            body = upload_and_wait(app, name, (EINVOICES / name).read_bytes())
            assert body["state"] == "stored", body
            stem = name.rsplit(".", 1)[0]
            expected = json.loads((EINVOICES / f"{stem}.expected.json").read_text(encoding="utf-8"))["fields"]
            fields = body["result"]["fields"]
            for key in ("invoice_number", "total_amount", "seller_name"):
                assert fields[key]["value"] == expected[key], (name, key)
            doc = body["document_id"]
            html = app.page(f"invoice/{doc}").text
            assert expected["seller_name"] in html and f"documents/{doc}/pages/0.png" in html
            png = app.page(f"documents/{doc}/pages/0.png")
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            with Image.open(io.BytesIO(png.content)) as image:
                assert image.width > 300 and image.height > 200
                low, high = image.convert("L").getextrema()
                assert high - low > 100  # drawn, not blank
            original = app.page(f"documents/{doc}/original")
            assert original.content == (EINVOICES / name).read_bytes()
    finally:
        app.close()
        app.server.close()


def test_a_zip_bundle_upload_and_the_other_files_of_one_invoice(tmp_path: Path) -> None:
    """A ZIP of an OFD and the XML of the same invoice: each document is an upload of its own; the
    invoice view links the other file and says they arrived together; the search lists the invoice once.
    The XML sent again later on its own arrives separately, and the view says so."""
    import zipfile

    from pipeline.store import invoices as grouping

    ofd = (EINVOICES / "vat_e_general_blue.ofd").read_bytes()
    xml = (EINVOICES / "fully_digital_special_blue.xml").read_bytes()
    expected = json.loads(
        (EINVOICES / "fully_digital_special_blue.expected.json").read_text(encoding="utf-8")
    )
    same = xml.replace(b"?>", b"?>\n", 1)  # the same invoice, another file (another id)
    assert same != xml
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("download/a.xml", xml)
        archive.writestr("download/b.xml", same)
        archive.writestr("download/c.ofd", ofd)
        archive.writestr("download/readme.txt", b"not an invoice")
    path = tmp_path / "store"
    open_store(str(path)).close()
    app = start(WebStore(path, {}, ""))
    try:
        body = upload_and_wait(app, "发票.zip", bundle.getvalue())
        assert body["state"] == "stored", body
        members = {member["name"]: member for member in body["members"]}
        assert sorted(members) == [
            f"发票.zip!download/{n}" for n in ("a.xml", "b.xml", "c.ofd", "readme.txt")
        ]
        assert members["发票.zip!download/readme.txt"]["state"] == "skipped"
        assert all(
            members[f"发票.zip!download/{n}"]["state"] == "stored" for n in ("a.xml", "b.xml", "c.ofd")
        )
        first = members["发票.zip!download/a.xml"]["document_id"]
        second = members["发票.zip!download/b.xml"]["document_id"]

        details = app.api("GET", f"/documents/{first}").json()
        assert [f["document_id"] for f in details["files"]] == [second] and not details["arrived_separately"]
        html = app.page(f"invoice/{first}?lang=en").text
        assert f'href="../invoice/{second}"' in html and "These files arrived together." in html
        assert (
            "No other file of this invoice is stored."
            in app.page(f"invoice/{members['发票.zip!download/c.ofd']['document_id']}?lang=en").text
        )

        listed = app.api("GET", "/search", params={"q": expected["fields"]["invoice_number"]}).json()
        assert listed["total"] == 2 and len(listed["results"]) == 1  # one invoice in two files
        assert listed["results"][0]["files"] == 2 and len(listed["results"][0]["other_files"]) == 1
        page = app.page("search?lang=en").text
        assert page.count(expected["fields"]["invoice_number"]) == 1 and "2 files" in page

        later = xml.replace(b"?>", b"?>\n\n", 1)
        grouping.TOGETHER_SECONDS, saved = -1.0, grouping.TOGETHER_SECONDS  # the server's clock: "later"
        try:
            alone = upload_and_wait(app, "again.xml", later)
            assert alone["state"] == "stored"
            html = app.page(f"invoice/{alone['document_id']}?lang=en").text
        finally:
            grouping.TOGETHER_SECONDS = saved
        assert "arrived separately" in html and html.count('href="../invoice/') >= 2
    finally:
        app.close()
        app.server.close()
