"""What became of one document: its ``State`` and the ``Outcome`` reported for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already_stored"
    FAILED = "failed"
    SKIPPED = "skipped"  # a bundle member that is not a document (a text file): named with its reason


@dataclass
class Outcome:
    path: str
    state: State
    document_id: str = ""
    status: str = ""
    doc_type: str = ""
    message: str = ""
    pages: int = 0
    seconds: float = 0.0
    error_type: str = ""
    # True when the document was found in the store before any work: not part of the batch's rate.
    skipped: bool = False
    worker: int = 0
    worker_peak_mb: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the worker process on this document
    ocr_seconds: tuple[float, ...] = ()  # seconds of each page that was OCRed (metrics)
    same_invoice: str = ""  # other files of this invoice already stored (pipeline.store.invoices)
    stages: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (process.STAGES, store)
