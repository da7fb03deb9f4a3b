"""Reconciliation: the invoices held (scanned, in the store) against the company's ledger and the
tax platform's invoice list, with an outcome and a reason for every invoice.

- ``sources``: reading the ledger (ERP export, CSV or XLSX) into typed rows, with its parts
  ``records`` (rows, problems, mapping, errors), ``spreadsheets`` (CSV encodings, XLSX),
  ``headers`` (column mapping) and ``cells`` (the values of a row)
- ``platform``: reading the tax platform's exports (全量发票查询, 抵扣勾选) into typed records
- ``match``: held vs ledger, one outcome per invoice, over ``keys`` (OCR-confusion normalisation,
  numpy columns), ``pairs`` (rapidfuzz candidate pairs and scores) and ``reasons`` (field
  comparison, the English and Chinese reasons)
- ``outcomes``: the ledger's outcome codes and the records of a reconciliation
- ``threeway``: held, ledger and platform together, one line and outcome code per invoice
- ``redletter``: red-letter invoices linked to their blue invoice and netted
- ``tables``: the outcomes and lines in the index database; one invoice re-matched after a review
  (``rematch_lines``: its three-way lines too)
- ``report``, ``threeway_report``: CSV, XLSX and HTML reports, written alike through
  ``report_files`` (the folder, CSV files, shared cells), ``report_html`` (the page) and
  ``xlsx_writer`` (the workbook)

Everything a caller needs is importable from ``pipeline.reconcile``.
"""

from __future__ import annotations

from pipeline.reconcile.match import canonical_id, compared_fields, normalize_name, reconcile
from pipeline.reconcile.outcomes import (
    OUTCOME_LABELS,
    Difference,
    Entry,
    InvoiceRecord,
    Outcome,
    ReconcileError,
    ReconcileOptions,
    Reconciliation,
    invoices_from_index,
)
from pipeline.reconcile.tables import (
    LEDGER_VALUE_FIELDS,
    ledger_values,
    load_ledger_rows,
    load_options,
    load_outcomes,
    rematch_document,
    save_outcomes,
)

__all__ = [
    "LEDGER_VALUE_FIELDS",
    "OUTCOME_LABELS",
    "Difference",
    "Entry",
    "InvoiceRecord",
    "Outcome",
    "ReconcileError",
    "ReconcileOptions",
    "Reconciliation",
    "canonical_id",
    "compared_fields",
    "invoices_from_index",
    "ledger_values",
    "load_ledger_rows",
    "load_options",
    "load_outcomes",
    "normalize_name",
    "reconcile",
    "rematch_document",
    "save_outcomes",
]
