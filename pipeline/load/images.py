"""Images -> pages: JPEG, PNG, TIFF (every frame), BMP, WebP and HEIC/HEIF, through Pillow.

EXIF orientation is applied as the camera meant it (phone photos are often stored sideways).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.config import Settings
from pipeline.errors import ImageUnreadable, MissingDependency, TooLarge
from pipeline.model import Page

_heif_registered = False


def register_heif() -> None:
    """Teach Pillow HEIC/HEIF (pillow-heif), once per process."""
    global _heif_registered
    if _heif_registered:
        return
    try:
        from pillow_heif import register_heif_opener
    except ImportError as exc:  # pragma: no cover - a pinned dependency
        raise MissingDependency(
            "pillow-heif is not installed: run `pip install pillow-heif` (or `make install`)"
        ) from exc
    register_heif_opener()
    _heif_registered = True


def check_pixels(width: int, height: int, settings: Settings) -> None:
    if width * height > settings.max_image_pixels:
        raise TooLarge(
            f"image is {width}x{height} px ({width * height / 1e6:.0f} MP), over the "
            f"{settings.max_image_pixels / 1e6:.0f} MP limit (possible decompression bomb)"
        )
    if min(width, height) < settings.min_image_side:
        raise ImageUnreadable(f"image is only {width}x{height} px, too small to hold an invoice")


def load_image(data: bytes, settings: Settings) -> list[Page]:
    pages: list[Page] = []
    if data[4:8] == b"ftyp":
        register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            frame_count = getattr(image, "n_frames", 1)
            if frame_count > settings.max_pages:
                raise TooLarge(f"image has {frame_count} frames, over the {settings.max_pages}-page limit")
            for frame in range(frame_count):
                image.seek(frame)
                check_pixels(image.width, image.height, settings)
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
