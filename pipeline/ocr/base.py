"""The engine protocol: every OCR engine turns one page image into ``OcrPage``.

Nothing outside ``pipeline/ocr/`` sees PaddleOCR or RapidOCR types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import MutableMapping

import cv2
import numpy as np

from pipeline.model import OcrPage, TextLine

# Seconds per OCR stage ("detection", "recognition", "orientation"), added to by an engine
# when the caller passes one in; ``process_document`` shows them in the stage table.
Timings = MutableMapping[str, float]


def add_time(timings: Timings | None, stage: str, seconds: float) -> None:
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + seconds


class OcrEngine(ABC):
    """Recognise text lines on a BGR ``uint8`` page image."""

    name: str = ""

    @abstractmethod
    def version(self) -> str:
        """Library and model versions, recorded in every result."""

    @abstractmethod
    def recognize(
        self, image: np.ndarray, page: int = 0, timings: Timings | None = None, *, photographed: bool = False
    ) -> OcrPage:
        """Return the text lines of ``image`` with polygons in its pixel coordinates.

        ``photographed``: the page was cut out of a photo (preprocess found paper on a
        background); an engine may read such pages more cautiously.
        """

    def read_upright(
        self, image: np.ndarray, page: int = 0, timings: Timings | None = None, *, photographed: bool = False
    ) -> tuple[np.ndarray, OcrPage, int]:
        """Turn the page upright (0/90/180/270 degrees counter-clockwise) and read it.

        Returns the turned image, its lines (in the turned image's coordinates) and the angle.
        This default re-reads the whole page per guess; engines that can decide from the
        detection boxes override it.
        """
        from pipeline.ocr.orientation import read_upright_by_retry

        return read_upright_by_retry(self, image, page, timings, photographed=photographed)

    def warm_up(self) -> None:
        """Run once on a tiny image so model loading happens at start, not on the first invoice."""
        sample = np.full((64, 320, 3), 255, dtype=np.uint8)
        cv2.putText(sample, "No 12345678", (10, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
        self.recognize(sample)


def lines_from_arrays(
    boxes: object, texts: object, scores: object, page: int, min_confidence: float = 0.0
) -> list[TextLine]:
    """Normalise the (boxes, texts, scores) triple both PP-OCR front ends return."""
    lines: list[TextLine] = []
    if boxes is None or texts is None or scores is None:
        return lines
    for box, text, score in zip(boxes, texts, scores, strict=False):  # type: ignore[call-overload]
        text = str(text).strip()
        if not text:
            continue
        polygon = tuple((float(x), float(y)) for x, y in np.asarray(box, dtype=float).reshape(-1, 2))
        confidence = min(1.0, max(0.0, float(score)))
        if confidence < min_confidence:
            continue
        lines.append(TextLine(text=text, confidence=confidence, polygon=polygon, page=page))
    return lines
