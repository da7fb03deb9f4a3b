"""The embedded store: create-only originals, atomic writes, idempotent index."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from pipeline.errors import NotFound, StorageError
from pipeline.model import DocType, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo
from pipeline.process import encode_png
from pipeline.store import open_store, original_key, page_key, result_body, result_key
from pipeline.store.objects import LocalObjectStore


def make_result(document_id: str = "ab" * 32, number: str = "12345678") -> InvoiceResult:
    return InvoiceResult(
        document_id=document_id,
        source_name="scan 01.jpg",
        doc_type=DocType.VAT_GENERAL_PAPER,
        fields={
            "invoice_number": Field(number, 0.99, FieldStatus.OK, FieldSource.OCR),
            "seller_name": Field(
                "某某有限公司", 0.7, FieldStatus.NEEDS_REVIEW, FieldSource.OCR, reasons=["weak"]
            ),
            "total_amount": Field("100.00", 0.99, FieldStatus.OK, FieldSource.OCR),
        },
        pages=[PageInfo(0, 100, 80, "ocr")],
    )


def test_create_only_never_overwrites(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path)
    assert objects.put("documents/x/original", b"first", create_only=True)
    assert not objects.put("documents/x/original", b"second", create_only=True)
    assert objects.get("documents/x/original") == b"first"
    assert objects.metadata("documents/x/original")["content_type"] == "application/octet-stream"
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_two_writers_one_winner(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda n: objects.put("k/original", f"{n}".encode(), create_only=True), range(32))
        )
    assert results.count(True) == 1
    assert objects.get("k/original").decode() == str(results.index(True))


def test_keys_and_bad_keys(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path)
    objects.put("a/b/c.json", b"{}", "application/json")
    assert list(objects.keys("a")) == ["a/b/c.json"]
    with pytest.raises(StorageError):
        objects.put("../escape", b"x")
    with pytest.raises(NotFound):
        objects.get("a/missing")


def test_save_is_idempotent_and_indexed(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    result = make_result()
    assert store.save(b"original bytes", "scan 01.jpg", result, [(0, b"\x89PNG fake")])
    assert not store.save(b"original bytes", "scan 01.jpg", result, [(0, b"\x89PNG fake")])
    document_id = result.document_id
    assert store.objects.get(original_key(document_id)) == b"original bytes"
    assert store.objects.get(page_key(document_id, 0)) == b"\x89PNG fake"
    stored = json.loads(store.objects.get(result_key(document_id)))
    assert stored["fields"]["invoice_number"]["value"] == "12345678"
    rows = store.index.documents()
    assert len(rows) == 1
    assert rows[0]["status"] == "needs_review"
    assert rows[0]["review_fields"] == "seller_name"
    assert store.load_result(document_id[:8]).value("total_amount") == "100.00"
    with pytest.raises(NotFound):
        store.load_result("ffff")
    store.close()


def test_failures_are_recorded(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    store.save_failure("cd" * 32, "bad.jpg", "ImageUnreadable", "image is corrupt")
    assert store.index.failures()[0]["message"] == "image is corrupt"
    assert store.index.counts()["failed"] == 1
    store.close()


def test_result_round_trip() -> None:
    result = make_result()
    again = InvoiceResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()
    assert again.status.value == "needs_review"


def _open_index(path: str, barrier: Any, outcomes: Any) -> None:
    from pipeline.store.index_sqlite import SqliteIndex as Index

    barrier.wait()
    try:
        Index(Path(path)).close()
        outcomes.put("ok")
    except StorageError as exc:
        outcomes.put(str(exc))


def test_processes_opening_a_new_index_at_once_all_succeed(tmp_path: Path) -> None:
    """Two watchers or batch workers starting together on a fresh store: SQLite refuses the
    switch to WAL at once (no busy wait) while another process holds the lock."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(15):
        barrier, outcomes = context.Barrier(3), context.Queue()
        path = str(tmp_path / f"store{attempt}" / "index.sqlite")
        processes = [context.Process(target=_open_index, args=(path, barrier, outcomes)) for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [outcomes.get(timeout=5) for _ in processes] == ["ok"] * 3


@pytest.mark.parametrize("channels", [0, 3, 4])
def test_page_pngs_decode_to_the_exact_page_pixels(channels: int) -> None:
    rng = np.random.default_rng(7)
    shape = (37, 53) if channels == 0 else (37, 53, channels)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    image[:10] = 255  # page images are mostly white: long runs as well as noise
    decoded = cv2.imdecode(np.frombuffer(encode_png(image), np.uint8), cv2.IMREAD_UNCHANGED)
    expected = image if channels != 4 else image[:, :, :3]
    assert decoded.shape == expected.shape
    assert np.array_equal(decoded, expected)


def test_result_json_is_compact_and_round_trips() -> None:
    result = InvoiceResult(
        document_id="d" * 64, source_name="a.pdf", doc_type=DocType.VAT_SPECIAL_PAPER, fields={}
    )
    body = result_body(result)
    assert b"\n" not in body
    assert InvoiceResult.from_dict(json.loads(body)).to_dict() == result.to_dict()
