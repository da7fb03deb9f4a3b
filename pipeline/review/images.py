"""Page images for review: the stored page PNG, and a crop around a field's box."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline.errors import ImageUnreadable, NotFound
from pipeline.model import Box
from pipeline.store.objects import page_key

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger(__name__)

HIGHLIGHT_BGR = (40, 40, 230)
MAX_CROP_WIDTH = 1400


def page_png(store: Store, document_id: str, page: int) -> bytes:
    """The stored, normalised image of one page (0-based), as PNG bytes."""
    return store.objects.get(page_key(document_id, page))


class PageCache:
    """The last few decoded pages: a clerk's crops of one invoice all come from the same page."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._pages: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: Store, document_id: str, page: int) -> np.ndarray:
        key = (document_id, page)
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        image = decode_png(page_png(store, document_id, page))
        with self._lock:
            self._pages[key] = image
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)
        return image


def decode_png(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageUnreadable("the stored page image cannot be decoded")
    return image


def crop_box(image: np.ndarray, box: Box) -> np.ndarray:
    """The box with room around it (about two text heights above and below, more to the sides).

    The box is outlined so the clerk sees which text was read; the page is not modified.
    """
    height, width = image.shape[:2]
    points = np.array(box.polygon, dtype=np.float64)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    text_height = max(y1 - y0, 12.0)
    margin_y = max(24.0, min(text_height, 60.0) * 1.5)
    margin_x = max(48.0, min(text_height, 60.0) * 3.0)
    left = int(max(0, np.floor(x0 - margin_x)))
    top = int(max(0, np.floor(y0 - margin_y)))
    right = int(min(width, np.ceil(x1 + margin_x)))
    bottom = int(min(height, np.ceil(y1 + margin_y)))
    if right <= left or bottom <= top:
        raise NotFound(f"the field's box {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} is outside the page")
    crop = image[top:bottom, left:right].copy()
    outline = np.round(points - (left, top)).astype(np.int32)
    cv2.polylines(crop, [outline], isClosed=True, color=HIGHLIGHT_BGR, thickness=2, lineType=cv2.LINE_AA)
    if crop.shape[1] > MAX_CROP_WIDTH:
        scale = MAX_CROP_WIDTH / crop.shape[1]
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return crop


def encode_png(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ImageUnreadable("cannot encode the crop as PNG")
    return buffer.tobytes()


def crop_png(store: Store, document_id: str, box: Box, cache: PageCache | None = None) -> bytes:
    """PNG of the crop around ``box`` from the stored page it lies on."""
    image = (
        cache.get(store, document_id, box.page)
        if cache
        else decode_png(page_png(store, document_id, box.page))
    )
    return encode_png(crop_box(image, box))
