"""Stage 1: bytes -> pages.

Formats are recognised by their content, not their file name. Images go through
Pillow (multi-page TIFF included); PDFs are rendered with pdf2image (poppler) and their
text layer is read with pypdfium2, trusted only when it looks like real text.
"""

from __future__ import annotations

import io
import logging
import unicodedata
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.config import Settings
from pipeline.errors import (
    EmptyFile,
    EncryptedPdf,
    ImageUnreadable,
    MissingDependency,
    PdfUnreadable,
    TooLarge,
    UnsupportedFormat,
)
from pipeline.model import Page, TextLine, polygon_from_rect

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | {".pdf"}


def sniff_format(data: bytes) -> str:
    """Name the container format from magic bytes: pdf, jpeg, png, tiff, bmp, webp."""
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
    raise UnsupportedFormat("not an image or PDF this pipeline reads (JPEG, PNG, TIFF, BMP, WebP, PDF)")


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
        return _load_pdf(data, settings)
    return _load_image(data, settings)


def _check_pixels(width: int, height: int, settings: Settings) -> None:
    if width * height > settings.max_image_pixels:
        raise TooLarge(
            f"image is {width}x{height} px ({width * height / 1e6:.0f} MP), over the "
            f"{settings.max_image_pixels / 1e6:.0f} MP limit (possible decompression bomb)"
        )
    if min(width, height) < settings.min_image_side:
        raise ImageUnreadable(f"image is only {width}x{height} px, too small to hold an invoice")


def _load_image(data: bytes, settings: Settings) -> list[Page]:
    pages: list[Page] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            frame_count = getattr(image, "n_frames", 1)
            if frame_count > settings.max_pages:
                raise TooLarge(f"image has {frame_count} frames, over the {settings.max_pages}-page limit")
            for frame in range(frame_count):
                image.seek(frame)
                _check_pixels(image.width, image.height, settings)
                image.load()
                rgb = ImageOps.exif_transpose(image).convert("RGB")
                bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
                pages.append(Page(index=frame, image=bgr))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"image rejected as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageUnreadable("image data is not readable (corrupt or not an image)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageUnreadable(f"image is corrupt or truncated: {exc}") from exc
    return pages


def _load_pdf(data: bytes, settings: Settings) -> list[Page]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise EncryptedPdf("PDF is encrypted (password protected); decrypt it first") from exc
        raise PdfUnreadable(f"PDF is damaged and cannot be opened: {exc}") from exc
    try:
        page_count = len(document)
        if page_count == 0:
            raise PdfUnreadable("PDF has no pages")
        if page_count > settings.max_pages:
            raise TooLarge(f"PDF has {page_count} pages, over the {settings.max_pages}-page limit")
        for index in range(page_count):
            width_pt, height_pt = document[index].get_size()
            scale = settings.render_dpi / 72
            _check_pixels(int(width_pt * scale), int(height_pt * scale), settings)
        images = _render_pdf(data, settings.render_dpi)
        pages = []
        for index, image in enumerate(images):
            lines: list[TextLine] | None = None
            trusted = False
            if settings.use_text_layer:
                lines = read_text_layer(document, index, settings.render_dpi)
                trusted, why = text_layer_trusted(lines)
                if lines and not trusted:
                    log.info("page %d: text layer not used: %s", index + 1, why)
            pages.append(
                Page(
                    index=index,
                    image=image,
                    text_layer=lines,
                    text_layer_trusted=trusted,
                    note="" if trusted or not lines else "text layer unreadable, page OCR'd",
                )
            )
        return pages
    finally:
        document.close()


def _render_pdf(data: bytes, dpi: int) -> list[np.ndarray]:
    from pdf2image import convert_from_bytes
    from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError

    try:
        rendered = convert_from_bytes(data, dpi=dpi, fmt="png", thread_count=1)
    except PDFInfoNotInstalledError as exc:
        raise MissingDependency(
            "poppler is not installed: run `apt-get install poppler-utils` (or `make install`)"
        ) from exc
    except (PDFPageCountError, PDFSyntaxError) as exc:
        raise PdfUnreadable(f"poppler cannot render the PDF: {str(exc).strip()[:200]}") from exc
    return [np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1]) for img in rendered]


def read_text_layer(document: object, index: int, dpi: int) -> list[TextLine]:
    """Text runs of one PDF page with boxes in the pixel space of the page rendered at ``dpi``."""
    page = document[index]  # type: ignore[index]
    textpage = page.get_textpage()
    try:
        _, height_pt = page.get_size()
        scale = dpi / 72
        lines = []
        for rect_index in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(rect_index)
            text = textpage.get_text_bounded(left, bottom, right, top)
            text = text.replace("\u3000", " ").replace("\r", " ").replace("\n", " ").strip()
            if not text:
                continue
            polygon = polygon_from_rect(
                left * scale, (height_pt - top) * scale, right * scale, (height_pt - bottom) * scale
            )
            lines.append(TextLine(text=text, confidence=1.0, polygon=polygon, page=index))
        return lines
    finally:
        textpage.close()


def text_layer_trusted(lines: list[TextLine] | None) -> tuple[bool, str]:
    """A text layer is trusted when it is long enough and made of real characters.

    PDFs with unmapped fonts give control characters, private-use code points or
    replacement characters instead of text; those pages are OCR'd instead.
    """
    if not lines:
        return False, "no text layer"
    text = "".join(line.text for line in lines).replace(" ", "")
    if len(text) < 20:
        return False, f"only {len(text)} characters of text"
    bad = sum(1 for ch in text if unicodedata.category(ch) in {"Cc", "Co", "Cn", "Cs"} or ch == "\ufffd")
    if bad / len(text) > 0.02:
        return False, f"{bad} of {len(text)} characters are control or unmapped glyphs"
    return True, "ok"
