"""Which way up a page is: quadrant turns decided from what OCR (or detection) sees.

Engines that can look at detection boxes before recognising decide the turn once
(``OnnxEngine``); the others fall back to ``read_upright_by_retry``, which re-reads the
whole page per guess.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from pipeline.model import OcrPage, TextLine
from pipeline.preprocess import rotate_quadrant

if TYPE_CHECKING:
    from pipeline.ocr.base import OcrEngine, Timings

MEANINGFUL = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def text_score(lines: list[TextLine]) -> float:
    """How much confidently read text a page gave: used to pick the upright orientation."""
    return sum(line.confidence**2 * len(MEANINGFUL.findall(line.text)) for line in lines)


def looks_upright(lines: list[TextLine]) -> bool:
    """Most lines wide rather than tall, and read with confidence."""
    long_lines = [line for line in lines if len(line.text) >= 3]
    if len(long_lines) < 5:
        return False
    wide = sum(1 for line in long_lines if (line.x1 - line.x0) >= line.height)
    confident = sum(1 for line in long_lines if line.confidence >= 0.85)
    return wide >= 0.8 * len(long_lines) and confident >= 0.7 * len(long_lines)


def read_upright_by_retry(
    engine: OcrEngine,
    image: np.ndarray,
    page: int,
    timings: Timings | None = None,
    *,
    photographed: bool = False,
) -> tuple[np.ndarray, OcrPage, int]:
    """OCR the page, turning it by 90/180/270 degrees (whole re-reads) when it does not read upright."""
    first = engine.recognize(image, page, timings, photographed=photographed)
    if looks_upright(first.lines):
        return image, first, 0
    best = (text_score(first.lines), image, first, 0)
    tall = sum(1 for line in first.lines if line.height > (line.x1 - line.x0))
    order = (90, 270, 180) if tall > len(first.lines) / 3 else (180, 90, 270)
    seconds = first.seconds
    for angle in order:
        turned = rotate_quadrant(image, angle)
        attempt = engine.recognize(turned, page, timings, photographed=photographed)
        seconds += attempt.seconds
        score = text_score(attempt.lines)
        if score > best[0]:
            best = (score, turned, attempt, angle)
        if looks_upright(attempt.lines):
            break
    _, chosen, ocr, angle = best
    return chosen, OcrPage(lines=ocr.lines, engine=ocr.engine, seconds=seconds), angle
