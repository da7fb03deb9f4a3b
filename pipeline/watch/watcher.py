"""The watcher: its loop finds complete files in the inbox, claims them, hands them to the ingest
``Runner`` and moves each to ``done/`` or ``failed/`` (or back to the inbox to retry a failed save);
on start and on every scan it takes over the files of watchers that are gone.

``watch()`` is the entry point; the folder's layout and moves are in ``pipeline.watch.folder``,
claims in ``pipeline.watch.claims``, ZIP bundles in ``pipeline.watch.bundle``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import signal
import stat
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal, Protocol

from pipeline.config import Settings
from pipeline.errors import InputError, StorageError
from pipeline.ingest import (
    FileRefused,
    Job,
    Outcome,
    Refused,
    Runner,
    State,
    bundle_members,
    read_input,
    source_name,
    symlink_reason,
)
from pipeline.store import Store
from pipeline.store.index import CLAIM_STALE_SECONDS
from pipeline.watch.bundle import Bundle
from pipeline.watch.claims import Claim, SharedClaims, owner_id
from pipeline.watch.folder import (
    ERROR_SUFFIX,
    LOCK_NAME,
    HotFolder,
    move_unique,
    older_than,
    split_name,
    write_atomic,
)
from pipeline.watch.inotify import start_inotify

# One logger for the whole package: log lines (``--log-json``'s "logger") and docs name ``pipeline.watch``.
log = logging.getLogger("pipeline.watch")

# With inotify, a file seen being written (created or modified, not yet closed) waits for its close; this
# long without any change it is taken anyway (a close event lost to an inotify queue overflow).
OPEN_WRITER_SECONDS = 60.0

# A document whose save failed goes back to the inbox and is retried after this long (doubling).
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 600.0


@dataclass(frozen=True)
class WatchOptions:
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    stable_seconds: float = 2.0
    poll_interval: float = 1.0
    use_inotify: bool = True
    on_success: Literal["move", "delete"] = "move"
    once: bool = False
    handle_signals: bool = True
    retry_seconds: float = RETRY_FIRST_SECONDS  # first delay before a document whose save failed is redone
    # Claims and liveness through the shared index, not flock (watchers on several machines).
    shared_claims: bool = False
    claim_stale_seconds: float = CLAIM_STALE_SECONDS


class WatchObserver(Protocol):
    """What metrics and alerts (``pipeline.ops``) see of a watcher; called on the watch loop's thread,
    so an observer must return at once (deliver elsewhere). Its exceptions are logged, never raised."""

    def loop_turned(self) -> None: ...

    def file_finished(self, name: str, outcome: Outcome, fate: str) -> None:
        """``fate``: "done", "failed" (moved to failed/) or "retry" (back to the inbox, store error)."""


@dataclass
class WatchReport:
    done: int = 0
    failed: int = 0
    recovered: int = 0
    retried: int = 0


@dataclass
class _Seen:
    signature: tuple[int, int, int]
    since: float


class Watcher:
    def __init__(
        self,
        folder: Path,
        settings: Settings,
        store: Store,
        options: WatchOptions,
        store_factory: Any,
        observers: Sequence[WatchObserver] = (),
        cluster: Any = None,
    ) -> None:
        self.cluster = cluster
        self.claims = SharedClaims(store, options.claim_stale_seconds) if options.shared_claims else None
        self.folder = HotFolder(folder.absolute())
        self.observers = tuple(observers)
        self.settings = settings
        self.store = store
        self.options = options
        self.store_factory = store_factory
        self.owner = owner_id()
        self.mine = self.folder.processing / self.owner
        self.report = WatchReport()
        self._lock_fd = -1
        self._seen: dict[str, _Seen] = {}
        self._closed: set[str] = set()  # closed after writing, or renamed in: complete
        self._writing: set[str] = set()  # created or modified and not closed yet: a writer has it open
        self._event_pending = False
        self._backlog: deque[tuple[os.DirEntry[str], os.stat_result]] = deque()
        self._events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = 0
        self._retry_at: dict[str, tuple[float, float]] = {}  # name -> (not before, next delay)

    # -- life cycle

    def stop(self, now: bool = False) -> None:
        """Finish the documents in flight and return from ``run`` (``now``: return at once; what is in
        flight stays claimed and is taken over on the next start)."""
        self._stopping = max(self._stopping, 2 if now else 1)
        self._wake.set()

    def run(self) -> WatchReport:
        self.folder.create()
        self._take_ownership()
        previous = self._install_signals()
        observer = self._start_inotify()
        runner = Runner(
            self.settings,
            self.store,
            self.options.workers,
            self.store_factory,
            isolate=True,
            cluster=self.cluster,
        )
        aborted = True
        try:
            self._repair_failed()
            for claim in self._recover():
                self._start(runner, claim, None)
            self._loop(runner)
            aborted = self._stopping > 1
        finally:
            runner.close(abort=aborted)
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            self._restore_signals(previous)
            self._release_ownership()
        return self.report

    def _loop(self, runner: Runner) -> None:
        next_scan = 0.0
        announced = False
        while True:
            self._notify("loop_turned")
            if self.claims is not None:
                self.claims.beat(self.owner)
            for job, outcome in runner.results(timeout=0):
                self._finish(job, outcome)
            if self._stopping > 1:
                log.warning(
                    "stopping now: documents in flight stay in %s and are redone on the next start", self.mine
                )
                return
            if self._stopping:
                if not announced:
                    announced = True
                    log.info("stopping: finishing the documents in flight (signal again to stop at once)")
                if runner.idle():
                    log.info("stopped: every claimed document is finished")
                    return
            else:
                self._drain_events()
                now = time.monotonic()
                if now >= next_scan or self._event_pending:
                    self._event_pending = False
                    waiting = self._scan(runner)
                    if now >= next_scan:
                        self._recover_into(runner)
                    next_scan = now + self.options.poll_interval
                    if self.options.once and not waiting and runner.idle():
                        return
            if not runner.idle():
                for job, outcome in runner.results(timeout=min(0.25, self.options.poll_interval)):
                    self._finish(job, outcome)
                self._claim_backlog(runner)
            else:
                self._wake.wait(
                    timeout=max(0.01, min(self.options.poll_interval, next_scan - time.monotonic()))
                )
                self._wake.clear()

    def _take_ownership(self) -> None:
        """Create ``.processing/<owner>/`` with its lock held, visible only once locked."""
        if self.claims is not None:
            self.claims.start(self.folder.root, self.owner)
        temp = self.folder.processing / f".new-{self.owner}"
        try:
            temp.mkdir()
            if self.claims is None:  # with shared claims, liveness is the heartbeat in the index
                self._lock_fd = os.open(temp / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(self._lock_fd, f"{self.owner}\n".encode())
            temp.rename(self.mine)
        except OSError as exc:
            raise StorageError(
                f"cannot create and lock {self.mine}: {exc.strerror} (the hot folder needs a file system "
                "with rename and flock: a local disk, NFSv4 or SMB)"
            ) from exc
        log.info(
            "watching %s as %s (%d workers, stable after %.1f s%s)",
            self.folder.root,
            self.owner,
            self.options.workers,
            self.options.stable_seconds,
            ", claims in the shared index" if self.claims is not None else "",
        )

    def _release_ownership(self) -> None:
        """On a clean stop the (empty) folder goes; with files left in it, the released lock says:
        take these over."""
        try:
            left = [p for p in self.mine.iterdir() if p.name != LOCK_NAME]
            if not left:
                (self.mine / LOCK_NAME).unlink(missing_ok=True)
                self.mine.rmdir()
                if self.claims is not None:
                    self.claims.retire(self.owner)
            else:
                log.warning(
                    "%d claimed files left in %s: the next watcher takes them over", len(left), self.mine
                )
        except OSError as exc:
            log.warning("could not tidy %s: %s", self.mine, exc.strerror)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _install_signals(self) -> dict[int, Any]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}

        def stop(signum: int, frame: FrameType | None) -> None:
            # Only a counter: the loop looks at it at least every poll interval (taking a lock or
            # logging here could deadlock with the code the signal interrupted).
            self._stopping += 1

        return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _start_inotify(self) -> Any:
        if not self.options.use_inotify:
            log.info("polling %s every %.1f s", self.folder.root, self.options.poll_interval)
            return None
        return start_inotify(self.folder.root, self._events, self._wake, self.options.poll_interval)

    # -- finding and claiming

    def _drain_events(self) -> None:
        while True:
            try:
                kind, name = self._events.get_nowait()
            except queue.Empty:
                return
            if kind in ("closed", "moved"):
                self._closed.add(name)
                self._writing.discard(name)
                self._event_pending = True
            elif kind in ("created", "modified"):
                self._closed.discard(name)
                self._writing.add(name)
            else:
                self._closed.discard(name)
                self._writing.discard(name)

    def _scan(self, runner: Runner) -> int:
        """Claim the inbox files that are complete, as far as the runner has room; return how many wait."""
        now = time.monotonic()
        entries = self.folder.inbox()
        present = {entry.name for entry in entries}
        self._seen = {name: seen for name, seen in self._seen.items() if name in present}
        self._closed &= present
        self._writing &= present
        waiting = 0
        backlog: deque[tuple[os.DirEntry[str], os.stat_result]] = deque()
        for entry in entries:
            name = entry.name
            retry = self._retry_at.get(name)
            if retry is not None and now < retry[0]:
                waiting += 1
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            # Links and special files are refused at once; regular files once completely written.
            complete = not stat.S_ISREG(info.st_mode) or self._ready(name, info, now)
            if complete and runner.has_room():
                self._claim(runner, entry, info)
            else:
                waiting += 1
                if complete:
                    backlog.append((entry, info))
        self._backlog = backlog
        return waiting

    def _claim_backlog(self, runner: Runner) -> None:
        """Files found complete by the last scan, claimed as room frees up (not a scan per slot)."""
        while self._backlog and runner.has_room() and not self._stopping:
            entry, info = self._backlog.popleft()
            try:
                now = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # taken by another watcher
            if (now.st_size, now.st_mtime_ns, now.st_ino) != (info.st_size, info.st_mtime_ns, info.st_ino):
                continue  # changed since: the next scan looks again
            self._claim(runner, entry, info)

    def _ready(self, name: str, info: os.stat_result, now: float) -> bool:
        """Completely written: closed after writing or renamed in (inotify), or unchanged for
        ``stable_seconds`` (polling: network shares, files that were there before the watcher)."""
        signature = (info.st_size, info.st_mtime_ns, info.st_ino)
        seen = self._seen.get(name)
        if seen is None or seen.signature != signature:
            self._seen[name] = _Seen(signature, now)
            return name in self._closed and info.st_size > 0
        if name in self._closed and info.st_size > 0:
            return True
        unchanged = now - seen.since
        if name in self._writing:
            return unchanged >= max(OPEN_WRITER_SECONDS, self.options.stable_seconds)
        return unchanged >= self.options.stable_seconds

    def _claim(self, runner: Runner, entry: os.DirEntry[str], info: os.stat_result) -> None:
        source = Path(entry.path)
        refusal: InputError | None = None
        if stat.S_ISLNK(info.st_mode):
            refusal = FileRefused(symlink_reason(source, self.folder.root))
        elif not stat.S_ISREG(info.st_mode):
            refusal = FileRefused("not a regular file (a device, FIFO or socket): refused")
        if self.claims is not None and not self.claims.claim(entry.name, self.owner):
            log.debug("%s is claimed by another watcher", entry.name)
            return
        target = self._free_name(entry.name)
        try:
            source.rename(target)
        except FileNotFoundError:
            log.debug("%s was taken by another watcher", entry.name)
            self._release(entry.name)
            return
        except OSError as exc:
            log.warning("cannot claim %s: %s", entry.name, exc.strerror, extra={"path": entry.path})
            self._release(entry.name)
            return
        self._seen.pop(entry.name, None)
        self._closed.discard(entry.name)
        self._writing.discard(entry.name)
        self._start(runner, Claim(target, entry.name), refusal)

    def _free_name(self, name: str) -> Path:
        # Only this watcher writes into its own folder, so check-then-rename is safe here.
        stem, suffix = split_name(name)
        target, n = self.mine / name, 1
        while target.exists() or target.is_symlink():
            n += 1
            target = self.mine / f"{stem} ({n}){suffix}"
        return target

    def _start(self, runner: Runner, claim: Claim, refusal: InputError | None) -> None:
        name = source_name(Path(claim.name))
        extra = {"path": name}
        if refusal is None:
            try:
                data = read_input(claim.path, self.settings.max_file_bytes, follow_symlinks=False)
            except InputError as exc:
                refusal = exc
        if refusal is not None:
            runner.fail(Job(claim.path, b"", name, document_id="-", tag=claim), refusal)
            return
        members = bundle_members(claim.path, data, self.settings)
        if members is not None:  # a ZIP bundle: every document inside on its own, the file moved once
            bundle = Bundle(claim, len(members))
            log.info(
                "processing bundle %s (%d files)", name, len(members), extra={**extra, "owner": self.owner}
            )
            for member in members:
                if isinstance(member, Refused):
                    stand_in = Job(member.path, b"", member.name, document_id="-", tag=bundle)
                    runner.fail(stand_in, member.error, member.skipped)
                else:
                    member.tag = bundle
                    runner.submit(member)
            return
        job = Job(claim.path, data, name, tag=claim)
        log.info("processing %s", name, extra={**extra, "document": job.document_id, "owner": self.owner})
        runner.submit(job)

    def _release(self, name: str) -> None:
        if self.claims is not None:
            self.claims.release(name, self.owner)

    # -- finishing

    def _finish(self, job: Job, outcome: Outcome) -> None:
        if isinstance(job.tag, Bundle):
            outcome = job.tag.member_done(outcome)  # type: ignore[assignment]
            if outcome is None:
                return
        claim: Claim = job.tag if isinstance(job.tag, Claim) else job.tag.claim
        try:
            self._finish_claim(job, outcome, claim)
        finally:
            self._release(claim.name)

    def _finish_claim(self, job: Job, outcome: Outcome, claim: Claim) -> None:
        name = source_name(Path(claim.name))
        extra: dict[str, Any] = {"path": name, "state": str(outcome.state), "owner": self.owner}
        if outcome.document_id:
            extra["document"] = outcome.document_id
        try:
            if outcome.state != State.FAILED:
                self._succeeded(claim, outcome, extra)
                fate = "done"
            elif outcome.error_type == "StorageError":
                self._retry_later(claim, outcome, extra)
                fate = "retry"
            else:
                self._failed(claim, outcome, extra)
                fate = "failed"
            self._notify("file_finished", name, outcome, fate)
        except OSError as exc:
            # The file stays in our processing folder: taken over and redone after a restart.
            log.error("cannot move %s out of %s: %s", name, self.mine, exc.strerror, extra=extra)

    def _succeeded(self, claim: Claim, outcome: Outcome, extra: dict[str, Any]) -> None:
        if self.options.on_success == "delete":
            claim.path.unlink()
            where = "deleted"
        else:
            where = str(move_unique(claim.path, self.folder.done, claim.name).relative_to(self.folder.root))
        self.report.done += 1
        self._retry_at.pop(claim.name, None)
        detail = (
            f"{outcome.status or 'stored'} {outcome.doc_type}, {outcome.pages} pages, {outcome.seconds:.1f} s"
            if outcome.state == State.STORED
            else outcome.message or "already stored"
        )
        if outcome.same_invoice:
            detail += f"; {outcome.same_invoice}"
        log.info(
            "done %s (%s) -> %s", extra["path"], detail, where, extra={**extra, "status": outcome.status}
        )

    def _failed(self, claim: Claim, outcome: Outcome, extra: dict[str, Any]) -> None:
        target = move_unique(claim.path, self.folder.failed, claim.name)
        reason = outcome.message or outcome.state
        write_atomic(
            target.with_name(target.name + ERROR_SUFFIX),
            f"{reason}\n\n"
            f"file: {extra['path']}\n"
            f"document: {outcome.document_id or '-'}\n"
            f"failed at: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
            f"watcher: {self.owner}\n"
            "To try again, move the file back into the hot folder.\n",
        )
        self.report.failed += 1
        self._retry_at.pop(claim.name, None)
        log.warning(
            "failed %s: %s -> %s",
            extra["path"],
            reason,
            target.relative_to(self.folder.root),
            extra={**extra, "reason": reason},
        )

    def _retry_later(self, claim: Claim, outcome: Outcome, extra: dict[str, Any]) -> None:
        """The store could not take it: back into the inbox, tried again after a growing delay."""
        # A rename, not move_unique: a hard link appearing in the inbox looks like a writer creating a file.
        stem, suffix = split_name(claim.name)
        target, n = self.folder.root / claim.name, 1
        while target.exists() or target.is_symlink():
            n += 1
            target = self.folder.root / f"{stem} ({n}){suffix}"
        claim.path.rename(target)
        _, delay = self._retry_at.get(claim.name, (0.0, self.options.retry_seconds))
        self._retry_at[target.name] = (time.monotonic() + delay, min(2 * delay, RETRY_MAX_SECONDS))
        self.report.retried += 1
        log.error("not stored, retried in %.0f s: %s: %s", delay, extra["path"], outcome.message, extra=extra)

    def _notify(self, event: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, event)(*args)
            except Exception:  # monitoring must never stop the hot folder
                log.exception("observer %s failed on %s", type(observer).__name__, event)

    # -- recovery

    def _recover(self) -> list[Claim]:
        """Take over the files of watchers that are gone (their lock is free)."""
        claims: list[Claim] = []
        try:
            owners = [p for p in self.folder.processing.iterdir() if p.is_dir() and p != self.mine]
        except OSError:
            return claims
        for owner in owners:
            if owner.name.startswith(".new-") and not older_than(owner, 60.0):
                continue  # a watcher being born
            if self.claims is not None:
                claims.extend(self._take_over(owner))
                continue
            lock_path = owner / LOCK_NAME
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                fd = -1  # being tidied by whoever took it over; its files are still fair game
            except OSError:
                continue
            try:
                if fd >= 0:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # alive
                    except OSError as exc:  # no locking on this file system: never take anything
                        log.warning("cannot check whether %s is alive: %s", owner.name, exc.strerror)
                        continue
                for path in sorted(owner.iterdir()):
                    if path.name == LOCK_NAME:
                        continue
                    if self._moved_out_already(path):
                        # It died between linking the file into done/ or failed/ and unlinking it here.
                        path.unlink(missing_ok=True)
                        log.info("%s was already finished by %s", path.name, owner.name)
                        continue
                    target = self._free_name(path.name)
                    try:
                        path.rename(target)
                    except FileNotFoundError:
                        continue
                    claims.append(Claim(target, path.name))
                    log.warning(
                        "recovered %s from %s (it stopped before finishing it)",
                        path.name,
                        owner.name,
                        extra={"path": source_name(path)},
                    )
                with contextlib.suppress(OSError):
                    lock_path.unlink(missing_ok=True)
                    owner.rmdir()
            finally:
                if fd >= 0:
                    os.close(fd)
        self.report.recovered += len(claims)
        return claims

    def _take_over(self, owner: Path) -> list[Claim]:
        """Shared claims: the files of a watcher whose heartbeat stopped, each claimed in the index."""
        assert self.claims is not None
        if self.claims.alive(owner.name) or not older_than(owner, self.claims.stale_seconds):
            return []
        taken: list[Claim] = []
        with contextlib.suppress(OSError):
            for path in sorted(owner.iterdir()):
                if path.name == LOCK_NAME:
                    continue
                if self._moved_out_already(path):
                    path.unlink(missing_ok=True)
                    continue
                if not self.claims.claim(path.name, self.owner):
                    continue  # another watcher took it over first
                target = self._free_name(path.name)
                try:
                    path.rename(target)
                except FileNotFoundError:
                    self._release(path.name)
                    continue
                taken.append(Claim(target, path.name))
                log.warning(
                    "recovered %s from %s (its heartbeat stopped)", path.name, owner.name,
                    extra={"path": source_name(path)},
                )  # fmt: skip
            (owner / LOCK_NAME).unlink(missing_ok=True)
            owner.rmdir()
        return taken

    def _moved_out_already(self, path: Path) -> bool:
        """Whether ``path`` is also linked in done/ or failed/ (the same inode)."""
        try:
            info = path.lstat()
        except OSError:
            return False
        if info.st_nlink < 2:
            return False
        for folder in (self.folder.done, self.folder.failed):
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    if (
                        entry.inode() == info.st_ino
                        and entry.stat(follow_symlinks=False).st_dev == info.st_dev
                    ):
                        return True
        return False

    def _recover_into(self, runner: Runner) -> None:
        for claim in self._recover():
            self._start(runner, claim, None)

    def _repair_failed(self) -> None:
        """A file moved to failed/ just before a crash has no reason beside it yet: say so."""
        try:
            names = {p.name for p in self.folder.failed.iterdir()}
        except OSError:
            return
        for name in names:
            if name.endswith(ERROR_SUFFIX) or name.startswith(".tmp-") or name + ERROR_SUFFIX in names:
                continue
            with contextlib.suppress(OSError):
                write_atomic(
                    self.folder.failed / (name + ERROR_SUFFIX),
                    "unknown: the watcher stopped between moving this file here and writing the reason\n\n"
                    "To try again, move the file back into the hot folder.\n",
                )


def watch(
    folder: Path,
    settings: Settings,
    store: Store,
    options: WatchOptions,
    store_factory: Any = None,
    observers: Sequence[WatchObserver] = (),
    cluster: Any = None,
) -> WatchReport:
    """Watch ``folder`` until SIGTERM/SIGINT (or, with ``options.once``, until the inbox is empty).

    ``store`` is used on this thread; ``store_factory`` (a function returning another connection to
    the same store) lets results be written on saver threads, see ``pipeline.ingest.Runner``.
    ``observers`` (metrics, alerts: ``pipeline.ops``) hear of every loop turn and finished file;
    ``cluster`` (``pipeline.cluster.ClusterExecutor``) runs the documents on Dask workers.
    """
    return Watcher(folder, settings, store, options, store_factory, observers, cluster).run()
