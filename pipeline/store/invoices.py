"""Same invoice, several files: the OFD, PDF, XML and a scan of one invoice, grouped.

An invoice is named by its code and number (全电 invoices: the 20-digit number alone, they
have no code). Every file of it is a document of its own in the store (each original is kept);
this module groups them, over the index's ``query`` (so any index backend serves it).

Files that arrived together (one ZIP bundle, or within ``TOGETHER_SECONDS`` of each other) are
one delivery of the invoice; files that arrived separately are how one invoice gets reimbursed
twice (its PDF on one expense claim, its OFD on the next), so that is said.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.store.index import Query

TOGETHER_SECONDS = 600.0
COLUMNS = ("document_id", "source_name", "doc_type", "invoice_code", "invoice_number", "ingested_at")


def invoice_key(code: Any, number: Any) -> tuple[str, str] | None:
    number_text = str(number or "").strip()
    if not number_text:
        return None
    return (str(code or "").strip(), number_text)


def delivery(source_name: str) -> str:
    """Files from one bundle share its name before the first ``!``."""
    return source_name.split("!", 1)[0] if "!" in source_name else ""


@dataclass
class InvoiceGroup:
    code: str
    number: str
    documents: list[dict[str, Any]]

    @property
    def arrived_separately(self) -> bool:
        return arrived_separately(self.documents)

    def describe(self) -> str:
        names = ", ".join(row["source_name"] for row in self.documents)
        when = "arrived separately" if self.arrived_separately else "arrived together"
        label = f"{self.code} {self.number}".strip()
        return f"invoice {label} is in {len(self.documents)} files ({when}): {names}"


def arrived_separately(documents: list[dict[str, Any]]) -> bool:
    """Whether the files came in more than one delivery (bundle, or batch a few minutes apart)."""
    ordered = sorted(documents, key=lambda row: float(row.get("ingested_at") or 0.0))
    for before, after in itertools.pairwise(ordered):
        bundle = delivery(before["source_name"])
        if bundle and bundle == delivery(after["source_name"]):
            continue
        if (
            float(after.get("ingested_at") or 0.0) - float(before.get("ingested_at") or 0.0)
            > TOGETHER_SECONDS
        ):
            return True
    return False


def same_invoice(index: Any, code: Any, number: Any) -> list[dict[str, Any]]:
    """Every stored document of the invoice with this code and number, oldest first."""
    key = invoice_key(code, number)
    if key is None:
        return []
    rows = index.query(Query(number=key[1]), columns=COLUMNS)
    # A 20-digit 全电 number is unique on its own; old 8-digit numbers repeat across codes.
    matching = [
        row for row in rows if len(key[1]) >= 20 or str(row.get("invoice_code") or "").strip() == key[0]
    ]
    return sorted(matching, key=lambda row: float(row.get("ingested_at") or 0.0))


def group_key(row: dict[str, Any]) -> tuple[str, str] | None:
    """The invoice a row is a file of: (code, number), or ("", number) for a 20-digit 全电 number."""
    key = invoice_key(row.get("invoice_code"), row.get("invoice_number"))
    if key is not None and len(key[1]) >= 20:
        return ("", key[1])
    return key


def group_rows(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Index rows one per invoice, in the order given: (the first row of the invoice, all its rows
    oldest first). Rows without a number are invoices of their own."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for row in rows:
        key = group_key(row)
        if key is None:
            out.append((row, [row]))
        elif key in groups:
            groups[key].append(row)
        else:
            groups[key] = [row]
            out.append((row, groups[key]))
    return [
        (head, sorted(members, key=lambda row: float(row.get("ingested_at") or 0.0))) for head, members in out
    ]


def invoice_groups(index: Any) -> list[InvoiceGroup]:
    """The invoices the index holds in more than one file."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in index.query(Query(), columns=COLUMNS):
        key = invoice_key(row.get("invoice_code"), row.get("invoice_number"))
        if key is not None:
            number = key[1]
            groups.setdefault(("", number) if len(number) >= 20 else key, []).append(row)
    return [
        InvoiceGroup(code, number, sorted(rows, key=lambda row: float(row.get("ingested_at") or 0.0)))
        for (code, number), rows in sorted(groups.items())
        if len(rows) > 1
    ]


def same_invoice_note(index: Any, document_id: str, source_name: str, code: Any, number: Any) -> str:
    """One line for an ingest outcome when other files of this invoice are stored already, else ''.

    English and Chinese: finance users read it (同一张发票的另一个文件 = another file of the same invoice).
    """
    others = [row for row in same_invoice(index, code, number) if row["document_id"] != document_id]
    if not others:
        return ""
    first = others[0]
    when = datetime.fromtimestamp(float(first.get("ingested_at") or 0.0), UTC).strftime("%Y-%m-%d %H:%M UTC")
    mine = {
        "document_id": document_id,
        "source_name": source_name,
        "ingested_at": datetime.now(UTC).timestamp(),
    }
    separately = arrived_separately([*others, mine])
    how = (
        "arrived separately: check it is not reimbursed twice / 分别提交，注意重复报销"
        if separately
        else "arrived together"
    )
    return f"same invoice as {first['source_name']} (stored {when}; 同一张发票的另一个文件), {how}"
