"""Stage 2: make a page image easy to read (OpenCV only, no OCR).

Each step is a plain function ``image -> image`` that is safe on an already clean
page: it changes nothing when it finds nothing to fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    image: np.ndarray
    steps: list[str] = field(default_factory=list)
    # Paper was found on a background and cut out: a photo, not a scan or a render.
    photographed: bool = False


def rotate_quadrant(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate by a multiple of 90 degrees, counter-clockwise."""
    turns = (degrees // 90) % 4
    if turns == 0:
        return image
    codes = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
    return cv2.rotate(image, codes[turns])


def limit_size(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def _order_corners(points: np.ndarray) -> np.ndarray:
    sums = points.sum(axis=1)
    diffs = np.diff(points, axis=1).ravel()
    return np.array(
        [
            points[np.argmin(sums)],
            points[np.argmin(diffs)],
            points[np.argmax(sums)],
            points[np.argmax(diffs)],
        ],
        dtype=np.float32,
    )


def crop_document(image: np.ndarray) -> np.ndarray:
    """Find a bright paper quadrilateral in a photo and warp it flat.

    Only acts when the paper clearly stands out from a darker background and covers
    a reasonable part of the frame; a scan that is all paper is returned unchanged.
    """
    height, width = image.shape[:2]
    scale = 800 / max(height, width)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    scale = min(scale, 1.0)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    gray = cv2.GaussianBlur(gray, (5, 5), 0)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return image
    largest = max(contours, key=cv2.contourArea)
    area_share = cv2.contourArea(largest) / float(mask.shape[0] * mask.shape[1])
    if not 0.2 < area_share < 0.92:
        return image
    hull = cv2.convexHull(largest)
    approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    if len(approx) != 4:
        return image
    corners = _order_corners(approx.reshape(4, 2).astype(np.float32) / scale)
    top_left, top_right, bottom_right, bottom_left = corners
    out_w = int(max(np.linalg.norm(top_right - top_left), np.linalg.norm(bottom_right - bottom_left)))
    out_h = int(max(np.linalg.norm(bottom_left - top_left), np.linalg.norm(bottom_right - top_right)))
    if out_w < 200 or out_h < 200:
        return image
    target = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(
        image, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderValue=(255, 255, 255)
    )


def estimate_skew(image: np.ndarray, max_degrees: float = 10.0) -> float:
    """Small-angle skew in degrees from the long straight lines (form rules, text baselines)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    scale = min(1.0, 1000 / max(height, width))  # Hough is the costliest non-OCR step; 1000 px keeps angles
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    edges = cv2.Canny(gray, 50, 150, apertureSize=3)
    min_length = gray.shape[1] // 5
    segments = cv2.HoughLinesP(edges, 1, np.pi / 720, threshold=120, minLineLength=min_length, maxLineGap=10)
    if segments is None:
        return 0.0
    angles = []
    weights = []
    for x1, y1, x2, y2 in segments[:, 0]:
        angle = np.degrees(np.arctan2(y2 - y1, x2 - x1))
        if abs(angle) <= max_degrees:
            angles.append(angle)
            weights.append(np.hypot(x2 - x1, y2 - y1))
    if len(angles) < 2:
        return 0.0
    order = np.argsort(angles)
    cumulative = np.cumsum(np.asarray(weights)[order])
    median = float(np.asarray(angles)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    return median


def deskew(image: np.ndarray, min_degrees: float = 0.3) -> tuple[np.ndarray, float]:
    angle = estimate_skew(image)
    if abs(angle) < min_degrees:
        return image, 0.0
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    rotated = cv2.warpAffine(
        image, matrix, (new_w, new_h), flags=cv2.INTER_CUBIC, borderValue=(255, 255, 255)
    )
    return rotated, angle


def even_out_light(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Divide out a slowly varying background (shadows, uneven lamp light) when there is one."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)
    background = cv2.medianBlur(small, 15)
    spread = float(np.percentile(background, 95) - np.percentile(background, 5))
    if spread < 40:
        return image, False
    kernel = max(31, (min(image.shape[:2]) // 20) | 1)
    full_background = cv2.medianBlur(cv2.resize(image, None, fx=0.25, fy=0.25), kernel // 4 | 1)
    full_background = cv2.resize(
        full_background, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR
    )
    normalised = cv2.divide(image, full_background, scale=255)
    return normalised, True


def suppress_red_seal(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Fade strongly saturated red (seals, stamps) so black text under it reads clearly.

    Red ink is bright in the red channel, so painting masked pixels with their red
    value turns the seal nearly white while dark text that overlaps it stays dark.
    Brownish form lines are less saturated and survive.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hue, saturation, value = cv2.split(hsv)
    red = (((hue <= 8) | (hue >= 165)) & (saturation >= 100) & (value >= 100)).astype(np.uint8)
    if red.mean() < 0.002:
        return image, False
    # Keep only seal-sized blobs: red labels and form rules printed in red must stay readable.
    width = image.shape[1]
    grown = cv2.dilate(red, np.ones((9, 9), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    seal = np.zeros_like(red, dtype=bool)
    for label in range(1, count):
        w, h = stats[label][2], stats[label][3]
        if 0.05 * width <= w <= 0.3 * width and 0.4 <= h / max(w, 1) <= 2.5:
            seal |= labels == label
    mask = seal & (red > 0)
    if not mask.any():
        return image, False
    out = image.copy()
    red_channel = image[:, :, 2]
    for channel in range(3):
        out[:, :, channel] = np.where(mask, red_channel, image[:, :, channel])
    return out, True


def prepare_page(image: np.ndarray, max_side: int) -> Prepared:
    """The default chain for a raster page; each step logs what it changed."""
    prepared = Prepared(image=image)
    cropped = crop_document(prepared.image)
    if cropped is not prepared.image:
        prepared.image = cropped
        prepared.steps.append("crop")
        prepared.photographed = True
    prepared.image, angle = deskew(prepared.image)
    if angle:
        prepared.steps.append(f"deskew {angle:+.1f}")
    prepared.image, evened = even_out_light(prepared.image)
    if evened:
        prepared.steps.append("light")
    prepared.image, faded = suppress_red_seal(prepared.image)
    if faded:
        prepared.steps.append("seal")
    prepared.image = limit_size(prepared.image, max_side)
    return prepared
