"""QR decoding on synthetic pages and on real invoices from the eval set."""

from __future__ import annotations

import json
from decimal import Decimal

import cv2
import numpy as np
import pytest
import zxingcpp

from pipeline.config import Settings
from pipeline.extract.qr import decode_qr_codes, find_invoice_qr
from pipeline.fapiao import parse_qr_payload
from pipeline.load import load_document
from tests.conftest import EVAL_DIR, SAMPLES

EVAL_CN = EVAL_DIR / "cn"
PAYLOAD = "01,10,012001800111,41539530,582.72,20180921,09721126099007676378,276D,"


def qr_image(text: str, scale: int) -> np.ndarray:
    return np.asarray(zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode).to_image(scale=scale))


def page_with_qr(text: str, scale: int = 2, angle: float = 2.0, seed: int = 0) -> np.ndarray:
    """A white 1700x1100 page with rows of text-like noise, the QR pasted small top left, rotated."""
    rng = np.random.default_rng(seed)
    page = np.full((1100, 1700, 3), 255, np.uint8)
    for y in range(60, 1080, 34):
        x = int(rng.integers(20, 300))
        while x < 1650:
            word = "".join(chr(int(c)) for c in rng.integers(65, 91, size=int(rng.integers(1, 6))))
            cv2.putText(page, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1)
            x += 14 * len(word) + int(rng.integers(10, 40))
    code = cv2.cvtColor(qr_image(text, scale), cv2.COLOR_GRAY2BGR)
    h, w = code.shape[:2]
    page[60 : 60 + h, 80 : 80 + w] = code
    matrix = cv2.getRotationMatrix2D((850, 550), angle, 1.0)
    return cv2.warpAffine(page, matrix, (1700, 1100), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def read_eval_image(name: str) -> np.ndarray:
    path = EVAL_CN / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def test_small_rotated_qr_on_a_noisy_page() -> None:
    page = page_with_qr(PAYLOAD, scale=2, angle=2.0)
    assert decode_qr_codes(page) == [PAYLOAD]
    text = find_invoice_qr(page)
    assert text == PAYLOAD
    payload = parse_qr_payload(text)
    assert payload is not None
    assert (payload.invoice_code, payload.invoice_number, payload.issue_date) == (
        "012001800111",
        "41539530",
        "2018-09-21",
    )


def test_grayscale_and_bgra_input() -> None:
    page = page_with_qr(PAYLOAD, scale=3, angle=-1.5, seed=1)
    assert find_invoice_qr(cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)) == PAYLOAD
    assert find_invoice_qr(cv2.cvtColor(page, cv2.COLOR_BGR2BGRA)) == PAYLOAD


def test_blank_and_empty_pages() -> None:
    blank = np.full((1100, 1700, 3), 255, np.uint8)
    assert decode_qr_codes(blank) == []
    assert find_invoice_qr(blank) is None
    assert decode_qr_codes(np.zeros((0, 0, 3), np.uint8)) == []


def test_non_invoice_qr_is_decoded_but_not_accepted() -> None:
    page = page_with_qr("http://einvoice.jsczt.cn/page/32020124/0007445174/RolVjv", scale=3)
    assert decode_qr_codes(page) == ["http://einvoice.jsczt.cn/page/32020124/0007445174/RolVjv"]
    assert find_invoice_qr(page) is None


def test_real_e_invoice_cn_034() -> None:
    text = find_invoice_qr(read_eval_image("cn_034.png"))
    payload = parse_qr_payload(text or "")
    assert payload is not None, text
    assert payload.invoice_code == "012001800111"
    assert payload.invoice_number == "41539530"
    assert payload.amount_excl_tax == "582.72"
    assert payload.check_code == "09721126099007676378"


def test_real_phone_photo_needs_the_fallbacks() -> None:
    # cn_045: a ~100 px QR on a photographed paper 普票; zxing reads it only upscaled and binarised.
    payload = parse_qr_payload(find_invoice_qr(read_eval_image("cn_045.png")) or "")
    assert payload is not None
    assert (payload.kind, payload.invoice_code, payload.invoice_number) == ("04", "044031800104", "41108527")


def test_every_eval_qr_agrees_with_its_labels() -> None:
    """The QR codes of the real invoices say what the checked labels say (40 of 41; cn_043 has none)."""
    if not EVAL_CN.is_dir():
        pytest.skip("eval set not available")
    decoded = 0
    for label_path in sorted(EVAL_CN.glob("cn_*.json")):
        label = json.loads(label_path.read_text(encoding="utf-8"))
        fields = label["fields"]
        text = find_invoice_qr(read_eval_image(label["files"]["image"]))
        if text is None:
            assert label["id"] == "cn_043", label["id"]  # a 2010 specimen printed before QR codes
            continue
        payload = parse_qr_payload(text)
        assert payload is not None
        decoded += 1
        assert payload.invoice_number == fields["invoice_number"], label["id"]
        assert payload.invoice_code == fields["invoice_code"] or payload.invoice_code is None, label["id"]
        if payload.issue_date is not None:
            assert payload.issue_date == fields["issue_date"], label["id"]
        if payload.check_code is not None:
            assert payload.check_code == fields["check_code"], label["id"]
        if payload.amount_excl_tax is not None:
            assert Decimal(payload.amount_excl_tax) == Decimal(fields["amount_excl_tax"]), label["id"]
        if payload.total_amount is not None:
            assert Decimal(payload.total_amount) == Decimal(fields["total_amount"]), label["id"]
    assert decoded == 40


def test_a_pdfs_square_images_point_the_qr_reader_at_its_code() -> None:
    """A text-layer PDF's QR code is found in the square image the PDF places (a small crop,
    not the whole page); the hint names the page's own QR, and a wrong hint changes nothing."""
    page = load_document((SAMPLES / "vat_e_general.pdf").read_bytes(), Settings())[0]
    assert page.text_layer_trusted and page.qr_hints
    x0, y0, x1, y1 = page.qr_hints[0]
    assert 0 <= x0 < x1 <= page.size[0] / 3 and 0 <= y0 < y1 <= page.size[1] / 2  # top left, as printed
    whole_page = find_invoice_qr(page.image, sharp=True)
    assert whole_page is not None and parse_qr_payload(whole_page) is not None
    assert find_invoice_qr(page.image, sharp=True, hints=page.qr_hints) == whole_page
    # The crop alone holds the code: the page outside it blanked, the hint still finds it.
    blanked = np.full_like(page.image, 255)
    blanked[y0:y1, x0:x1] = page.image[y0:y1, x0:x1]
    assert find_invoice_qr(blanked, sharp=True, hints=page.qr_hints) == whole_page
    # A hint on empty paper falls back to the whole page.
    assert find_invoice_qr(page.image, sharp=True, hints=((1200, 800, 1300, 900),)) == whole_page


def test_a_pdf_without_square_images_gives_no_hints() -> None:
    page = load_document((SAMPLES / "en_invoice.pdf").read_bytes(), Settings())[0]
    assert page.text_layer_trusted and page.qr_hints == ()
