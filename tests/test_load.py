"""Loading: formats by content, clear errors for bad input, PDF text layers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.config import Settings
from pipeline.errors import (
    EmptyFile,
    EncryptedPdf,
    ImageUnreadable,
    PdfUnreadable,
    TooLarge,
    UnsupportedFormat,
)
from pipeline.load import load_document, sniff_format, text_layer_trusted
from pipeline.model import TextLine, polygon_from_rect

SETTINGS = Settings()


def image_bytes(fmt: str, size: tuple[int, int] = (400, 300), frames: int = 1) -> bytes:
    images = [Image.new("RGB", size, (255, 255 - 40 * i, 255)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, save_all=frames > 1, append_images=images[1:])
    return buffer.getvalue()


def blank_pdf(pages: int = 1) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=420)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("TIFF", "tiff"), ("BMP", "bmp"), ("WEBP", "webp")]
)
def test_images_load_by_content(fmt: str, name: str) -> None:
    data = image_bytes(fmt)
    assert sniff_format(data) == name
    pages = load_document(data, SETTINGS)
    assert len(pages) == 1
    assert pages[0].image.shape == (300, 400, 3)
    assert pages[0].image.dtype == np.uint8


def test_multipage_tiff_gives_every_page() -> None:
    pages = load_document(image_bytes("TIFF", frames=3), SETTINGS)
    assert [page.index for page in pages] == [0, 1, 2]


def test_empty_file() -> None:
    with pytest.raises(EmptyFile, match="empty"):
        load_document(b"", SETTINGS)


def test_not_an_image() -> None:
    with pytest.raises(UnsupportedFormat, match="not an image or PDF"):
        load_document(b"hello, this is a text file\n", SETTINGS)


def test_truncated_jpeg() -> None:
    data = image_bytes("JPEG", (800, 600))
    with pytest.raises(ImageUnreadable, match=r"truncated|corrupt"):
        load_document(data[: len(data) // 3], SETTINGS)


def test_tiny_image_is_refused() -> None:
    with pytest.raises(ImageUnreadable, match="1x1 px"):
        load_document(image_bytes("PNG", (1, 1)), SETTINGS)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = image_bytes("PNG", (12000, 12000))  # compresses to a few hundred kB
    assert len(bomb) < 2_000_000
    with pytest.raises(TooLarge, match=r"MP|decompression bomb"):
        load_document(bomb, Settings(max_image_pixels=50_000_000))


def test_file_size_limit() -> None:
    with pytest.raises(TooLarge, match="MB"):
        load_document(b"%PDF" + b"0" * 2000, Settings(max_file_bytes=1000))


def test_encrypted_pdf() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(blank_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(EncryptedPdf, match="encrypted"):
        load_document(buffer.getvalue(), SETTINGS)


def test_pdf_without_pages() -> None:
    data = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    with pytest.raises(PdfUnreadable, match=r"no pages|damaged"):
        load_document(data, SETTINGS)


def test_damaged_pdf() -> None:
    with pytest.raises(PdfUnreadable):
        load_document(b"%PDF-1.7\n" + b"\x00garbage" * 100, SETTINGS)


def test_blank_pdf_renders_without_text_layer() -> None:
    pages = load_document(blank_pdf(2), SETTINGS)
    assert len(pages) == 2
    assert not pages[0].text_layer_trusted
    width, height = pages[0].size
    assert abs(width - 595 * 200 / 72) < 3 and abs(height - 420 * 200 / 72) < 3


def _line(text: str) -> TextLine:
    return TextLine(text=text, confidence=1.0, polygon=polygon_from_rect(0, 0, 10, 10))


def test_text_layer_trust() -> None:
    good = [_line("发票代码:012001800111"), _line("价税合计（大写）陆佰元零贰角")]
    assert text_layer_trusted(good)[0]
    garbled = [_line("\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b"), _line("\x0c\r\x0e\x0f\x10abcdefghijk")]
    trusted, why = text_layer_trusted(garbled)
    assert not trusted and "control" in why
    assert not text_layer_trusted([_line("abc")])[0]


def test_real_pdfs_text_layer(eval_dir) -> None:
    """A born-digital invoice's layer is used; one with unmapped fonts is sent to OCR."""
    digital = load_document((eval_dir / "cn" / "cn_034.pdf").read_bytes(), SETTINGS)
    assert digital[0].text_layer_trusted
    assert any("41539530" in line.text for line in digital[0].text_layer or [])
    garbled = load_document((eval_dir / "cn" / "cn_068.pdf").read_bytes(), SETTINGS)
    assert not garbled[0].text_layer_trusted
    assert garbled[0].note
