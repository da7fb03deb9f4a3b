"""Preprocessing: a photo is told from a flat page by the paper it finds on a background."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.preprocess import prepare_page
from tests.conftest import SAMPLES


def _photo_of(page: np.ndarray) -> np.ndarray:
    """The page laid tilted on a dark desk, as a phone would see it."""
    height, width = page.shape[:2]
    frame = np.full((int(height * 1.5), int(width * 1.5), 3), 60, np.uint8)
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    placed = np.float32(
        [
            [width * 0.2, height * 0.3],
            [width * 1.3, height * 0.2],
            [width * 1.25, height * 1.3],
            [width * 0.25, height * 1.2],
        ]
    )
    matrix = cv2.getPerspectiveTransform(corners, placed)
    return cv2.warpPerspective(page, matrix, frame.shape[1::-1], dst=frame, borderMode=cv2.BORDER_TRANSPARENT)


def test_a_flat_page_is_not_a_photo_and_a_page_on_a_desk_is(eval_dir: Path) -> None:
    page = cv2.imread(str(SAMPLES / "vat_special_clean.png"))
    flat = prepare_page(page, 2400)
    assert not flat.photographed and "crop" not in flat.steps
    photo = prepare_page(_photo_of(page), 2400)
    assert photo.photographed and "crop" in photo.steps
    # The paper was cut out and straightened: about the page's own size, not the frame's.
    height, width = photo.image.shape[:2]
    assert abs(width / height - page.shape[1] / page.shape[0]) < 0.15
    # A simulated phone photo of a real invoice, and the 200-dpi render it was made from.
    assert prepare_page(cv2.imread(str(eval_dir / "cn_photos" / "cn_034_harsh.jpg")), 2400).photographed
    assert not prepare_page(cv2.imread(str(eval_dir / "cn" / "cn_034.png")), 2400).photographed
