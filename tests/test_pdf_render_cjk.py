"""PDFs whose Chinese font is named but not embedded (common in e-invoices) still render their Chinese.

A fresh machine has no poppler-data; the loader renders with pdfium, which draws such text with a
system CJK font. The PDF is written here by hand: a Type0 font /SimSun, UniGB-UCS2-H, no font file.
"""

from __future__ import annotations

import pytest

from pipeline.config import Settings
from pipeline.load import load_document
from pipeline.ocr import get_engine
from pipeline.process import process_document

LINES = ("增值税电子普通发票", "购买方名称", "价税合计壹佰圆整")


def cjk_pdf_without_embedded_font(lines: tuple[str, ...], font: str = "SimSun") -> bytes:
    """A one-page PDF whose text uses a CJK font it names but does not embed."""
    content = ["BT", "/F1 30 Tf"]
    for row, text in enumerate(lines):
        content.append(f"1 0 0 1 60 {760 - 70 * row} Tm <{text.encode('utf-16-be').hex().upper()}> Tj")
    content.append("ET")
    stream = "\n".join(content).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 7 0 R >>",
        f"<< /Type /Font /Subtype /Type0 /BaseFont /{font} /Encoding /UniGB-UCS2-H "
        "/DescendantFonts [5 0 R] >>".encode(),
        f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{font} /CIDSystemInfo << /Registry (Adobe) "
        "/Ordering (GB1) /Supplement 5 >> /FontDescriptor 6 0 R /DW 1000 >>".encode(),
        f"<< /Type /FontDescriptor /FontName /{font} /Flags 6 /FontBBox [0 -200 1000 900] /ItalicAngle 0 "
        "/Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>".encode(),  # no /FontFile: not embedded
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
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


def test_the_font_is_named_and_not_embedded() -> None:
    pypdf = pytest.importorskip("pypdf")
    import io

    reader = pypdf.PdfReader(io.BytesIO(cjk_pdf_without_embedded_font(LINES)))
    font = reader.pages[0]["/Resources"]["/Font"]["/F1"].get_object()
    descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
    assert font["/BaseFont"] == "/SimSun"
    assert not any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))


def test_the_rendered_page_carries_ink_where_the_chinese_is() -> None:
    pages = load_document(cjk_pdf_without_embedded_font(LINES), Settings(use_text_layer=False))
    image = pages[0].image
    height = image.shape[0]
    text_band = image[int(height * 0.05) : int(height * 0.3), :, :]
    dark = (text_band.min(axis=2) < 128).mean()
    assert dark > 0.01, "the Chinese lines were not drawn"


@pytest.mark.slow
def test_forced_ocr_reads_the_chinese_of_a_pdf_without_embedded_fonts() -> None:
    settings = Settings(use_text_layer=False)
    pages = load_document(cjk_pdf_without_embedded_font(LINES), settings)
    ocr = get_engine(settings).recognize(pages[0].image)
    text = "".join(line.text for line in ocr.lines).replace(" ", "")
    for expected in LINES:
        assert expected in text, f"{expected} not read from the rendered page: {text!r}"


@pytest.mark.slow
def test_the_whole_pipeline_with_forced_ocr_does_not_say_not_an_invoice() -> None:
    lines = (
        "增值税电子普通发票",
        "发票号码：12345678",
        "开票日期：2024年01月15日",
        "价税合计（大写）壹佰圆整",
    )
    processed = process_document(
        cjk_pdf_without_embedded_font(lines), "x.pdf", Settings(use_text_layer=False)
    )
    result = processed.result
    assert result.pages[0].text_source == "ocr"
    assert result.fields["invoice_number"].value == "12345678"
    assert result.fields["issue_date"].value == "2024-01-15"
