"""The store's integrity check: ``invoices verify [--deep] [--repair [--from BACKUP]]``.

What is checked, per document folder of the store and per index row:

* the original is there and not empty; with ``deep``, its SHA-256 is its id (ids are content
  hashes, so this proves the bytes are the ones received);
* result.json parses, names its own id, and every page it lists has its image (``deep`` also
  reads each image's PNG signature);
* every index row has its objects, and every stored result has its row, with the same status,
  pages and review count;
* the review audit records parse, belong to the document, and agree with result.json (the last
  correction of a field is its value, from review);
* the failure records and the index's failure rows match.

A document folder without result.json is an interrupted save (the record does not exist yet:
``Store.save`` writes result.json last), listed as incomplete, not as a problem; a re-run of the
ingest completes it.

``repair`` fixes what the store itself can: a missing index row is rebuilt from the store; stray
or stale rows by rebuilding the index (only when every result.json is readable, since a rebuild
would drop the documents whose result is damaged). With a backup (``source``), damaged or
missing objects are copied back from it, each checked first (an original against its id, a
result against its document). Nothing is ever deleted from the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import NotFound, PipelineError
from pipeline.model import InvoiceResult
from pipeline.store import Store
from pipeline.store.index import Query
from pipeline.store.objects import (
    ObjectInfo,
    ObjectStore,
    failure_key,
    original_key,
    page_key,
    result_key,
    reviews_prefix,
)

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEX = frozenset("0123456789abcdef")

# What each kind of problem means; the kinds whose fix is rebuilding the index.
KINDS = {
    "original_missing": "the original is missing",
    "original_empty": "the original is empty",
    "original_altered": "the original's SHA-256 is not its id: its bytes changed",
    "result_unreadable": "result.json cannot be read",
    "result_wrong_document": "result.json belongs to another document",
    "page_missing": "a page image listed in result.json is missing",
    "page_damaged": "a page image is empty or not a PNG",
    "review_unreadable": "a review record cannot be read",
    "review_mismatch": "result.json disagrees with its review records",
    "index_missing": "a stored document has no index row",
    "index_stray": "an index row has no document in the store",
    "index_stale": "an index row disagrees with the stored result",
    "failure_row_missing": "a failure record has no index row",
    "failure_row_stray": "an index failure row has no failure record",
}
REINDEX_KINDS = frozenset({"index_stray", "index_stale", "failure_row_missing", "failure_row_stray"})
RESULT_KINDS = frozenset({"result_unreadable", "result_wrong_document"})
ROW_COLUMNS = ("document_id", "status", "source_name", "page_count", "page_keys", "review_count")


@dataclass(frozen=True)
class Problem:
    kind: str
    document_id: str
    detail: str
    key: str = ""

    def line(self) -> str:
        where = f" {self.key}" if self.key else ""
        return f"{self.kind}: {self.document_id[:16]}{where}: {self.detail}"


@dataclass
class VerifyReport:
    location: str
    deep: bool
    documents: int = 0
    objects: int = 0
    index_rows: int = 0
    bytes_hashed: int = 0
    problems: list[Problem] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # document folders without result.json
    repaired: list[tuple[Problem, str]] = field(default_factory=list)  # (problem, what was done)
    unrepaired: list[tuple[Problem, str]] = field(default_factory=list)  # (problem, why not)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for problem in self.problems:
            counts[problem.kind] += 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "deep": self.deep,
            "clean": self.clean,
            "documents": self.documents,
            "objects": self.objects,
            "index_rows": self.index_rows,
            "bytes_hashed": self.bytes_hashed,
            "incomplete": self.incomplete,
            "problems": [problem.__dict__ for problem in self.problems],
            "repaired": [{**problem.__dict__, "action": action} for problem, action in self.repaired],
            "unrepaired": [{**problem.__dict__, "why": why} for problem, why in self.unrepaired],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Document:
    """What one document folder holds, as far as the index comparison needs it."""

    document_id: str
    problems: list[Problem]
    result: InvoiceResult | None = None
    review_count: int = 0
    page_keys: tuple[str, ...] = ()
    hashed: int = 0


def group_documents(infos: Iterable[ObjectInfo]) -> dict[str, dict[str, ObjectInfo]]:
    """``documents/<id[:2]>/<id>/...`` objects by document id."""
    by_document: dict[str, dict[str, ObjectInfo]] = defaultdict(dict)
    for info in infos:
        parts = info.key.split("/")
        if len(parts) >= 4 and parts[0] == "documents":
            by_document[parts[2]][info.key] = info
    return by_document


def verify(store: Store, deep: bool = False, workers: int = 8) -> VerifyReport:
    """Check the store and its index; nothing is changed (see ``repair``)."""
    started = time.perf_counter()
    report = VerifyReport(store.location, deep)
    objects = store.objects
    by_document = group_documents(objects.list("documents/"))
    report.objects = sum(len(infos) for infos in by_document.values())
    complete = {doc: infos for doc, infos in by_document.items() if result_key(doc) in infos}
    report.incomplete = sorted(set(by_document) - set(complete))
    report.documents = len(complete)
    checked: dict[str, _Document] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for document in _bounded(
            pool, lambda doc: _check_document(objects, doc, complete[doc], deep), sorted(complete)
        ):
            checked[document.document_id] = document
            report.bytes_hashed += document.hashed
            report.problems.extend(document.problems)
    _check_index(store, checked, report)
    _check_failures(store, set(complete), report)
    report.seconds = time.perf_counter() - started
    log.info(
        "verified %s: %d documents, %d objects, %d problems in %.1f s",
        store.location,
        report.documents,
        report.objects,
        len(report.problems),
        report.seconds,
    )
    return report


def _bounded(pool: ThreadPoolExecutor, function: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
    for start in range(0, len(items), 256):
        yield from pool.map(function, items[start : start + 256])


def _check_document(objects: ObjectStore, doc: str, infos: dict[str, ObjectInfo], deep: bool) -> _Document:
    problems: list[Problem] = []
    checked = _Document(doc, problems)
    if len(doc) != 64 or not set(doc) <= HEX:
        problems.append(Problem("original_altered", doc, "the folder name is not a SHA-256 id"))
    original = infos.get(original_key(doc))
    if original is None:
        problems.append(Problem("original_missing", doc, KINDS["original_missing"], original_key(doc)))
    elif deep:
        try:
            data = objects.get(original.key)
        except NotFound:
            problems.append(Problem("original_missing", doc, "vanished while verifying", original.key))
        else:
            checked.hashed = len(data)
            digest = hashlib.sha256(data).hexdigest()
            if not data:
                problems.append(Problem("original_empty", doc, KINDS["original_empty"], original.key))
            elif digest != doc:
                problems.append(
                    Problem(
                        "original_altered", doc, f"its SHA-256 is {digest[:16]}…, not its id", original.key
                    )
                )
    elif original.size == 0 and _has_sizes(infos):
        problems.append(Problem("original_empty", doc, KINDS["original_empty"], original.key))

    key = result_key(doc)
    try:
        result = InvoiceResult.from_dict(json.loads(objects.get(key)))
    except NotFound:
        problems.append(Problem("result_unreadable", doc, "vanished while verifying", key))
        return checked
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(Problem("result_unreadable", doc, f"{type(exc).__name__}: {exc}", key))
        return checked
    if result.document_id != doc:
        problems.append(
            Problem("result_wrong_document", doc, f"it holds document {result.document_id[:16]}…", key)
        )
        return checked
    checked.result = result

    page_keys = tuple(page_key(doc, page.index) for page in result.pages)
    checked.page_keys = page_keys
    for page in page_keys:
        info = infos.get(page)
        if info is None:
            problems.append(Problem("page_missing", doc, KINDS["page_missing"], page))
        elif info.size == 0 and _has_sizes(infos):
            problems.append(Problem("page_damaged", doc, "the page image is empty", page))
        elif deep:
            try:
                head = objects.get(page)[:8]
            except NotFound:
                problems.append(Problem("page_missing", doc, "vanished while verifying", page))
                continue
            if head != PNG_SIGNATURE:
                problems.append(Problem("page_damaged", doc, "not a PNG image", page))

    review_keys = sorted(k for k in infos if k.startswith(reviews_prefix(doc)) and k.endswith(".json"))
    checked.review_count = len(review_keys)
    records: list[dict[str, Any]] = []
    for review in review_keys:
        try:
            record = json.loads(objects.get(review))
            if not isinstance(record, dict):
                raise TypeError("not a JSON object")
        except (NotFound, ValueError, TypeError) as exc:
            problems.append(Problem("review_unreadable", doc, f"{type(exc).__name__}: {exc}", review))
            continue
        if record.get("document_id", doc) != doc:
            problems.append(
                Problem(
                    "review_mismatch", doc, f"the record names document {record.get('document_id')}", review
                )
            )
            continue
        records.append({**record, "key": review})
    problems.extend(_review_problems(result, records))
    return checked


def _has_sizes(infos: dict[str, ObjectInfo]) -> bool:
    # The generic ObjectStore.list gives size 0 for every object: sizes then say nothing.
    return any(info.size for info in infos.values())


def _review_problems(result: InvoiceResult, records: list[dict[str, Any]]) -> list[Problem]:
    """The last review record of each field against result.json (records are sorted by time)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("field"):
            latest[str(record["field"])] = record
    problems = []
    for name, record in latest.items():
        found = result.fields.get(name)
        action = record.get("action")
        if found is None:
            problems.append(
                Problem(
                    "review_mismatch",
                    result.document_id,
                    f"reviewed field {name} is not in result.json",
                    record["key"],
                )
            )
        elif action in ("correct", "accept") and found.value != record.get("new_value"):
            problems.append(
                Problem(
                    "review_mismatch",
                    result.document_id,
                    f"{name}: the review record says {record.get('new_value')!r}, result.json holds {found.value!r}",
                    record["key"],
                )
            )
        elif action == "correct" and str(found.source) != "review":
            problems.append(
                Problem(
                    "review_mismatch",
                    result.document_id,
                    f"{name}: corrected in review, but result.json gives its source as {found.source}",
                    record["key"],
                )
            )
    return problems


def _check_index(store: Store, checked: dict[str, _Document], report: VerifyReport) -> None:
    rows = {row["document_id"]: row for row in store.index.query(Query(), columns=ROW_COLUMNS)}
    report.index_rows = len(rows)
    for doc, row in rows.items():
        document = checked.get(doc)
        if document is None:
            report.problems.append(
                Problem(
                    "index_stray", doc, f"row for {row.get('source_name')!r}: no result.json in the store"
                )
            )
            continue
        result = document.result
        if result is None:
            continue  # the result itself is the problem, reported already
        differences = []
        if row["status"] != str(result.status):
            differences.append(f"status {row['status']} (stored: {result.status})")
        if row["source_name"] != result.source_name:
            differences.append(f"source name {row['source_name']!r} (stored: {result.source_name!r})")
        if int(row["page_count"]) != len(result.pages):
            differences.append(f"{row['page_count']} pages (stored: {len(result.pages)})")
        if int(row["review_count"]) != document.review_count:
            differences.append(f"{row['review_count']} reviews (stored: {document.review_count})")
        indexed_pages = row["page_keys"]
        if isinstance(indexed_pages, str):
            indexed_pages = json.loads(indexed_pages or "[]")
        missing_pages = [key for key in indexed_pages or () if key not in document.page_keys]
        if missing_pages:
            differences.append(f"page keys not in result.json: {', '.join(missing_pages)}")
        if differences:
            report.problems.append(Problem("index_stale", doc, "; ".join(differences)))
    for doc, document in checked.items():
        if doc not in rows:
            name = document.result.source_name if document.result else "?"
            report.problems.append(Problem("index_missing", doc, f"{name!r} is stored but not in the index"))


def _check_failures(store: Store, complete: set[str], report: VerifyReport) -> None:
    recorded = {
        key.split("/")[2]
        for key in store.objects.keys("failed/")
        if key.endswith("/error.json") and len(key.split("/")) >= 4
    }
    recorded -= complete  # a later run stored it: the old failure no longer counts
    rows = {row["document_id"] for row in store.index.failures()}
    for doc in sorted(recorded - rows):
        report.problems.append(
            Problem("failure_row_missing", doc, KINDS["failure_row_missing"], failure_key(doc))
        )
    for doc in sorted(rows - recorded - complete):
        report.problems.append(Problem("failure_row_stray", doc, KINDS["failure_row_stray"]))


# ---- repair ------------------------------------------------------------------------------


def repair(store: Store, report: VerifyReport, source: ObjectStore | None = None) -> VerifyReport:
    """Fix what can be fixed from the store itself (the index) or from ``source`` (a backup)."""
    object_problems = [
        p for p in report.problems if p.kind not in REINDEX_KINDS and p.kind != "index_missing"
    ]
    for problem in object_problems:
        if source is None:
            report.unrepaired.append((problem, _hint(problem)))
            continue
        try:
            action = _restore_from(store.objects, source, problem)
        except PipelineError as exc:
            report.unrepaired.append((problem, f"the backup could not help: {exc}"))
            continue
        if action:
            report.repaired.append((problem, action))
        else:
            report.unrepaired.append((problem, f"{_hint(problem)} (the backup has no good copy)"))

    damaged = [p for p, _ in report.unrepaired if p.kind in RESULT_KINDS]
    index_problems = [p for p in report.problems if p.kind in REINDEX_KINDS or p.kind == "index_missing"]
    needs_rebuild = any(p.kind in REINDEX_KINDS for p in index_problems)
    if needs_rebuild and not damaged:
        rebuilt = store.reindex()
        action = f"index rebuilt from the store ({rebuilt.documents} documents, {rebuilt.failures} failures)"
        report.repaired.extend((p, action) for p in index_problems)
        return report
    for problem in index_problems:
        if problem.kind == "index_missing":
            try:
                store.is_stored(problem.document_id)  # indexes a stored document the index missed
            except Exception as exc:  # a result that cannot be indexed stays listed
                report.unrepaired.append((problem, f"cannot index it: {exc}"))
                continue
            report.repaired.append((problem, "index row rebuilt from the store"))
        else:
            report.unrepaired.append(
                (
                    problem,
                    f"rebuilding the index would drop the {len(damaged)} documents whose result.json is "
                    "damaged: repair those first (verify --repair --from BACKUP), then run verify --repair again",
                )
            )
    return report


def _hint(problem: Problem) -> str:
    if problem.kind.startswith("original"):
        return "restore the original from a backup: invoices verify --repair --from BACKUP"
    if problem.kind.startswith("result") or problem.kind.startswith("page"):
        return (
            "restore it from a backup (invoices verify --repair --from BACKUP), or ingest the original "
            "again into a new store"
        )
    if problem.kind.startswith("review"):
        return (
            "look at the review records and result.json of this document; a review again rewrites result.json"
        )
    return "no automatic repair"


def _restore_from(objects: ObjectStore, source: ObjectStore, problem: Problem) -> str:
    """Copy the object behind ``problem`` back from ``source`` if the backup's copy checks out."""
    doc = problem.document_id
    if problem.kind.startswith("original"):
        key = original_key(doc)
        data, meta = _get(source, key)
        if data is None or hashlib.sha256(data).hexdigest() != doc:
            return ""
    elif problem.kind in RESULT_KINDS:
        key = result_key(doc)
        data, meta = _get(source, key)
        try:
            if data is None or InvoiceResult.from_dict(json.loads(data)).document_id != doc:
                return ""
        except (ValueError, KeyError, TypeError):
            return ""
    elif problem.kind.startswith("page"):
        key = problem.key
        data, meta = _get(source, key)
        if data is None or not data.startswith(PNG_SIGNATURE):
            return ""
    else:
        return ""
    content_type = meta.pop("content_type", "application/octet-stream")
    objects.put(key, data, content_type, meta)
    if objects.get(key) != data:
        return ""
    return f"copied back from the backup {source.location}"


def _get(source: ObjectStore, key: str) -> tuple[bytes | None, dict[str, str]]:
    try:
        return source.get_with_metadata(key)
    except NotFound:
        return None, {}
