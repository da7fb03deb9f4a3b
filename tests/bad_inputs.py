"""The bad-input corpus, generated at test time (nothing binary is committed).

``make_corpus(folder, outside)`` writes every case into ``folder`` (``outside`` receives the
target of the symbolic link that points out of it) and returns what each one must become:
``failed`` with a reason matching ``reason``, ``done`` (processed: odd names are not a
reason to fail), or ``ignored`` (temporary and partial names, never taken).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.conftest import SAMPLES


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "failed", "done" or "ignored"
    reason: str = ""  # regular expression the failure reason must match
    pages: int = 0  # for "done": pages stored


def distinct_pdf(sample: str, n: int) -> bytes:
    """A born-digital sample PDF with a trailing comment, so every copy has its own content hash."""
    return (SAMPLES / sample).read_bytes() + f"\n% copy {n}\n".encode()


def truncated_jpeg() -> bytes:
    data = (SAMPLES / "vat_general_degraded.jpg").read_bytes()
    return data[: int(len(data) * 0.4)]


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(SAMPLES / "vat_e_general.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def two_page_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for name in ("vat_e_general.pdf", "fully_digital_general.pdf"):
        writer.append(PdfReader(SAMPLES / name))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_without_pages() -> bytes:
    """A well-formed PDF whose page tree is empty (offsets in the xref table are exact)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def decompression_bomb_png(side: int = 30_000) -> bytes:
    """A real, valid PNG: ``side`` x ``side`` 1-bit pixels (900 MP for 30000) in about 100 kB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(compressor.compress(row * (side % 1000)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    )


def png_bytes(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    return buffer.tobytes()


def landscape_photo(seed: int = 7, width: int = 800, height: int = 600) -> bytes:
    """A photo-like picture with no writing on it: sky gradient, hills, a sun, blurred, with noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    sky = (np.array([235, 190, 120]) * (1 - y) + np.array([250, 230, 200]) * y).astype(np.float32)
    image = np.broadcast_to(sky, (height, width, 3)).copy()
    cv2.circle(image, (int(width * 0.75), int(height * 0.22)), 45, (120, 220, 255), -1)
    for layer, color in enumerate([(90, 140, 80), (60, 110, 60), (40, 80, 45)]):
        xs = np.arange(width)
        base = height * (0.5 + 0.12 * layer)
        ridge = (
            base
            + 40 * np.sin(xs / (90 + 30 * layer) + rng.uniform(0, 6))
            + rng.normal(0, 3, width).cumsum() * 0.2
        )
        points = np.column_stack([xs, ridge.astype(int)])
        polygon = np.vstack([points, [[width - 1, height - 1], [0, height - 1]]]).astype(np.int32)
        cv2.fillPoly(image, [polygon], color)
    for _ in range(25):  # trees
        x, top = int(rng.uniform(0, width)), int(rng.uniform(height * 0.6, height * 0.85))
        cv2.ellipse(image, (x, top), (12, 28), 0, 0, 360, (35, 70 + int(rng.uniform(0, 30)), 35), -1)
    image = cv2.GaussianBlur(image, (0, 0), 2.0)
    image += rng.normal(0, 6, image.shape)
    photo = np.clip(image, 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 88])
    assert ok
    return buffer.tobytes()


def two_page_tiff() -> bytes:
    """Two scanned pages in one TIFF: the top of two sample invoices (small, so OCR stays quick)."""
    pages = []
    for name in ("vat_special_clean.png", "en_invoice.png"):
        image = Image.open(SAMPLES / name).convert("RGB")
        pages.append(image.crop((0, 0, image.width, image.height // 3)))
    out = io.BytesIO()
    pages[0].save(out, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
    return out.getvalue()


def make_corpus(folder: Path, outside: Path, with_ocr: bool = True) -> list[Case]:
    """Write the corpus; ``with_ocr=False`` leaves out the two cases that need the OCR engine."""
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str | bytes, data: bytes, case: Case) -> None:
        (folder / (os.fsdecode(name) if isinstance(name, bytes) else name)).write_bytes(data)
        cases.append(case)

    add("empty.pdf", b"", Case("empty.pdf", "failed", r"EmptyFile: .*0 bytes"))
    add(
        "truncated scan.jpg",
        truncated_jpeg(),
        Case("truncated scan.jpg", "failed", r"ImageUnreadable: .*truncated"),
    )
    add(
        "notes.jpg",
        b"Meeting notes, not an image\n" * 20,
        Case("notes.jpg", "failed", r"UnsupportedFormat: not an image or PDF"),
    )
    add(
        "letter.docx",
        b"PK\x03\x04" + bytes(200),
        Case("letter.docx", "failed", r"UnsupportedFormat: not an image or PDF"),
    )
    add("encrypted.pdf", encrypted_pdf(), Case("encrypted.pdf", "failed", r"EncryptedPdf: .*password"))
    add(
        "no pages.pdf",
        pdf_without_pages(),
        Case("no pages.pdf", "failed", r"PdfUnreadable: PDF has no pages"),
    )
    add("bomb.png", decompression_bomb_png(), Case("bomb.png", "failed", r"TooLarge: .*decompression bomb"))
    add(
        "one pixel.png",
        png_bytes(np.full((1, 1, 3), 255, np.uint8)),
        Case("one pixel.png", "failed", r"ImageUnreadable: .*1x1 px, too small"),
    )
    # A real invoice outside the folder: following the link would have stored it.
    secret = outside / "elsewhere.pdf"
    secret.write_bytes(distinct_pdf("en_invoice.pdf", 99))
    (folder / "link outside.pdf").symlink_to(secret)
    cases.append(Case("link outside.pdf", "failed", r"FileRefused: symbolic link to .*outside the folder"))
    os.mkfifo(folder / "pipe.pdf")
    cases.append(Case("pipe.pdf", "failed", r"FileRefused: not a regular file"))
    # Odd names are names, not reasons to fail: spaces, unicode, "..", bytes that are not UTF-8.
    add(
        "my invoice 2024.pdf",
        distinct_pdf("vat_e_general.pdf", 1),
        Case("my invoice 2024.pdf", "done", pages=1),
    )
    add(
        "发票 Rechnung ü.pdf",
        distinct_pdf("fully_digital_general.pdf", 2),
        Case("发票 Rechnung ü.pdf", "done", pages=1),
    )
    add("a..b.pdf", distinct_pdf("en_invoice.pdf", 3), Case("a..b.pdf", "done", pages=1))
    add(
        b"latin1 caf\xe9.pdf",
        distinct_pdf("vat_e_general.pdf", 4),
        Case(os.fsdecode(b"latin1 caf\xe9.pdf"), "done", pages=1),
    )
    add("..twice..jpg", truncated_jpeg()[:5000], Case("..twice..jpg", "ignored"))  # a dot name is hidden
    add("坏的 ..文件.jpg", truncated_jpeg()[:8000], Case("坏的 ..文件.jpg", "failed", r"ImageUnreadable"))
    add("two pages.pdf", two_page_pdf(), Case("two pages.pdf", "done", pages=2))
    # Temporary and partial names: a writer is not finished with them.
    for name in ("scan.pdf.part", "~$draft.pdf", ".hidden.pdf", "download.pdf.crdownload", "upload.tmp"):
        add(name, distinct_pdf("vat_e_general.pdf", 50 + len(cases)), Case(name, "ignored"))
    if with_ocr:
        add(
            "landscape photo.jpg",
            landscape_photo(),
            Case("landscape photo.jpg", "failed", r"NotAnInvoice: no readable text"),
        )
        add("two pages.tif", two_page_tiff(), Case("two pages.tif", "done", pages=2))
    return cases
