"""Stage 1: bytes -> pages.

Formats are recognised by their content, not their file name, one module per family:

* ``images``: JPEG, PNG, TIFF (every frame), BMP, WebP, HEIC/HEIF through Pillow;
* ``pdf``: rendered with pdfium, text layer read with pypdfium2 and trusted
  only when it looks like real text;
* ``ofd``: OFD e-invoices (GB/T 33190, a ZIP of XML): the invoice's own data, the page text
  objects as a text layer, and every page drawn to an image;
* ``xml``: e-invoice XML (数电票 ``EInvoice``, the older ``eInvoice``);
* ``bundles``: ZIP files of several documents (opened by the drivers, before this stage).

Each returns the same ``Page`` records. XML is parsed with entities and external references off.
"""

from __future__ import annotations

import zipfile
from io import BytesIO

from pipeline.config import Settings
from pipeline.errors import EmptyFile, TooLarge, UnsupportedFormat
from pipeline.load.images import load_image
from pipeline.load.pdf import load_pdf, merge_runs, read_text_layer, text_layer_trusted
from pipeline.model import Page

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif"}
EINVOICE_EXTENSIONS = {".ofd", ".xml"}
BUNDLE_EXTENSIONS = {".zip"}
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | EINVOICE_EXTENSIONS | BUNDLE_EXTENSIONS | {".pdf"}
FORMATS_HELP = "PDF, OFD, e-invoice XML, JPEG, PNG, TIFF, BMP, WebP, HEIC/HEIF, and ZIP bundles of these"

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif", b"avif"}


def sniff_format(data: bytes) -> str:
    """Name the format from its content: pdf, jpeg, png, tiff, bmp, webp, heif, ofd, zip or xml."""
    head = data[:16]
    if head.startswith(b"%PDF") or b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and (data[8:12] in HEIF_BRANDS or any(b in data[16:64] for b in HEIF_BRANDS)):
        return "heif"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        kind = _zip_kind(data)
        if kind == "office":
            raise UnsupportedFormat(f"not an image or PDF but an Office document (reads {FORMATS_HELP})")
        return kind
    if _looks_like_xml(data):
        return "xml"
    raise UnsupportedFormat(f"not an image or PDF, nor an e-invoice this pipeline reads ({FORMATS_HELP})")


def _zip_kind(data: bytes) -> str:
    """ofd (OFD.xml at the root), office (Word, Excel: [Content_Types].xml) or zip (a bundle).

    A truncated ZIP has no central directory: its first local headers still name the members.
    """
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            names = {name.lstrip("/").lower() for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError):
        head = data[:4096]
        if b"OFD.xml" in head or b"Doc_0/" in head:
            return "ofd"
        return "office" if b"[Content_Types].xml" in head else "zip"
    if "ofd.xml" in names or any(name.startswith("doc_0/") for name in names):
        return "ofd"
    if "[content_types].xml" in names:
        return "office"
    return "zip"


def _looks_like_xml(data: bytes) -> bool:
    text = data[:512].lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte-order mark
    return text.startswith(b"<?xml") or (text.startswith(b"<") and b">" in text)


def load_document(data: bytes, settings: Settings) -> list[Page]:
    """Turn a document's bytes into pages; raise an ``InputError`` subclass with a clear reason."""
    if not data:
        raise EmptyFile("file is empty (0 bytes)")
    if len(data) > settings.max_file_bytes:
        raise TooLarge(
            f"file is {len(data) / 1e6:.1f} MB, over the {settings.max_file_bytes / 1e6:.0f} MB limit"
        )
    kind = sniff_format(data)
    if kind == "pdf":
        return load_pdf(data, settings)
    if kind == "ofd":
        from pipeline.load.ofd import load_ofd

        return load_ofd(data, settings)
    if kind == "xml":
        from pipeline.load.xml import load_xml

        return load_xml(data, settings)
    if kind == "zip":
        raise UnsupportedFormat(
            "not an image or PDF but a ZIP file: `invoices ingest` and the hot folder open ZIP "
            "bundles (.zip) and take each invoice inside"
        )
    return load_image(data, settings)


__all__ = [
    "BUNDLE_EXTENSIONS",
    "EINVOICE_EXTENSIONS",
    "FORMATS_HELP",
    "IMAGE_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "load_document",
    "merge_runs",
    "read_text_layer",
    "sniff_format",
    "text_layer_trusted",
]
