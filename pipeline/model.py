"""Typed records shared by every stage (the ground floor: imports nothing of ours).

The result JSON is ``InvoiceResult.to_dict()``; its schema is documented in
``docs/RESULT_SCHEMA.md`` and versioned by ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np

SCHEMA_VERSION = "1.0"

Point = tuple[float, float]
Polygon = tuple[Point, ...]


class FieldStatus(StrEnum):
    OK = "ok"
    NEEDS_REVIEW = "needs_review"
    MISSING = "missing"


class FieldSource(StrEnum):
    TEXT_LAYER = "text_layer"
    OCR = "ocr"
    QR = "qr"
    DERIVED = "derived"
    REVIEW = "review"
    STRUCTURED = "structured"  # the invoice's own data (OFD tags, e-invoice XML): exact, confidence 1.0


class DocType(StrEnum):
    VAT_SPECIAL_PAPER = "vat_special_paper"
    VAT_GENERAL_PAPER = "vat_general_paper"
    VAT_E_INVOICE_GENERAL = "vat_e_invoice_general"
    FULLY_DIGITAL_GENERAL = "fully_digital_general"
    FULLY_DIGITAL_SPECIAL = "fully_digital_special"
    GENERIC_INVOICE = "generic_invoice"
    OTHER = "other"


VAT_DOC_TYPES = frozenset(
    {
        DocType.VAT_SPECIAL_PAPER,
        DocType.VAT_GENERAL_PAPER,
        DocType.VAT_E_INVOICE_GENERAL,
        DocType.FULLY_DIGITAL_GENERAL,
        DocType.FULLY_DIGITAL_SPECIAL,
    }
)


def polygon_from_rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


@dataclass(frozen=True)
class TextLine:
    """One recognised line: the unit every OCR engine and the text layer produce."""

    text: str
    confidence: float
    polygon: Polygon
    page: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence out of range: {self.confidence}")
        if len(self.polygon) < 4:
            raise ValueError("a text line needs a polygon of at least 4 points")

    @cached_property  # extraction asks for a line's box ~100k times a page
    def x0(self) -> float:
        return min(p[0] for p in self.polygon)

    @cached_property
    def x1(self) -> float:
        return max(p[0] for p in self.polygon)

    @cached_property
    def y0(self) -> float:
        return min(p[1] for p in self.polygon)

    @cached_property
    def y1(self) -> float:
        return max(p[1] for p in self.polygon)

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center_y(self) -> float:
        return (self.y0 + self.y1) / 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon],
            "page": self.page,
        }


@dataclass
class StructuredInvoice:
    """Fields an e-invoice carries as data (OFD tags and attachments, e-invoice XML), not as print.

    ``fields`` uses the result's field names with normalised values (dates YYYY-MM-DD, amounts
    "123.45"); ``items`` the goods-table keys of ``extract_items``; ``boxes`` where a value is drawn
    on the page, when the file says so; ``origin`` names the parts it came from.
    """

    fields: dict[str, str]
    items: list[dict[str, str | None]] = field(default_factory=list)
    boxes: dict[str, Box] = field(default_factory=dict)
    origin: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # red-letter links, remarks: kept, not scored


@dataclass
class Page:
    """One page ready for OCR: the image (BGR, uint8) and, for born-digital PDFs, its text layer.

    E-invoices (OFD, XML) also carry ``structured`` data: on the first page, for the document.
    """

    index: int
    image: np.ndarray
    text_layer: list[TextLine] | None = None
    text_layer_trusted: bool = False
    note: str = ""
    structured: StructuredInvoice | None = None
    drawn_from_data: bool = False  # an XML invoice's page, drawn from its values: no QR code to look for
    # Pixel boxes (x0, y0, x1, y1) of a text-layer PDF page's square images: its QR code is looked for there first.
    qr_hints: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.image.shape[:2]
        return width, height


@dataclass(frozen=True)
class OcrPage:
    """What an OCR engine returns for one page image."""

    lines: list[TextLine]
    engine: str
    seconds: float


@dataclass(frozen=True)
class Box:
    page: int
    polygon: Polygon

    def to_dict(self) -> dict[str, Any]:
        return {"page": self.page, "polygon": [[round(x, 1), round(y, 1)] for x, y in self.polygon]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Box:
        return cls(page=int(data["page"]), polygon=tuple((float(x), float(y)) for x, y in data["polygon"]))


@dataclass
class Field:
    value: Any
    confidence: float = 0.0
    status: FieldStatus = FieldStatus.MISSING
    source: FieldSource = FieldSource.OCR
    box: Box | None = None
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def missing(cls, reason: str | None = None, source: FieldSource = FieldSource.OCR) -> Field:
        """No value; ``source`` is where it was looked for (the page's text layer or its OCR)."""
        return cls(value=None, reasons=[reason] if reason else [], source=source)

    def flag(self, reason: str) -> None:
        """Send the field to review, keeping every reason."""
        if reason not in self.reasons:
            self.reasons.append(reason)
        if self.status == FieldStatus.OK:
            self.status = FieldStatus.NEEDS_REVIEW

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "confidence": round(self.confidence, 4),
            "status": str(self.status),
            "source": str(self.source),
            "box": self.box.to_dict() if self.box else None,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Field:
        return cls(
            value=data.get("value"),
            confidence=float(data.get("confidence", 0.0)),
            status=FieldStatus(data.get("status", "missing")),
            source=FieldSource(data.get("source", "ocr")),
            box=Box.from_dict(data["box"]) if data.get("box") else None,
            reasons=list(data.get("reasons", [])),
        )


@dataclass(frozen=True)
class RuleCheck:
    """One validation rule applied to a document: which fields it covers and whether it held."""

    rule: str
    passed: bool
    fields: tuple[str, ...]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "fields": list(self.fields), "detail": self.detail}


@dataclass
class PageInfo:
    index: int
    width: int
    height: int
    text_source: str  # "text_layer" or "ocr"
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "width": self.width,
            "height": self.height,
            "text_source": self.text_source,
            "seconds": round(self.seconds, 3),
            "note": self.note,
        }


class DocumentStatus(StrEnum):
    OK = "ok"
    NEEDS_REVIEW = "needs_review"
    NOT_AN_INVOICE = "not_an_invoice"


@dataclass
class InvoiceResult:
    """Everything the pipeline knows about one document; serialised as the result JSON."""

    document_id: str
    source_name: str
    doc_type: DocType
    fields: dict[str, Field]
    items: list[dict[str, Any]] = field(default_factory=list)
    checks: list[RuleCheck] = field(default_factory=list)
    pages: list[PageInfo] = field(default_factory=list)
    engine: str = ""
    qr_payload: str | None = None
    warnings: list[str] = field(default_factory=list)
    lines: list[TextLine] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    @property
    def status(self) -> DocumentStatus:
        if self.doc_type == DocType.OTHER:
            return DocumentStatus.NOT_AN_INVOICE
        if any(f.status != FieldStatus.OK for f in self.fields.values() if f.status != FieldStatus.MISSING):
            return DocumentStatus.NEEDS_REVIEW
        if any(f.status == FieldStatus.MISSING and f.reasons for f in self.fields.values()):
            return DocumentStatus.NEEDS_REVIEW
        return DocumentStatus.OK

    def value(self, name: str) -> Any:
        found = self.fields.get(name)
        return found.value if found else None

    def to_dict(self, include_lines: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "document_id": self.document_id,
            "source_name": self.source_name,
            "doc_type": str(self.doc_type),
            "status": str(self.status),
            "engine": self.engine,
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
            "items": self.items,
            "checks": [c.to_dict() for c in self.checks],
            "qr_payload": self.qr_payload,
            "pages": [p.to_dict() for p in self.pages],
            "warnings": list(self.warnings),
        }
        if include_lines:
            data["lines"] = [line.to_dict() for line in self.lines]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InvoiceResult:
        return cls(
            document_id=data["document_id"],
            source_name=data["source_name"],
            doc_type=DocType(data["doc_type"]),
            fields={name: Field.from_dict(f) for name, f in data["fields"].items()},
            items=list(data.get("items", [])),
            checks=[
                RuleCheck(c["rule"], bool(c["passed"]), tuple(c["fields"]), c.get("detail", ""))
                for c in data.get("checks", [])
            ],
            pages=[PageInfo(**p) for p in data.get("pages", [])],
            engine=data.get("engine", ""),
            qr_payload=data.get("qr_payload"),
            warnings=list(data.get("warnings", [])),
            lines=[
                TextLine(
                    text=ln["text"],
                    confidence=float(ln["confidence"]),
                    polygon=tuple((float(x), float(y)) for x, y in ln["polygon"]),
                    page=int(ln.get("page", 0)),
                )
                for ln in data.get("lines", [])
            ],
            schema_version=data.get("schema_version", SCHEMA_VERSION),
        )
