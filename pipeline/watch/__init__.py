"""The hot folder: files dropped into a folder (by a scanner, a share, a mail gateway) are processed
once each, and end in ``done/`` or in ``failed/`` with the reason beside them.

Layout (``HOTFOLDER`` is the inbox)::

    HOTFOLDER/                         files arrive here
    HOTFOLDER/.processing/<owner>/     claimed by one watcher (atomic rename), with its .lock
    HOTFOLDER/done/                    processed and stored (or deleted: ``on_success="delete"``)
    HOTFOLDER/failed/                  could not be processed; <name>.error.txt says why

A file is taken once it is completely written: a close-after-write (or a rename into the
folder) seen by inotify, or the same size, mtime and inode over ``stable_seconds`` seen by
polling (network shares, where inotify sees nothing). Temporary and partial names are never
taken. A file is claimed by renaming it into this watcher's own processing folder: of two
watchers on the same folder only one rename succeeds. Each watcher holds an exclusive lock
(``flock``) on ``.processing/<owner>/.lock`` while it lives; the files of an owner whose lock is
free (it crashed, or was killed) are taken over by the next watcher that looks, on start and
on every scan. Taking a file over is safe because storage is content-addressed: a document
stored before the crash is recognised and only moved to ``done/``.

With ``shared_claims`` (``invoices watch --cluster``: watchers on several machines share one
folder over NFS or SMB, where ``flock`` is not reliable) each file is also claimed through the
shared index (``Index.claim``: a row with a unique key, so only one watcher gets it), and a
watcher is alive while its heartbeat in the index is fresh; a dead watcher's claims and files are
taken over once its heartbeat is ``claim_stale_seconds`` old. See docs/HOTFOLDER.md, docs/SCALE.md.

Modules: ``folder`` (the layout, ignored names, moves that never overwrite), ``claims`` (``Claim``,
``SharedClaims``), ``bundle`` (ZIP bundles), ``inotify`` (the event source) and ``watcher`` (the loop
and the ``watch()`` entry point).
"""

from __future__ import annotations

from pipeline.watch.claims import SharedClaims
from pipeline.watch.folder import ERROR_SUFFIX, HotFolder, ignored, move_unique
from pipeline.watch.watcher import Watcher, WatchOptions, watch

__all__ = [
    "ERROR_SUFFIX",
    "HotFolder",
    "SharedClaims",
    "WatchOptions",
    "Watcher",
    "ignored",
    "move_unique",
    "watch",
]
