"""Ingest on Dask distributed (real LocalCluster and scheduler processes on 127.0.0.1), with the
PostgreSQL index and the S3 store (SeaweedFS) where the test is about them, and the faults: a
worker killed mid-task, the scheduler lost, PostgreSQL down, two clients at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.cluster import ClusterError, is_loopback, parse_cluster
from pipeline.errors import ConfigError
from pipeline.store import open_store
from pipeline.store.objects import original_key, result_key
from pipeline.store.pglocal import LocalPostgres
from pipeline.store.seaweedfs import LocalSeaweedFS, free_ports
from tests.conftest import SAMPLES

# Text-layer PDFs: fast (no OCR), where OCR is not the point.
PDFS = ["vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf"]
# Pages that need OCR: seconds each, so a fault can land while one is being processed.
SCANS = ["vat_special_clean.png", "vat_general_photo.jpg", "vat_e_general_skew.png"]


def _query(store: str, index: str, capsys: pytest.CaptureFixture[str], *args: str) -> list[Any]:
    assert main(["query", "--store", store, "--index", index, "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def _count(pattern: str, text: str) -> int:
    found = re.search("^" + pattern + r"\s+(\d+)$", text, re.M)
    assert found, text
    return int(found.group(1))


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """A LocalCluster of 2 worker processes (1 thread each) on 127.0.0.1, for the module."""
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


def test_cluster_addresses() -> None:
    assert parse_cluster("local:2") == ("local", 2)
    assert parse_cluster("tcp://10.1.2.3:8786") == ("tcp://10.1.2.3:8786", 0)
    assert parse_cluster("scheduler:8786") == ("tcp://scheduler:8786", 0)
    with pytest.raises(ConfigError):
        parse_cluster("http://x:1")
    assert is_loopback("tcp://127.0.0.1:8786") and is_loopback("localhost:8786")
    assert not is_loopback("tcp://10.1.2.3:8786") and not is_loopback("tcp://scheduler:8786")


def test_directory_store_refused_for_a_remote_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    code = main(["ingest", str(SAMPLES / PDFS[0]), "--store", str(store), "--cluster", "tcp://10.9.8.7:8786"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "workers on other machines cannot see" in err
    assert not (store / "documents").exists()


def test_unreachable_scheduler_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)
    store = str(tmp_path / "store")
    code = main(["ingest", str(SAMPLES / PDFS[0]), "--store", store, "--cluster", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == ClusterError.exit_code
    assert "cannot reach the Dask scheduler" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_local_cluster_s3_postgres_gives_the_same_rows_as_a_local_ingest(
    seaweedfs: LocalSeaweedFS, postgres: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The acceptance: local:2 + S3 + PostgreSQL, then `invoices query`: the rows of a plain ingest."""
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    bucket = "cluster-" + os.urandom(4).hex()
    seaweedfs.create_bucket(bucket)
    files = [str(SAMPLES / name) for name in [*PDFS, "corrupt_truncated.jpg"]]
    s3, pg = f"s3://{bucket}/scans", postgres.create_database()
    code = main(["ingest", *files, "--cluster", "local:2", "--store", s3, "--index", pg])
    out = capsys.readouterr().out
    assert code == 1, out  # the corrupt JPEG
    assert _count("stored", out) == 3 and _count("failed", out) == 1

    plain, plain_index = str(tmp_path / "plain"), str(tmp_path / "plain.sqlite")
    assert main(["ingest", *files, "--workers", "1", "--store", plain, "--index", plain_index]) == 1
    capsys.readouterr()
    for filters in ([], ["--seller", "智源医疗"], ["--text", "文化传媒"], ["--status", "needs_review"]):
        on_cluster = _query(s3, pg, capsys, *filters)
        assert on_cluster == _query(plain, plain_index, capsys, *filters), filters
    assert len(_query(s3, pg, capsys)) == 3
    failed = _query(s3, pg, capsys, "--status", "failed")
    assert [row["source_name"] for row in failed] == ["corrupt_truncated.jpg"]

    # Reindex from the bucket into PostgreSQL: the same answers again.
    assert main(["reindex", "--store", s3, "--index", pg]) == 0
    assert "indexed 3 documents and 1 failures" in capsys.readouterr().out
    assert _query(s3, pg, capsys) == _query(plain, plain_index, capsys)


@pytest.mark.slow
def test_worker_killed_mid_task_is_rerun_and_stored_once(
    dask_cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import distributed

    store = str(tmp_path / "store")
    files = [str(SAMPLES / name) for name in [*SCANS, *PDFS]]
    outcome: dict[str, int] = {}

    def run() -> None:
        outcome["code"] = main(
            ["ingest", *files, "--store", store, "--cluster", dask_cluster.scheduler_address]
        )

    with distributed.Client(dask_cluster) as watcher:
        before = set(watcher.run(os.getpid).values())
        thread = threading.Thread(target=run)
        thread.start()
        victim = None
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and thread.is_alive():
            busy = [address for address, keys in watcher.processing().items() if keys]
            if busy:
                victim = watcher.run(os.getpid, workers=busy[:1])[busy[0]]
            else:
                time.sleep(0.05)
        assert victim is not None, "no task was ever seen running"
        os.kill(victim, signal.SIGKILL)
        thread.join(timeout=600)
        assert not thread.is_alive()
        watcher.wait_for_workers(2, timeout=120)
        after = set(watcher.run(os.getpid).values())
    out = capsys.readouterr().out
    assert outcome["code"] == 0, out
    assert victim in before and victim not in after, "the worker was killed and replaced"
    assert _count("stored", out) == len(files) and _count("failed", out) == 0

    opened = open_store(store)
    try:
        rows = opened.index.documents()
        assert sorted(row["source_name"] for row in rows) == sorted(Path(f).name for f in files)
        keys = list(opened.objects.keys("documents/"))
        for row in rows:
            document_id = row["document_id"]
            assert keys.count(original_key(document_id)) == 1
            assert keys.count(result_key(document_id)) == 1
        assert len({key.split("/")[2] for key in keys}) == len(files), "each input once"
    finally:
        opened.close()


def _start_scheduler(port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
    )  # fmt: skip


def _start_worker(port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
         "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "30"],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
    )  # fmt: skip


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.slow
def test_scheduler_lost_stops_clearly_and_a_rerun_finishes(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    files = [str(SAMPLES / name) for name in [*PDFS, *SCANS]]
    log = tmp_path / "dask.log"
    (port,) = free_ports(1)
    scheduler, worker = _start_scheduler(port, log), _start_worker(port, log)
    client = None
    try:
        client = subprocess.Popen(
            _cli("ingest", *files, "--store", store, "--cluster", f"tcp://127.0.0.1:{port}"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and client.poll() is None:
            if list(Path(store).glob("documents/*/*/result.json")):
                break
            time.sleep(0.05)
        assert client.poll() is None, client.communicate()
        _stop(scheduler)
        out, err = client.communicate(timeout=300)
    finally:
        _stop(scheduler, worker)
        if client is not None and client.poll() is None:
            client.kill()
    assert client.returncode == int(ClusterError.exit_code), (out, err)
    assert "lost the Dask scheduler" in err and "run the same command again" in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]]
    done_first = len(list(Path(store).glob("documents/*/*/result.json")))
    assert 1 <= done_first < len(files)

    (port,) = free_ports(1)
    scheduler, worker = _start_scheduler(port, log), _start_worker(port, log)
    try:
        rerun = subprocess.run(
            _cli("ingest", *files, "--store", store, "--cluster", f"tcp://127.0.0.1:{port}"),
            capture_output=True, env=_env(), text=True, timeout=600,
        )  # fmt: skip
    finally:
        _stop(scheduler, worker)
    assert rerun.returncode == 0, rerun.stderr
    assert _count("already stored", rerun.stdout) >= done_first
    assert _count("stored", rerun.stdout) + _count("already stored", rerun.stdout) == len(files)
    assert len(list(Path(store).glob("documents/*/*/result.json"))) == len(files)


def test_postgres_down_or_wrong_password_is_one_line_exit_4(
    postgres: LocalPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = postgres.create_database()
    wrong = postgres.url(database.rsplit("/", 1)[1], password="not-the-password")
    (port,) = free_ports(1)
    down = f"postgresql://invoices:x@127.0.0.1:{port}/invoices"
    for url, reason in ((wrong, "password authentication failed"), (down, "Connection refused")):
        store = tmp_path / f"store-{port}-{len(url)}"
        code = main(["ingest", str(SAMPLES / PDFS[0]), "--store", str(store), "--index", url])
        err = capsys.readouterr().err
        assert code == 4, err
        assert len(err.strip().splitlines()) == 1 and reason in err, err
        assert "not-the-password" not in err and ":x@" not in err, "no password in the message"
        assert not (store / "documents").exists(), "nothing stored"
    import psycopg

    with psycopg.connect(database) as db:
        assert db.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'documents'"
        ).fetchone() == (0,)


@pytest.mark.slow
def test_two_clients_at_once_store_each_document_once(
    dask_cluster: Any, postgres: LocalPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in [*PDFS, "vat_special_clean.png"]:
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    (folder / "copy of vat_e_general.pdf").write_bytes((SAMPLES / PDFS[0]).read_bytes())
    store, index = str(tmp_path / "store"), postgres.create_database()
    command = _cli(
        "ingest", str(folder), "--store", store, "--index", index, "--cluster", dask_cluster.scheduler_address
    )
    clients = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True)
        for _ in range(2)
    ]
    results = [client.communicate(timeout=600) for client in clients]
    for client, (_, err) in zip(clients, results, strict=True):
        assert client.returncode == 0, err
    stored = sum(_count("stored", out) for out, _ in results)
    assert stored == 4, results  # four different documents (one file is a copy), each stored once
    for out, _ in results:
        assert _count("stored", out) + _count("already stored", out) == 5
    rows = _query(store, index, capsys)
    assert len(rows) == 4 and len({row["document_id"] for row in rows}) == 4
    assert len(list(Path(store).glob("documents/*/*/original"))) == 4


@pytest.mark.slow
def test_local_cluster_client_killed_leaves_no_worker(tmp_path: Path) -> None:
    """The workers of `--cluster local:N` die with the client, even when it is killed with SIGKILL."""
    from tests.killed_parent import kill_parent_and_check, scans

    scans(tmp_path / "in", 8)
    command = [sys.executable, "-m", "pipeline.cli", "-q", "ingest", str(tmp_path / "in")]
    command += ["--store", str(tmp_path / "store"), "--cluster", "local:2"]
    kill_parent_and_check(command, tmp_path)
