"""What the app holds while it runs: the store (on its own thread), the token, the hot folder, uploads."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline.review.corrections import DEFAULT_REVIEW_BELOW
from pipeline.review.images import PageCache
from pipeline.store import open_store

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.ingest import Outcome, WorkResult
    from pipeline.store import Store
    from pipeline.watch import HotFolder

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreThread:
    """The store lives on one thread: the SQLite index may only be used from the thread that opened it,
    and corrections to one invoice must not interleave."""

    def __init__(self, opener: Callable[[], Store]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="web-store")
        try:
            self.store: Store = self._executor.submit(opener).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` on the store's thread and wait for it."""
        return self._executor.submit(fn, self.store, *args).result()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(fn, self.store, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._executor.submit(fn, self.store, *args))

    def close(self) -> None:
        self._executor.submit(self.store.close).result()
        self._executor.shutdown(wait=True)


@dataclass
class Upload:
    document_id: str
    name: str
    state: str = "processing"  # processing, stored, already_stored, failed
    message: str = ""
    status: str = ""


@dataclass
class Uploads:
    """Documents sent to ``POST /api/v1/documents``: processed one at a time in a worker process (a
    crash in OCR takes only that process), stored from the store thread."""

    settings: Settings | None
    _pool: ProcessPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, Upload] = field(default_factory=dict)
    bundles: dict[str, list[Any]] = field(default_factory=dict)  # a ZIP bundle's id -> its members

    def submit(self, stores: StoreThread, data: bytes, name: str, document_id: str) -> Upload:
        from pipeline.ingest import save_result, work

        with self._lock:
            known = self.jobs.get(document_id)
            if known is not None and known.state == "processing":
                return known
            upload = Upload(document_id, name)
            self.jobs[document_id] = upload
            if self._pool is None:
                # spawn: the parent runs threads (uvicorn, the store), which fork must not copy.
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
            future = self._pool.submit(work, name, data, name, self._settings())

        def computed(done: Future[WorkResult]) -> None:
            try:
                result = done.result()
            except Exception as exc:  # the worker died, or the engine is broken
                log.warning("upload %s failed: %s", name, exc)
                upload.state, upload.message = "failed", f"{type(exc).__name__}: {exc}"
                return
            stored = stores.submit(lambda store: save_result(result, data, name, store))
            stored.add_done_callback(lambda saved: self._saved(upload, saved))

        future.add_done_callback(computed)
        return upload

    def _saved(self, upload: Upload, saved: Future[Outcome]) -> None:
        try:
            outcome = saved.result()
        except Exception as exc:
            upload.state, upload.message = "failed", f"{type(exc).__name__}: {exc}"
            return
        upload.status = outcome.status
        upload.message = outcome.message
        upload.state = str(outcome.state)

    def _settings(self) -> Settings:
        from pipeline.config import Settings

        return self.settings or Settings()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class AppState:
    stores: StoreThread
    token: str
    reviewer: str
    folder: HotFolder | None = None
    review_below: float = DEFAULT_REVIEW_BELOW
    loopback: bool = True
    uploads: Uploads = field(default_factory=lambda: Uploads(None))
    pages: PageCache = field(default_factory=PageCache)

    def close(self) -> None:
        self.uploads.close()
        self.stores.close()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def read_token_file(path: Path) -> str:
    from pipeline.errors import ConfigError

    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from exc
    if len(token) < 16 or any(ch.isspace() for ch in token) or "/" in token:
        raise ConfigError(
            f"the token in {path} must be at least 16 characters, without spaces or '/'"
            " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    return token


def opener_for(store: str | Callable[[], Store]) -> Callable[[], Store]:
    return (lambda: open_store(store)) if isinstance(store, str) else store
