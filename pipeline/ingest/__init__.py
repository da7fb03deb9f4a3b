"""Driver: documents through ``process_document`` on every core, into the store.

Workers only compute (bytes + settings -> result) in separate processes; the parent owns
the store, so a crash of one document never leaves a half-written record. ``Runner`` is
the engine shared by ``invoices ingest`` (``run_batch``) and the hot folder
(``pipeline.watch``):

* each document is read and hashed in the parent; one already in the store is never
  sent to a worker (storage is content-addressed, so a re-run does only what is missing);
* a file whose content is already in flight under another name waits for that one and
  shares its outcome (no document is processed twice in one run);
* results are written by a few saver threads, each with its own store connection, so the
  store's fsyncs overlap with each other and with the OCR;
* a storage failure is the failure of that document (reported, not stored, redone by the
  next run), not of the batch;
* a worker process that dies (a native crash, the out-of-memory killer) takes only its own
  document down: the documents that were in flight are retried one at a time, and the one
  that kills its worker again is failed with that reason, even when it dies in the middle of
  sending its result (Python's pool then waits for the rest of the message for ever and never
  notices; the runner checks its worker processes itself).

One file per idea:

* ``inputs``: finding and reading files, ZIP bundles, and the ``Job`` each document becomes;
* ``worker``: what runs in a worker process (``work`` -> ``WorkResult``) and its log relay;
* ``saving``: writing a ``WorkResult`` into the store (``save_result``, the saver threads);
* ``outcomes``: what became of each document (``State``, ``Outcome``);
* ``runner``: the ``Runner`` that ties them together, and ``run_batch`` / ``feed`` on top of it.

Callers import from ``pipeline.ingest``; patch a name in the submodule that looks it up.
"""

from __future__ import annotations

from pipeline.ingest.inputs import (
    FileRefused,
    Job,
    Refused,
    bundle_members,
    discover,
    read_input,
    source_name,
    symlink_reason,
)
from pipeline.ingest.outcomes import Outcome, State
from pipeline.ingest.runner import Runner, feed, run_batch
from pipeline.ingest.saving import save_result
from pipeline.ingest.worker import WorkResult, work

__all__ = [
    "FileRefused",
    "Job",
    "Outcome",
    "Refused",
    "Runner",
    "State",
    "WorkResult",
    "bundle_members",
    "discover",
    "feed",
    "read_input",
    "run_batch",
    "save_result",
    "source_name",
    "symlink_reason",
    "work",
]
