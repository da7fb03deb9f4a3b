"""What the views and the API show, built from the library on the store's thread (never SQL here)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipeline.errors import NotFound
from pipeline.review.corrections import (
    HINTS,
    apply_correction,
    display_value,
    field_kind,
    field_label,
    fields_to_review,
    ledger_values,
    needs_review,
    qr_values,
    review_history,
    review_queue,
)
from pipeline.store import result_body
from pipeline.store.index import Search

if TYPE_CHECKING:
    from pipeline.store import Store
    from pipeline.watch import HotFolder

log = logging.getLogger(__name__)

SEARCH_COLUMNS = (
    "document_id",
    "source_name",
    "doc_type",
    "status",
    "invoice_code",
    "invoice_number",
    "issue_date",
    "seller_name",
    "vendor_name",
    "seller_tax_id",
    "buyer_name",
    "buyer_tax_id",
    "total_amount",
    "currency",
    "review_state",
    "review_fields",
    "ingested_at",
)


def search_page(
    store: Store, search: Search, sort: str, descending: bool, page: int, per_page: int
) -> dict[str, Any]:
    rows, total = store.index.search(
        search, SEARCH_COLUMNS, sort=sort, descending=descending, offset=(page - 1) * per_page, limit=per_page
    )
    return {"total": total, "page": page, "per_page": per_page, "results": grouped(store, rows)}


def grouped(store: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per invoice: the other files of an invoice (its OFD, PDF, XML, a scan) on the same page
    fold into its first row; every row says how many files the store holds of its invoice
    (``files``) and lists the others (``other_files``)."""
    from pipeline.store.invoices import invoice_key, same_invoice

    out: list[dict[str, Any]] = []
    shown: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = invoice_key(row.get("invoice_code"), row.get("invoice_number"))
        if key is not None and len(key[1]) >= 20:
            key = ("", key[1])
        first = shown.get(key) if key else None
        if first is not None and row["document_id"] in first["other_files"]:
            continue
        group = same_invoice(store.index, row.get("invoice_code"), row.get("invoice_number")) if key else []
        others = [other["document_id"] for other in group if other["document_id"] != row["document_id"]]
        entry = {**row, "files": 1 + len(others), "other_files": others}
        if key is not None:
            shown.setdefault(key, entry)
        out.append(entry)
    return out


def document_payload(store: Store, document_id: str) -> dict[str, Any]:
    """What the review view shows for one invoice: the fields to review and the pages."""
    result = store.load_result(document_id)
    ledger = ledger_values(store, result.document_id)
    return {
        "document_id": result.document_id,
        "source_name": result.source_name,
        "doc_type": str(result.doc_type),
        "status": str(result.status),
        "pages": [{"index": p.index, "width": p.width, "height": p.height} for p in result.pages],
        "fields": [item.to_dict() for item in fields_to_review(result, ledger)],
        "summary": {
            name: display_value(result.value(name))
            for name in ("seller_name", "vendor_name", "invoice_number", "issue_date", "total_amount")
            if result.value(name) not in (None, "", [])
        },
    }


def queue_payload(store: Store, reviewer: str) -> dict[str, Any]:
    entries = review_queue(store)
    return {
        "reviewer": reviewer,
        "documents": [entry.to_dict() for entry in entries],
        "fields": sum(len(entry.fields) for entry in entries),
    }


def correct_field(
    store: Store,
    document_id: str,
    field: str,
    value: str | None,
    accept: bool,
    reviewer: str,
    review_below: float,
) -> dict[str, Any]:
    """Correct or accept one field (same validation and audit as ``invoices review``)."""
    before = display_value(store.load_result(document_id).value(field))
    result = apply_correction(
        store, document_id, field, value, reviewer, accept=accept, review_below=review_below
    )
    after = display_value(result.value(field))
    return {
        "action": "accept" if after == before else "correct",
        "field": field,
        "value": after,
        "document": document_payload(store, result.document_id),
        "remaining": sum(len(entry.fields) for entry in review_queue(store)),
    }


def invoice_details(store: Store, document_id: str) -> dict[str, Any]:
    """Everything the invoice view shows: fields, pages with boxes, rules, ledger, audit history."""
    result = store.load_result(document_id)
    rows = store.index.get(result.document_id)
    if not rows:
        raise NotFound(f"no document with id {document_id!r} in the store")
    row = rows[0]
    qr = qr_values(result)
    ledger = ledger_values(store, result.document_id)
    fields = []
    for name, found in result.fields.items():
        kind = field_kind(result, name)
        fields.append(
            {
                "name": name,
                "label": field_label(name, result.doc_type),
                "value": display_value(found.value),
                "status": str(found.status),
                "source": str(found.source),
                "confidence": round(found.confidence, 4),
                "reasons": list(found.reasons),
                "needs_review": needs_review(found),
                "box": found.box.to_dict() if found.box else None,
                "kind": kind,
                "hint": HINTS[kind],
                "qr_value": qr.get(name),
                "ledger_value": ledger.get(name),
            }
        )
    out: dict[str, Any] = {
        "document_id": result.document_id,
        "source_name": result.source_name,
        "doc_type": str(result.doc_type),
        "status": str(result.status),
        "engine": result.engine,
        "ingested_at": row.get("ingested_at"),
        "review_state": row.get("review_state"),
        "pages": [
            {
                "index": p.index,
                "width": p.width,
                "height": p.height,
                "text_source": p.text_source,
                "seconds": p.seconds,
            }
            for p in result.pages
        ],
        "fields": fields,
        "items": result.items,
        "checks": [check.to_dict() for check in result.checks],
        "warnings": list(result.warnings),
        "reconciliation": store.index.reconciliation_of(result.document_id),
        **same_invoice_files(store, row),
        "history": review_history(store, result.document_id),
    }
    out["three_way"] = three_way_of(store, result.document_id, [f["document_id"] for f in out["files"]])
    return out


def three_way_of(store: Store, document_id: str, others: list[str]) -> dict[str, Any] | None:
    """The invoice's line in the last three-way reconciliation (held / ledger / tax platform), with
    its outcome's and platform status's labels in both languages; a line reached through another file
    of the same invoice says which. None when never reconciled, or the invoice has no line."""
    from pipeline.reconcile.platform import STATUS_LABELS
    from pipeline.reconcile.tables import document_lines
    from pipeline.reconcile.threeway import LINE_LABELS

    lines = document_lines(store.index, [document_id, *others])
    if not lines:
        return None
    line = lines[0]
    codes = [line["outcome"], *(code for code in (line.get("also") or "").split(",") if code)]
    status = line.get("platform_status")
    return {
        **line,
        "via": None if line["document_id"] == document_id else line["document_id"],
        "codes": [
            {"code": code, "en": LINE_LABELS[code][0], "zh": LINE_LABELS[code][1]}
            for code in codes
            if code in LINE_LABELS
        ],
        "platform_status_label": (
            {"en": STATUS_LABELS[status][0], "zh": STATUS_LABELS[status][1]}
            if status in STATUS_LABELS
            else None
        ),
        "in_held": bool(line["in_held"]),
        "in_ledger": bool(line["in_ledger"]),
        "in_platform": bool(line["in_platform"]),
        "deducted": None if line.get("deducted") is None else bool(line["deducted"]),
    }


def same_invoice_files(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    """The other stored files of this invoice (its OFD, PDF, XML, a scan: one code and number), and
    whether the files arrived separately (how one invoice gets reimbursed twice)."""
    from pipeline.store.invoices import arrived_separately, same_invoice

    group = same_invoice(store.index, row.get("invoice_code"), row.get("invoice_number"))
    if not any(other["document_id"] == row["document_id"] for other in group):
        group = []
    return {
        "files": [other for other in group if other["document_id"] != row["document_id"]],
        "arrived_separately": len(group) > 1 and arrived_separately(group),
    }


def result_json(store: Store, document_id: str) -> tuple[str, bytes]:
    result = store.load_result(document_id)
    return result.source_name, result_body(result, indent=1)


def original_bytes(store: Store, document_id: str) -> tuple[str, bytes]:
    rows = store.index.get(document_id)
    if len(rows) != 1:
        raise NotFound(f"no document with id {document_id!r} in the store")
    return str(rows[0]["source_name"]), store.objects.get(str(rows[0]["original_key"]))


def folder_overview(store: Store, folder: HotFolder | None, recent: int = 20) -> dict[str, Any]:
    """Counts per state, failed files with reasons, batches, and the last documents with pages/s."""
    from pipeline.hotfolder import failed_files

    last = []
    for row in store.index.recent_documents(recent):
        seconds = 0.0
        try:
            result = store.load_result(str(row["document_id"]))
            seconds = sum(page.seconds for page in result.pages)
        except NotFound:
            pass
        pages = int(row["page_count"] or 0)
        last.append(
            {
                **row,
                "seconds": round(seconds, 3),
                "pages_per_second": round(pages / seconds, 2) if seconds > 0 else None,
            }
        )
    out: dict[str, Any] = {
        "store": store.index.counts(),
        "batches": store.index.ingest_batches(),
        "recent": last,
        "failures": store.index.recent_failures(),
        "folder": None,
    }
    if folder is not None:
        out["folder"] = {
            "path": str(folder.root),
            "counts": folder.counts(),
            "failed": [item.to_dict() for item in failed_files(folder)],
        }
    return out
