"""A throw-away PostgreSQL server from Debian's packages, for the tests and the benchmark.

``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/<version>/bin`` (``apt-get install postgresql``)
in a fresh folder, listening on 127.0.0.1 only, on a port picked free, with password (SCRAM)
authentication and no Unix socket. PostgreSQL refuses to run as root: run as root, the server runs
as the unprivileged ``nobody`` (the folder is given to it)::

    with LocalPostgres() as pg:
        url = pg.create_database()     # postgresql://invoices:…@127.0.0.1:PORT/test_…

Not used by the pipeline itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.errors import MissingDependency, StorageError
from pipeline.lifeline import end_watchdog, stop_when_orphaned
from pipeline.store.seaweedfs import free_ports

SERVER_USER = "nobody"


def find_pg_bin() -> Path:
    """The newest installed PostgreSQL's binaries folder."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise MissingDependency(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql, or scripts/install-system-deps.sh --test"
        )
    return candidates[-1]


class LocalPostgres:
    def __init__(self, root: Path | None = None, user: str = "invoices") -> None:
        self.bin = find_pg_bin()
        self.user = user
        self.password = secrets.token_hex(12)
        (self.port,) = free_ports(1)
        self._own_root = root is None
        # Not under pytest's tmp folders: those are root-only (0700), and the server runs as nobody.
        self.root = Path(tempfile.mkdtemp(prefix="invoices-pg-")) if root is None else root
        self.data = self.root / "data"
        self._run_as: dict[str, Any] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            check=False,
            **self._run_as,
        )
        if result.returncode != 0:
            raise StorageError(f"{Path(args[0]).name} failed: {(result.stderr or result.stdout).strip()}")
        return result

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self._run_as:
                os.chown(pwfile, self._run_as["user"], self._run_as["group"])
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",  # Unicode character classes: pg_trgm makes trigrams of Chinese text
                "--no-sync",
            )
            pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=64MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        # pg_ctl detaches the server: without this, a test run killed with SIGKILL leaves it running.
        end_watchdog(self._watchdog)
        self._watchdog = stop_when_orphaned(
            self.postmaster_pid, signal.SIGQUIT, remove=self.root if self._own_root else None
        )
        self._wait_ready()

    @property
    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def _wait_ready(self, seconds: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + seconds
        while True:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        end_watchdog(self._watchdog)
        self._watchdog = None
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(StorageError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            if (self.data / "postmaster.pid").exists():
                with contextlib.suppress(StorageError):
                    self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = name or f"test_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_url, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
