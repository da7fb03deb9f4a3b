"""Review of low-confidence fields: the library, the web server's endpoints, the terminal mode, the CLI.

The store is built from real sample pages with results as the pipeline makes them (boxes from a real
OCR run of the same pages), a few values misread on purpose, and the real rules applied.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.errors import ConfigError, NotFound, StorageError
from pipeline.model import DocType, Field, FieldSource, InvoiceResult, PageInfo
from pipeline.review import (
    ReviewInputError,
    apply_correction,
    default_reviewer,
    fields_to_review,
    review_history,
    review_queue,
)
from pipeline.review.corrections import normalize_value
from pipeline.review.images import crop_box, decode_png
from pipeline.review.tui import run_tui
from pipeline.store import Store, open_store
from pipeline.store.objects import result_key
from pipeline.validate import validate_invoice
from pipeline.web import WebServer
from pipeline.web.payloads import document_payload
from tests.conftest import REPO, SAMPLES
from tests.review_stores import (
    OCR,
    OK,
    REVIEW,
    ReviewStore,
    build_review_store,
    generic_result,
    index_row,
    rect,
    stored_json,
    vat_special_result,
)


@pytest.fixture
def built(tmp_path: Path) -> ReviewStore:
    return build_review_store(tmp_path / "store")


@pytest.fixture
def store(built: ReviewStore) -> Iterator[Store]:
    opened = built.open()
    yield opened
    opened.close()


def snapshot(store: Store, document_id: str) -> tuple[bytes, list[str], dict[str, Any]]:
    """Everything a refused correction must leave untouched."""
    keys = sorted(store.objects.keys(f"documents/{document_id[:2]}/{document_id}/"))
    row = index_row(store, document_id)
    return store.objects.get(result_key(document_id)), keys, row


# ---- the queue ------------------------------------------------------------------------------


def test_queue_lists_what_the_rules_flagged(built: ReviewStore, store: Store) -> None:
    queue = {entry.document_id: entry for entry in review_queue(store)}
    assert set(queue) == {built.vat_id, built.generic_id}
    assert queue[built.vat_id].fields == ("buyer_name", "seller_tax_id", "total_amount")
    assert queue[built.generic_id].fields == ("issue_date",)

    items = {item.name: item for item in fields_to_review(store.load_result(built.vat_id))}
    assert items["seller_tax_id"].reasons == (
        "seller tax ID 91110115MA56E82N06: check character is 6 but the first 17 characters require 5",
    )
    assert items["total_amount"].reasons == (
        "total is 48360.12, but amount + tax and the amount in words say 48360.72",
        "amount 44463.10 + tax 3897.62 = 48360.72, but total is 48360.12",
    )
    assert items["buyer_name"].reasons == ("read with low confidence (0.62)",)
    assert items["total_amount"].kind == "amount"
    assert items["total_amount"].box == rect(1406, 799, 1672, 837)
    # The QR code states the amount excl. tax and the number, not the total: shown only where it exists.
    assert items["total_amount"].qr_value is None
    result = store.load_result(built.vat_id)
    result.fields["amount_excl_tax"].flag("test")
    by_name = {item.name: item for item in fields_to_review(result)}
    assert by_name["amount_excl_tax"].qr_value == "44463.10"


# ---- checking typed values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "typed", "stored"),
    [
        ("total_amount", "48,360.72", "48360.72"),
        ("total_amount", " ¥48360.7 ", "48360.70"),
        ("tax_amount", "***", "0.00"),
        ("issue_date", "2021/1/9", "2021-01-09"),
        ("issue_date", "2021年01月19日", "2021-01-19"),
        ("issue_date", "20210119", "2021-01-19"),
        ("invoice_code", "1100 2141 30", "1100214130"),
        ("invoice_number", "１０６３１３３１", "10631331"),
        ("seller_tax_id", "91110115ma56e82n05", "91110115MA56E82N05"),
        ("tax_rates", "13 6%、9%", ["13%", "6%", "9%"]),
        ("total_amount_words", "肆万捌仟叁佰陆拾元 零柒角贰分", "肆万捌仟叁佰陆拾元零柒角贰分"),
        ("seller_name", "金桥(北京)建筑工程有限责任公司", "金桥（北京）建筑工程有限责任公司"),
    ],
)
def test_typed_values_are_normalised(field: str, typed: str, stored: Any) -> None:
    result = vat_special_result("ab" * 32)
    assert normalize_value(result, field, typed, today=date(2026, 1, 1)) == stored


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("total_amount", "48360.7x", "'48360.7x' is not an amount"),
        ("total_amount", "12.3.4", "is not an amount"),
        ("issue_date", "2023-02-30", "2023-02-30 is not a date that exists"),
        ("issue_date", "2021-13-01", "2021-13-01 is not a date that exists"),
        ("issue_date", "19 Jan 2021", "type it as YYYY-MM-DD"),
        ("issue_date", "2026-06-01", "2026-06-01 is in the future"),
        ("issue_date", "1990-05-01", "before VAT invoices existed"),
        ("invoice_number", "1063133", "1063133 has 7 digits; expected 8"),
        ("invoice_code", "11002141A0", "must be digits only"),
        ("check_code", "123", "has 3 digits; expected 20"),
        ("seller_tax_id", "91110115MA56E82N06", "check character is 6 but the first 17 characters require 5"),
        ("seller_tax_id", "9111", "has 4 characters"),
        ("tax_rates", "7%", "7% is not a VAT rate"),
        ("tax_rates", "abc", "'abc' is not a tax rate"),
        ("total_amount_words", "肆万捌仟叁叁元", "is not an amount in words"),
        ("buyer_name", "   ", "type a value, or accept the field as it is"),
    ],
)
def test_bad_values_are_refused_with_a_message(field: str, typed: str, message: str) -> None:
    result = vat_special_result("ab" * 32)
    with pytest.raises(ReviewInputError) as refused:
        normalize_value(result, field, typed, today=date(2026, 1, 1))
    assert message in str(refused.value)


def test_generic_invoices_keep_their_own_formats() -> None:
    result = generic_result("cd" * 32)
    assert normalize_value(result, "invoice_number", "INV-2025-7286") == "INV-2025-7286"
    assert normalize_value(result, "currency", "usd") == "USD"
    assert normalize_value(result, "vendor_tax_id", "DE 685504335") == "DE 685504335"
    with pytest.raises(ReviewInputError, match="not a currency code"):
        normalize_value(result, "currency", "dollars")


# ---- corrections ----------------------------------------------------------------------------


def test_correction_is_stored_audited_indexed_and_rechecked(built: ReviewStore, store: Store) -> None:
    document_id = built.vat_id
    result = apply_correction(store, document_id[:10], "total_amount", "48 360.72", "alice")

    total = result.fields["total_amount"]
    assert (total.value, total.source, total.status, total.confidence, total.reasons) == (
        "48360.72",
        FieldSource.REVIEW,
        OK,
        1.0,
        [],
    )
    stored = stored_json(store, document_id)
    assert stored["fields"]["total_amount"]["value"] == "48360.72"
    assert stored["fields"]["total_amount"]["source"] == "review"
    assert stored["fields"]["total_amount"]["box"]["polygon"][0] == [1406.0, 799.0]
    # The rules ran again: the words and amount + tax now agree with the total.
    checks = {c["rule"]: c for c in stored["checks"]}
    assert checks["words_equal_total"]["passed"] is True
    assert checks["amount_plus_tax_equals_total"]["passed"] is True
    assert len([c for c in stored["checks"] if c["rule"] == "words_equal_total"]) == 1

    history = review_history(store, document_id)
    assert len(history) == 1
    record = history[0]
    assert record["field"] == "total_amount"
    assert record["action"] == "correct"
    assert (record["old_value"], record["new_value"]) == ("48360.12", "48360.72")
    assert record["old_source"] == "ocr" and record["old_status"] == "needs_review"
    assert record["old_reasons"][0] == (
        "total is 48360.12, but amount + tax and the amount in words say 48360.72"
    )
    assert record["reviewer"] == "alice"
    assert record["reviewed_at"].endswith("Z") and record["reviewed_at"][:4].isdigit()
    prefix = f"documents/{document_id[:2]}/{document_id}/reviews/"
    assert record["key"].startswith(prefix) and record["key"].endswith("-total_amount.json")
    assert json.loads(store.objects.get(record["key"])) == record

    row = index_row(store, document_id)
    assert row["review_fields"] == "buyer_name,seller_tax_id"
    assert row["total_amount"] == "48360.72"
    assert row["status"] == "needs_review"
    if "review_count" in row:  # the richer index counts reviews
        assert row["review_count"] == 1


def test_last_field_done_takes_the_invoice_out_of_the_queue(built: ReviewStore, store: Store) -> None:
    document_id = built.vat_id
    apply_correction(store, document_id, "total_amount", "48360.72", "alice")
    apply_correction(store, document_id, "seller_tax_id", "91110115MA56E82N05", "alice")
    result = apply_correction(store, document_id, "buyer_name", None, "bob", accept=True)

    assert result.status == "ok"
    assert [entry.document_id for entry in review_queue(store)] == [built.generic_id]
    row = index_row(store, document_id)
    assert (row["status"], row["review_fields"]) == ("ok", "")
    # Accepting keeps where the value came from; a person confirmed it.
    buyer = stored_json(store, document_id)["fields"]["buyer_name"]
    assert (buyer["value"], buyer["source"], buyer["status"], buyer["confidence"]) == (
        "北京长城软件有限公司",
        "ocr",
        "ok",
        1.0,
    )
    accepted = review_history(store, document_id)[-1]
    assert accepted["action"] == "accept"
    assert accepted["old_value"] == accepted["new_value"] == "北京长城软件有限公司"
    assert accepted["old_status"] == "needs_review" and accepted["reviewer"] == "bob"
    assert len(review_history(store, document_id)) == 3


def test_refused_input_stores_nothing(built: ReviewStore, store: Store) -> None:
    document_id = built.vat_id
    before = snapshot(store, document_id)
    for field, typed in (
        ("total_amount", "forty-eight thousand"),
        ("issue_date", "2021-02-29"),
        ("seller_tax_id", "91110115MA56E82N07"),
    ):
        with pytest.raises(ReviewInputError):
            apply_correction(store, document_id, field, typed, "alice")
    with pytest.raises(ReviewInputError, match="has no field"):
        apply_correction(store, document_id, "shoe_size", "42", "alice")
    with pytest.raises(ReviewInputError, match="reviewer"):
        apply_correction(store, document_id, "total_amount", "48360.72", "  ")
    with pytest.raises(NotFound):
        apply_correction(store, "ffff" * 16, "total_amount", "1.00", "alice")
    assert snapshot(store, document_id) == before
    assert review_history(store, document_id) == []


def test_fixing_the_total_clears_the_sum_flags_it_caused(tmp_path: Path) -> None:
    """Without words to tell which amount is wrong, amount + tax ≠ total flags all three."""
    store = open_store(str(tmp_path / "store"))
    data = b"sum mismatch"
    document_id = hashlib.sha256(data).hexdigest()
    result = InvoiceResult(
        document_id=document_id,
        source_name="sum.jpg",
        doc_type=DocType.VAT_GENERAL_PAPER,
        fields={
            "invoice_code": Field("011002400604", 1.0, OK, OCR, rect(0, 0, 10, 10)),
            "invoice_number": Field("78739086", 1.0, OK, OCR, rect(0, 0, 10, 10)),
            "issue_date": Field("2024-07-10", 1.0, OK, OCR, rect(0, 0, 10, 10)),
            "check_code": Field("37562072955399665118", 1.0, OK, OCR, rect(0, 0, 10, 10)),
            "seller_name": Field("北京凯德网络科技股份有限公司", 0.99, OK, OCR, rect(0, 0, 10, 10)),
            "amount_excl_tax": Field("1491.51", 0.99, OK, OCR, rect(0, 0, 10, 10)),
            "tax_amount": Field("89.49", 0.95, OK, OCR, rect(0, 0, 10, 10)),
            "total_amount": Field("1531.00", 0.97, OK, OCR, rect(0, 0, 10, 10)),
        },
        pages=[PageInfo(0, 100, 100, "ocr")],
    )
    validate_invoice(result)
    assert {n for n, f in result.fields.items() if f.status == REVIEW} == {
        "amount_excl_tax",
        "tax_amount",
        "total_amount",
    }
    store.save(
        data, "sum.jpg", result, [(0, cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))[1].tobytes())]
    )

    fixed = apply_correction(store, document_id, "total_amount", "1581.00", "alice")
    assert fixed.status == "ok", {n: f.reasons for n, f in fixed.fields.items()}
    assert fixed.fields["amount_excl_tax"].reasons == [] and fixed.fields["amount_excl_tax"].source == OCR
    assert index_row(store, document_id)["review_fields"] == ""

    # A correction that breaks the sum sends the other amounts back to review; the clerk's value stays.
    broken = apply_correction(store, document_id, "total_amount", "1600.00", "alice")
    assert broken.fields["total_amount"].status == OK
    assert broken.fields["amount_excl_tax"].status == REVIEW
    assert "but total is 1600.00" in broken.fields["tax_amount"].reasons[0]
    store.close()


def test_an_accepted_value_stays_accepted_when_the_rules_run_again(built: ReviewStore, store: Store) -> None:
    document_id = built.vat_id
    # The clerk says the printed tax ID really is …N06 (the rule still fails: it is recorded, not re-flagged).
    apply_correction(store, document_id, "seller_tax_id", "", "alice", accept=True)
    result = apply_correction(store, document_id, "total_amount", "48360.72", "alice")
    seller = result.fields["seller_tax_id"]
    assert (seller.value, seller.status, seller.reasons) == ("91110115MA56E82N06", OK, [])
    failed = [c.rule for c in result.checks if not c.passed]
    assert failed == ["tax_id_checksum:seller_tax_id"]
    assert index_row(store, document_id)["review_fields"] == "buyer_name"


def test_typing_the_same_value_counts_as_accepting(built: ReviewStore, store: Store) -> None:
    result = apply_correction(store, built.generic_id, "issue_date", "2025/2/9", "alice")
    issue = result.fields["issue_date"]
    assert (issue.value, issue.source, issue.status) == ("2025-02-09", OCR, OK)
    assert review_history(store, built.generic_id)[0]["action"] == "accept"
    assert [entry.document_id for entry in review_queue(store)] == [built.vat_id]


def test_ledger_is_rematched_and_shown_when_reconcile_offers_it(
    built: ReviewStore, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Store, str]] = []
    fake = types.ModuleType("pipeline.reconcile")
    fake.rematch_document = lambda s, d: calls.append((s, d))  # type: ignore[attr-defined]
    fake.ledger_values = lambda s, d: {"total_amount": "48360.72"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pipeline.reconcile", fake)

    document = document_payload(store, built.vat_id)
    ledger = {f["name"]: f["ledger_value"] for f in document["fields"]}
    assert ledger == {"buyer_name": None, "seller_tax_id": None, "total_amount": "48360.72"}
    apply_correction(store, built.vat_id[:12], "total_amount", "48360.72", "alice")
    assert calls == [(store, built.vat_id)]


@pytest.mark.parametrize("module", ["absent", "without the hooks"])
def test_without_reconcile_hooks_nothing_is_rematched(
    built: ReviewStore, store: Store, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    # None in sys.modules makes the import fail as if the module did not exist.
    replacement = None if module == "absent" else types.ModuleType("pipeline.reconcile")
    monkeypatch.setitem(sys.modules, "pipeline.reconcile", replacement)
    assert [f["ledger_value"] for f in document_payload(store, built.vat_id)["fields"]] == [None] * 3
    result = apply_correction(store, built.vat_id, "total_amount", "48360.72", "alice")
    assert result.value("total_amount") == "48360.72"


def test_a_correction_stored_by_another_clerk_meanwhile_is_kept(built: ReviewStore, store: Store) -> None:
    """Two clerks on one invoice: each stores a record, then rebuilds result.json from all of them."""
    other = {"field": "invoice_number", "action": "correct", "new_value": "INV-2025-9999", "reviewer": "bob"}
    real_replace = store.replace_result
    calls = []

    def replace_while_bob_saves(result: InvoiceResult) -> None:
        if not calls:  # bob's record lands after alice read the records, before her result is written
            store.save_review_record(built.generic_id, other, "20000101T000000.000000Z-invoice_number")
        calls.append(result.value("invoice_number"))
        real_replace(result)

    store.replace_result = replace_while_bob_saves  # type: ignore[method-assign]
    result = apply_correction(store, built.generic_id, "issue_date", "2025-09-02", "alice")
    assert len(calls) == 2  # alice's first result missed bob's record: she wrote again
    stored = stored_json(store, built.generic_id)["fields"]
    assert (stored["issue_date"]["value"], stored["invoice_number"]["value"]) == (
        "2025-09-02",
        "INV-2025-9999",
    )
    assert result.value("invoice_number") == "INV-2025-9999"


def _correct_in_own_process(path: str, document_id: str, field: str, value: str, barrier: Any) -> None:
    store = open_store(path)
    try:
        barrier.wait()
        apply_correction(store, document_id, field, value, "clerk")
    finally:
        store.close()


def test_clerks_correcting_one_invoice_at_once_lose_nothing(built: ReviewStore) -> None:
    """Three review sessions (processes, like three `invoices review`) correct one invoice at once."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_number in range(3):
        corrections = [
            ("issue_date", f"2025-09-0{round_number + 2}"),
            ("invoice_number", f"INV-2025-000{round_number}"),
            ("currency", ["EUR", "GBP", "USD"][round_number]),
        ]
        barrier = context.Barrier(len(corrections))
        processes = [
            context.Process(
                target=_correct_in_own_process,
                args=(str(built.path), built.generic_id, name, value, barrier),
            )
            for name, value in corrections
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
        store = built.open()
        try:
            stored = stored_json(store, built.generic_id)["fields"]
            assert {name: stored[name]["value"] for name, _ in corrections} == dict(corrections)
            assert len(review_history(store, built.generic_id)) == 3 * (round_number + 1)
        finally:
            store.close()


def test_review_records_are_create_only(built: ReviewStore, store: Store) -> None:
    record = apply_correction(store, built.generic_id, "issue_date", "2025-09-02", "alice")
    key = review_history(store, built.generic_id)[0]["key"]
    assert not store.objects.put(key, b"{}", "application/json", None, create_only=True)
    assert json.loads(store.objects.get(key))["new_value"] == record.value("issue_date")
    save_review = getattr(store, "save_review", None)
    if save_review is not None:
        with pytest.raises(StorageError):
            save_review(record, {}, key.rsplit("/", 1)[1].removesuffix(".json"))


def test_default_reviewer_is_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "carol")
    assert default_reviewer() == "carol"
    monkeypatch.delenv("USER")
    assert default_reviewer()  # the login name


# ---- images ---------------------------------------------------------------------------------


def test_crop_surrounds_the_box_and_outlines_it() -> None:
    page = decode_png((SAMPLES / "vat_special_clean.png").read_bytes())
    box = rect(1406, 799, 1672, 837)
    crop = crop_box(page, box)
    height, width = crop.shape[:2]
    assert 266 + 2 * 48 <= width <= 266 + 2 * 120 and 38 + 2 * 24 <= height <= 38 + 2 * 60
    red = (crop[:, :, 2] > 200) & (crop[:, :, 1] < 80) & (crop[:, :, 0] < 80)
    assert red.sum() > 2 * (266 + 38)  # the outline is drawn
    assert not ((page[:, :, 2] > 200) & (page[:, :, 1] < 80) & (page[:, :, 0] < 80))[799:837, 1406:1672].all()
    corner = crop_box(page, rect(0, 0, 30, 20))
    assert corner.shape[0] <= 20 + 60 and corner.shape[1] <= 30 + 120  # clipped at the page edge
    with pytest.raises(NotFound):
        crop_box(page, rect(5000, 5000, 5100, 5050))


# ---- the review view's endpoints in the web app (the browser test drives the page) -----------


class Client:
    """Pages and images under /<token>/; the JSON API under /api/v1 with the token in a header."""

    def __init__(self, server: WebServer) -> None:
        self.server = server

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, host: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=20)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if host:
            headers["Host"] = host
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        given = self.server.token if token is None else token
        if path.startswith("/api/"):
            headers["X-Invoices-Token"] = given
            url = path
        else:
            url = f"/{given}{path}"
        connection.request(method, url, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, dict(response.getheaders()), payload

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, _, payload = self.request(method, path, body)
        return status, json.loads(payload)


@pytest.fixture
def client(built: ReviewStore) -> Iterator[Client]:
    server = WebServer(str(built.path), "web-clerk").start()
    try:
        yield Client(server)
    finally:
        server.close()


def test_every_request_needs_the_token(client: Client, built: ReviewStore) -> None:
    server = client.server
    assert server.url == f"http://127.0.0.1:{server.port}/{server.token}/"
    assert len(server.token) >= 30
    assert server.host == "127.0.0.1"
    doc = f"/documents/{built.vat_id}"
    api = f"/api/v1/review/documents/{built.vat_id}"
    for path in (
        "/review",
        "/api/v1/review/queue",
        api,
        f"{doc}/pages/0.png",
        f"{doc}/crops/total_amount.png",
    ):
        assert client.request("GET", path)[0] == 200, path
        assert client.request("GET", path, token="wrong-token")[0] == 403, path
        assert client.request("GET", path, token="")[0] == 403, path
    assert client.request("GET", "/review", token=server.token[:-1])[0] == 403
    assert client.request("GET", "/api/v1/review/queue", host="evil.example:80")[0] == 403
    before = server.call(lambda s: snapshot(s, built.vat_id))
    url = f"/api/v1/documents/{built.vat_id}/fields/total_amount"
    status, _, _ = client.request("POST", url, {"value": "1.00"}, token="nope")
    assert status == 403
    assert server.call(lambda s: snapshot(s, built.vat_id)) == before


def test_endpoints_serve_queue_document_and_images(client: Client, built: ReviewStore) -> None:
    status, headers, page = client.request("GET", "/review")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"review.js" in page and "no-store" in headers["cache-control"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert client.server.token.encode() not in page  # the page never holds the token

    status, queue = client.json("GET", "/api/v1/review/queue")
    assert status == 200 and queue["reviewer"] == "web-clerk" and queue["fields"] == 4
    assert [d["document_id"] for d in queue["documents"]] == [built.vat_id, built.generic_id]

    status, document = client.json("GET", f"/api/v1/review/documents/{built.vat_id}")
    assert status == 200
    assert [f["name"] for f in document["fields"]] == ["buyer_name", "seller_tax_id", "total_amount"]
    assert document["pages"] == [{"index": 0, "width": 1890, "height": 1150}]
    assert document["summary"]["invoice_number"] == "10631331"

    status, headers, png = client.request("GET", f"/documents/{built.vat_id}/pages/0.png")
    assert status == 200 and headers["content-type"] == "image/png"
    assert decode_png(png).shape == (1150, 1890, 3)
    status, _, crop = client.request("GET", f"/documents/{built.vat_id}/crops/total_amount.png")
    assert status == 200 and 300 < decode_png(crop).shape[1] < 600

    assert (
        client.request("GET", f"/documents/{built.vat_id}/crops/invoice_number.png")[0] == 404
    )  # QR: no box
    assert client.request("GET", f"/documents/{built.vat_id}/pages/3.png")[0] == 404
    assert client.json("GET", "/api/v1/review/documents/" + "0" * 64)[0] == 404
    assert client.request("GET", "/documents/../../etc/passwd")[0] == 404
    assert client.request("GET", "/nothing")[0] == 404


def test_post_corrects_or_refuses(client: Client, built: ReviewStore) -> None:
    url = f"/api/v1/documents/{built.vat_id}/fields/total_amount"
    before = client.server.call(lambda s: snapshot(s, built.vat_id))
    status, refused = client.json("POST", url, {"value": "48360.7x"})
    assert status == 400 and "'48360.7x' is not an amount" in refused["error"]
    status, _, _ = client.request("POST", url, b"value=1")
    assert status == 422
    connection = http.client.HTTPConnection("127.0.0.1", client.server.port, timeout=20)
    connection.request(
        "POST",
        url,
        body=b"value=1",
        headers={"Content-Type": "text/plain", "X-Invoices-Token": client.server.token},
    )
    assert connection.getresponse().status == 422
    connection.close()
    assert client.server.call(lambda s: snapshot(s, built.vat_id)) == before

    status, done = client.json("POST", url, {"value": "48360.72"})
    assert status == 200
    assert (done["action"], done["field"], done["value"]) == ("correct", "total_amount", "48360.72")
    assert [f["name"] for f in done["document"]["fields"]] == ["buyer_name", "seller_tax_id"]
    assert done["remaining"] == 3
    status, accepted = client.json(
        "POST", f"/api/v1/documents/{built.vat_id}/fields/buyer_name", {"accept": True}
    )
    assert status == 200 and accepted["action"] == "accept"
    history = client.server.call(review_history, built.vat_id)
    assert [(r["field"], r["action"], r["reviewer"]) for r in history] == [
        ("total_amount", "correct", "web-clerk"),
        ("buyer_name", "accept", "web-clerk"),
    ]


# ---- terminal mode ----------------------------------------------------------------------------


def test_terminal_mode_driven_by_scripted_input(built: ReviewStore, store: Store, tmp_path: Path) -> None:
    answers = [
        "",  # buyer_name: accept
        "9111",  # seller_tax_id: refused
        "91110115MA56E82N05",  # seller_tax_id: corrected
        "s",  # total_amount: skipped
        "2025-02-30",  # en_invoice issue_date: refused
        "2025-09-02",  # corrected
    ]
    out = io.StringIO()
    crops = tmp_path / "crops"
    summary = run_tui(store, "terminal-clerk", io.StringIO("\n".join(answers) + "\n"), out, crop_dir=crops)
    text = out.getvalue()

    assert (summary.accepted, summary.corrected, summary.skipped, summary.refused) == (1, 2, 1, 2)
    assert "2 invoice(s), 4 field(s) to review" in text
    assert "why:     read with low confidence (0.62)" in text
    assert "refused: Seller tax ID (销售方纳税人识别号) 9111: has 4 characters" in text
    assert (
        "refused: Issue date: 2025-02-30 is not a date that exists" in text
    )  # no Chinese label on en_invoice
    assert "corrected seller_tax_id: 91110115MA56E82N06 -> 91110115MA56E82N05" in text
    assert "1 invoice(s) still need review" in text
    crop_paths = [line.split("crop:", 1)[1].strip() for line in text.splitlines() if "crop:" in line]
    assert len(crop_paths) == 4  # one per field shown (a refused field is not shown twice)
    for path in crop_paths:
        image = cv2.imread(path)
        assert image is not None and image.shape[0] > 50, path
        assert Path(path).parent == crops

    assert [entry.fields for entry in review_queue(store)] == [("total_amount",)]
    fields = stored_json(store, built.generic_id)["fields"]
    assert (fields["issue_date"]["value"], fields["issue_date"]["source"]) == ("2025-09-02", "review")
    assert {r["reviewer"] for r in review_history(store, built.vat_id)} == {"terminal-clerk"}


def test_terminal_mode_quits_and_cleans_up(built: ReviewStore, store: Store) -> None:
    out = io.StringIO()
    summary = run_tui(store, "x", io.StringIO("q\n"), out)
    assert summary.quit and summary.accepted == summary.corrected == 0
    path = next(line.split("crop:", 1)[1].strip() for line in out.getvalue().splitlines() if "crop:" in line)
    assert not Path(path).exists()  # the temporary crop folder is removed at the end
    assert review_history(store, built.vat_id) == []
    # End of input quits as well.
    assert run_tui(store, "x", io.StringIO(""), io.StringIO()).quit


def test_cli_review_tui_and_script(built: ReviewStore, tmp_path: Path) -> None:
    env = {**os.environ, "USER": "script-clerk"}
    script = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "review.py"), "--store", str(built.path)],
        input="\n",  # accept the first field, then end of input
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    assert "accepted buyer_name = 北京长城软件有限公司" in script.stdout
    store = built.open()
    try:
        assert review_history(store, built.vat_id)[0]["reviewer"] == "script-clerk"
    finally:
        store.close()

    stdin = sys.stdin
    try:
        sys.stdin = io.StringIO("91110115MA56E82N05\nq\n")
        code = main(["review", "--tui", "--store", str(built.path), "--reviewer", "dave"])
    finally:
        sys.stdin = stdin
    assert code == 0
    store = built.open()
    try:
        assert [r["reviewer"] for r in review_history(store, built.vat_id)] == ["script-clerk", "dave"]
    finally:
        store.close()


def test_cli_review_serves_until_interrupted(built: ReviewStore) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "review", "--no-browser", "--store", str(built.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "USER": "served"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Invoices: http://127.0.0.1:"), line
        url = line.split(": ", 1)[1].strip()
        host_port, token, view = url.removeprefix("http://").split("/")
        assert view == "review"  # `invoices review` opens the app's review view
        connection = http.client.HTTPConnection(*host_port.split(":"), timeout=20)
        connection.request("GET", "/api/v1/review/queue", headers={"X-Invoices-Token": token})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["reviewer"] == "served"
        connection.request("GET", f"/{token}/review")
        response = connection.getresponse()
        assert response.status == 200 and b"review.js" in response.read()
        connection.request("GET", "/not-the-token/review")
        assert connection.getresponse().status == 403
        connection.close()
    finally:
        process.send_signal(2)  # Ctrl+C
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopped" in stdout


def test_a_port_in_use_is_a_clear_error(built: ReviewStore) -> None:
    first = WebServer(str(built.path), "a")
    try:
        taken = first.port
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{taken}"):
            WebServer(str(built.path), "b", port=taken)
        assert first.port == taken  # the first server is unaffected
    finally:
        first.close()
