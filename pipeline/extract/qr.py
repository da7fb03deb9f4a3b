"""Find and decode the QR code printed on VAT invoices (top left on paper and PDF invoices).

zxing-cpp does the work; the image is retried upscaled and binarised because invoice QR codes are small
(about 100 px on a phone photo), and OpenCV's detector is the last resort.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np
import zxingcpp

from pipeline.fapiao import parse_qr_payload

log = logging.getLogger(__name__)

# Upscaling a photo that is already large costs far more than it finds: keep the work bounded.
UPSCALE_MAX_SIDE = 2500


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _variants(image: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The image as is, then cheap rescues, tried lazily in order of cost."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    yield "as_is", np.ascontiguousarray(image)
    gray = _gray(image)
    if max(gray.shape[:2]) <= UPSCALE_MAX_SIDE:
        gray = cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        yield "upscaled", gray
    # Otsu separates dark modules from paper even under the uneven light of a phone photo's small crop.
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    yield "binarised", binary


def _opencv_decode(image: np.ndarray) -> list[str]:
    try:
        ok, texts, _, _ = cv2.QRCodeDetector().detectAndDecodeMulti(_gray(image))
    except cv2.error as exc:  # OpenCV raises on degenerate detections instead of returning nothing
        log.debug("OpenCV QR detector failed: %s", exc)
        return []
    return [t for t in texts if t] if ok else []


def _decodes(image: np.ndarray) -> Iterator[list[str]]:
    """QR texts found by each attempt in turn (zxing on each variant, then OpenCV); stop consuming early."""
    if image is None or image.size == 0:
        return
    for name, variant in _variants(image):
        found = zxingcpp.read_barcodes(variant, formats=zxingcpp.BarcodeFormat.QRCode)
        texts = [b.text for b in found if b.text]
        if texts:
            log.debug("QR found on the %s image", name)
            yield texts
    yield _opencv_decode(image)


def decode_qr_codes(image: np.ndarray) -> list[str]:
    """Texts of the QR codes on a BGR (or grayscale) page image, from the first attempt that finds any."""
    for texts in _decodes(image):
        if texts:
            return list(dict.fromkeys(texts))
    return []


def find_invoice_qr(
    image: np.ndarray, sharp: bool = False, hints: Sequence[tuple[int, int, int, int]] = ()
) -> str | None:
    """The first QR text that parses as an invoice payload, or None.

    Keeps trying harder variants when an easy one found only some other QR code (a shop's URL, say).
    ``sharp`` (a page rendered from a PDF) stops after the first attempt: the rescues for photos
    (upscale, binarise, OpenCV) cost ~0.2 s a page and never help a clean render. ``hints`` are
    pixel boxes where the QR code probably is (a PDF's square images): each is read first, with a
    margin for the quiet zone, and the whole page only when none holds an invoice payload.
    """
    height, width = image.shape[:2]
    for x0, y0, x1, y1 in hints:
        margin = 8 + (x1 - x0) // 8
        crop = image[
            max(y0 - margin, 0) : min(y1 + margin, height), max(x0 - margin, 0) : min(x1 + margin, width)
        ]
        if crop.size == 0:
            continue
        found = zxingcpp.read_barcodes(_gray(crop), formats=zxingcpp.BarcodeFormat.QRCode)
        text = _invoice_payload(barcode.text for barcode in found)
        if text is not None:
            return text
    attempts: Iterable[list[str]] = _decodes(image)
    if sharp:
        found = zxingcpp.read_barcodes(_gray(image), formats=zxingcpp.BarcodeFormat.QRCode)
        attempts = [[barcode.text for barcode in found if barcode.text]]
    for texts in attempts:
        text = _invoice_payload(texts)
        if text is not None:
            return text
    return None


def _invoice_payload(texts: Iterable[str]) -> str | None:
    return next((text for text in texts if text and parse_qr_payload(text) is not None), None)
