"""`invoices backup` and `invoices restore`: local -> local and local -> SeaweedFS (a real S3 server).

After backup then restore, `invoices query` answers the same on the restored store, `verify --deep`
is clean there, and a second backup copies nothing new; a review made since is all the next one copies.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.review.corrections import apply_correction
from pipeline.store import open_store, original_key
from pipeline.store.seaweedfs import LocalSeaweedFS
from tests.aws_env import isolated_aws  # noqa: F401 - the fixture: no AWS settings leak in
from tests.bad_inputs import distinct_pdf, truncated_jpeg
from tests.conftest import SAMPLES


def make_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    files = [SAMPLES / name for name in ("vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf")]
    extra = tmp_path / "in"
    extra.mkdir()
    (extra / "copy.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 3))
    (extra / "broken.jpg").write_bytes(truncated_jpeg())
    args = ["-q", "ingest", *map(str, files), str(extra), "--store", str(store), "--workers", "1"]
    assert main(args) == 1  # the broken one failed: its failure record is backed up too
    opened = open_store(str(store))
    try:
        doc = next(r for r in opened.index.documents() if r["source_name"] == "en_invoice.pdf")
        apply_correction(opened, doc["document_id"], "invoice_number", "INV-2024-0042", "clerk")
    finally:
        opened.close()
    return store


def query(store: str, capsys: pytest.CaptureFixture[str], *extra: str) -> list[Any]:
    assert main(["query", "--store", store, "--format", "json", "--every-document", *extra]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def copied(text: str, verb: str) -> int:
    found = re.search(rf"{verb} (\d+) objects", text)
    assert found, text
    return int(found.group(1))


def round_trip(
    store: Path, backup: str, restored: str, capsys: pytest.CaptureFixture[str], *index: str
) -> None:
    everything = query(str(store), capsys)
    failed = query(str(store), capsys, "--status", "failed")
    assert len(everything) == 4 and len(failed) == 1

    assert main(["backup", backup, "--store", str(store)]) == 0
    first = copied(capsys.readouterr().out, "backed up")
    assert first > 4 * 3  # originals, pages, results, the review record, the failure record
    assert main(["backup", backup, "--store", str(store)]) == 0
    assert copied(capsys.readouterr().out, "backed up") == 0

    assert main(["restore", backup, "--store", restored, *index]) == 0
    out = capsys.readouterr().out
    assert copied(out, "restored") == first and "clean" in out
    assert query(restored, capsys, *index) == everything
    assert query(restored, capsys, *index, "--status", "failed") == failed
    assert query(restored, capsys, *index, "--seller", "智源医疗") == query(
        str(store), capsys, "--seller", "智源医疗"
    )
    assert main(["verify", "--deep", "--store", restored, *index]) == 0
    capsys.readouterr()

    # A review since the last backup: the next one copies the new record and the rewritten result only.
    opened = open_store(str(store))
    try:
        doc = next(r for r in opened.index.documents() if r["source_name"] == "vat_e_general.pdf")
        apply_correction(opened, doc["document_id"], "buyer_name", "北京测试采购有限公司", "clerk")
    finally:
        opened.close()
    assert main(["backup", backup, "--store", str(store)]) == 0
    assert copied(capsys.readouterr().out, "backed up") == 2


def test_backup_and_restore_local_to_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = make_store(tmp_path)
    round_trip(store, str(tmp_path / "backup"), str(tmp_path / "restored"), capsys)


def test_a_damaged_original_is_not_spread_into_the_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_store(tmp_path)
    backup = tmp_path / "backup"
    assert main(["-q", "backup", str(backup), "--store", str(store)]) == 0
    doc = query(str(store), capsys, "--number", "INV-2024-0042")[0]["document_id"]
    good = (backup / original_key(doc)).read_bytes()
    # A new document whose original is damaged before its first backup is refused, and said so.
    opened = open_store(str(store))
    try:
        new = next(r for r in opened.index.documents() if r["source_name"] == "copy.pdf")["document_id"]
    finally:
        opened.close()
    (backup / original_key(new)).unlink()
    path = store / original_key(new)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    assert main(["backup", str(backup), "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert original_key(new) in err and "not its id" in err
    assert not (backup / original_key(new)).exists()
    assert (backup / original_key(doc)).read_bytes() == good


@pytest.mark.slow
def test_backup_and_restore_local_to_seaweedfs(
    tmp_path: Path,
    seaweedfs: LocalSeaweedFS,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    bucket = "bk-" + secrets.token_hex(6)
    seaweedfs.create_bucket(bucket)
    store = make_store(tmp_path)
    round_trip(
        store,
        f"s3://{bucket}/backup/site-a",
        f"s3://{bucket}/restored",
        capsys,
        "--index",
        str(tmp_path / "restored-index.sqlite"),
    )
    client = seaweedfs.client()
    listed = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert all(key.startswith(("backup/site-a/", "restored/")) for key in listed)

    # verify on an S3 store: a page image deleted from the bucket is found, and copied back.
    restored, index = f"s3://{bucket}/restored", str(tmp_path / "restored-index.sqlite")
    page = next(key for key in listed if key.startswith("restored/") and key.endswith("/pages/1.png"))
    client.delete_object(Bucket=bucket, Key=page)
    assert main(["verify", "--store", restored, "--index", index, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(p["kind"], p["key"]) for p in report["problems"]] == [
        ("page_missing", page.removeprefix("restored/"))
    ]
    backup = f"s3://{bucket}/backup/site-a"
    assert (
        main(["verify", "--deep", "--repair", "--from", backup, "--store", restored, "--index", index]) == 0
    )
    assert client.head_object(Bucket=bucket, Key=page)["ContentLength"] > 0


def test_backup_and_restore_with_a_postgres_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    """Restored into a store whose index is PostgreSQL, then backed up from it again."""
    store = make_store(tmp_path)
    round_trip(store, str(tmp_path / "backup"), str(tmp_path / "restored"), capsys, "--index", pg_url)
    again = tmp_path / "backup-of-restored"
    assert main(["backup", str(again), "--store", str(tmp_path / "restored"), "--index", pg_url]) == 0
    assert copied(capsys.readouterr().out, "backed up") > 4 * 3
    assert not (tmp_path / "restored" / "index.sqlite").exists(), "the index is in PostgreSQL only"
