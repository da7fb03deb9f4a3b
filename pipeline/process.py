"""One document through the stages: load -> preprocess -> OCR -> extract -> validate.

``process_document`` is a pure function of the bytes and the settings (no store, no
global state but the per-process OCR engine cache), so it can run in any worker.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np
from isal import isal_zlib

from pipeline.config import Settings
from pipeline.errors import ImageUnreadable, NotAnInvoice
from pipeline.extract import extract_fields
from pipeline.extract.qr import find_invoice_qr
from pipeline.load import load_document
from pipeline.model import DocType, FieldSource, InvoiceResult, PageInfo, TextLine
from pipeline.ocr import get_engine
from pipeline.preprocess import prepare_page
from pipeline.structured import merge_structured
from pipeline.validate import validate_invoice

log = logging.getLogger(__name__)

MEANINGFUL = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


@dataclass
class PageImage:
    index: int
    png: bytes


# The stage table of ``make bench``, in pipeline order; OCR engines add their own stages.
STAGES = ("load", "preprocess", "detection", "orientation", "recognition", "qr", "png", "extract", "validate")


@dataclass
class Processed:
    result: InvoiceResult
    page_images: list[PageImage]
    seconds: float
    # CPU seconds per stage (STAGES) for this document, summed over its pages.
    stages: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    # CPU seconds of this process: on a shared machine they vary far less than wall time.
    started = time.process_time()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.process_time() - started


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    """The PNG of a BGR(A) or gray page image: unfiltered rows, deflated by ISA-L at level 2.

    Written here because OpenCV's encoder spends more time choosing row filters than they save
    on page images, and zlib's fastest level still took 16-35 ms of a text-layer PDF's ~50 ms:
    ISA-L's deflate (``isal``, the same format) takes 2-3 ms for files ~15 % larger.
    """
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        ok, buffer = cv2.imencode(".png", image)
        if not ok:
            raise ImageUnreadable("could not encode the page image")
        return buffer.tobytes()
    height, width = image.shape[:2]
    color_type = 0 if image.ndim == 2 else 2
    rows = np.empty((height, 1 + width * (1 if image.ndim == 2 else 3)), np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    if image.ndim == 2:
        rows[:, 1:] = image
    else:  # BGR(A) -> RGB written straight into the rows: one pass, no copy of the converted page
        code = cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB
        cv2.cvtColor(image, code, dst=rows[:, 1:].reshape(height, width, 3))
    deflate = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 15, 9)
    idat = deflate.compress(rows) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def process_document(data: bytes, source_name: str, settings: Settings) -> Processed:
    """Run every stage on one document; raises ``InputError`` subclasses for bad input."""
    started = time.perf_counter()
    stages: dict[str, float] = {}
    document_id = content_id(data)
    with _timed(stages, "load"):
        pages = load_document(data, settings)
    # A page's time includes its share of loading: a PDF page is rendered and its text layer
    # read there, and without it a text-layer page showed ~0.5 ms (0.0 s in results).
    load_share = (time.perf_counter() - started) / max(1, len(pages))
    lines: list[TextLine] = []
    infos: list[PageInfo] = []
    images: list[PageImage] = []
    engine_name = "text_layer"
    qr_payload: str | None = None
    used_ocr = False
    for page in pages:
        page_started = time.perf_counter()
        if page.text_layer_trusted and page.text_layer:
            image, page_lines, source, note = page.image, page.text_layer, "text_layer", page.note
        else:
            engine = get_engine(settings)
            engine_name = engine.version()
            used_ocr = True
            with _timed(stages, "preprocess"):
                prepared = prepare_page(page.image, settings.ocr_max_side)
            image, ocr, angle = engine.read_upright(
                prepared.image, page.index, stages, photographed=prepared.photographed
            )
            steps = prepared.steps + ([f"rotate {angle}"] if angle else [])
            page_lines, source = ocr.lines, "ocr"
            note = "; ".join(filter(None, [page.note, ", ".join(steps)]))
        if qr_payload is None and not page.drawn_from_data:
            with _timed(stages, "qr"):
                qr_payload = find_invoice_qr(image, sharp=source == "text_layer", hints=page.qr_hints)
        lines.extend(page_lines)
        height, width = image.shape[:2]
        seconds = load_share + time.perf_counter() - page_started
        infos.append(PageInfo(page.index, width, height, source, seconds, note))
        with _timed(stages, "png"):
            images.append(PageImage(page.index, encode_png(image)))
    if sum(len(MEANINGFUL.findall(line.text)) for line in lines) < 10:
        raise NotAnInvoice("no readable text found: not an invoice, or the image is blank or unreadable")
    source = FieldSource.OCR if used_ocr else FieldSource.TEXT_LAYER
    with _timed(stages, "extract"):
        extraction = extract_fields(lines, source, settings.review_below)
        structured = next((page.structured for page in pages if page.structured is not None), None)
        if structured is not None:  # an OFD or XML e-invoice: its own data first (pipeline.structured)
            extraction = merge_structured(extraction, structured, lines, settings.review_below)
            infos[0].note = "; ".join(
                filter(None, [infos[0].note, f"fields from the invoice's data: {structured.origin}"])
            )
    result = InvoiceResult(
        document_id=document_id,
        source_name=source_name,
        doc_type=extraction.doc_type,
        fields=extraction.fields,
        items=extraction.items,
        pages=infos,
        engine=engine_name,
        qr_payload=qr_payload,
        lines=lines,
    )
    if result.doc_type == DocType.OTHER:
        result.warnings.append(
            "not a VAT invoice or an invoice this pipeline recognises: no fields extracted"
        )
    with _timed(stages, "validate"):
        validate_invoice(result, review_below=settings.review_below)
    return Processed(result=result, page_images=images, seconds=time.perf_counter() - started, stages=stages)
