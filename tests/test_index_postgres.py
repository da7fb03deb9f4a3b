"""What only the PostgreSQL index has: its schema versions, concurrent first use, transactions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.errors import StorageError
from pipeline.store.index import IndexEntry, Query
from pipeline.store.index_postgres import SCHEMA_VERSION, PostgresIndex, redact
from tests.query_invoices import INVOICES, make_result


def _entry(n: int) -> IndexEntry:
    return IndexEntry(make_result(INVOICES[n]), f"r{n}", f"o{n}", 100.0 + n)


def test_new_database_gets_the_layout_once(pg_url: str) -> None:
    indexes: list[PostgresIndex] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            indexes.append(PostgresIndex(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(index.is_new for index in indexes) == 1, "one of them created it; the others found it"
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    for index in indexes:
        index.close()
    again = PostgresIndex(pg_url)
    assert not again.is_new
    again.close()


def test_a_newer_layout_is_refused(pg_url: str) -> None:
    PostgresIndex(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match="newer than this program"):
        PostgresIndex(pg_url)


def test_a_failed_rebuild_leaves_the_old_rows(pg_url: str) -> None:
    index = PostgresIndex(pg_url)
    try:
        index.upsert_many([_entry(0), _entry(1)])

        def broken() -> Iterator[IndexEntry]:
            yield _entry(2)
            raise StorageError("the store went away")

        with pytest.raises(StorageError):
            index.rebuild(broken(), [])
        assert sorted(row["document_id"][0] for row in index.query(Query())) == ["a", "b"]
        assert index.upsert_many([_entry(0)]) == 1, "an upsert of the same id replaces, not adds"
        assert len(index.documents()) == 2
    finally:
        index.close()


def test_nul_characters_are_dropped_not_fatal(pg_url: str) -> None:
    index = PostgresIndex(pg_url)
    try:
        result = make_result(INVOICES[0])
        result.source_name = "scan\x00.pdf"
        index.upsert(result, "r", "o", 1.0)
        assert index.query(Query())[0]["source_name"] == "scan.pdf"
    finally:
        index.close()


def test_a_dropped_connection_is_opened_again(pg_url: str) -> None:
    index = PostgresIndex(pg_url)
    try:
        index.upsert_many([_entry(0)])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'invoices' AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StorageError):
            index.has_document("a" * 64)  # the first use finds the connection gone: this call fails
        assert index.has_document("a" * 64), "the next one reconnects"
    finally:
        index.close()


def test_password_is_not_in_messages() -> None:
    assert redact("postgresql://invoices:s3cret@db:5432/x") == "postgresql://invoices@db:5432/x"
    assert redact("postgresql://db:5432/x") == "postgresql://db:5432/x"


def test_review_correction_on_a_postgres_index(tmp_path: Path, pg_url: str) -> None:
    from pipeline.review.corrections import apply_correction, ledger_values, review_queue
    from pipeline.store import open_store

    store = open_store(str(tmp_path / "store"), index=pg_url)
    try:
        result = make_result(INVOICES[1])  # its seller name needs review
        store.save(b"original b", result.source_name, result, [])
        assert [entry.document_id for entry in review_queue(store)] == [result.document_id]
        apply_correction(
            store, result.document_id[:8], "seller_name", "北京智源信息技术股份有限公司", "alice"
        )
        (row,) = store.index.query(Query(number="53237011"))
        assert (row["review_state"], row["review_count"]) == ("reviewed", 1)
        assert row["seller_name"] == "北京智源信息技术股份有限公司"
        assert ledger_values(store, result.document_id) == {}, "no ledger on PostgreSQL: nothing, no error"
    finally:
        store.close()
