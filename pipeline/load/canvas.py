"""Drawing e-invoice pages: a white page in millimetres, drawn in pixels at the render resolution.

OFD pages (and the page shown for an XML invoice) are vector descriptions; the store keeps page
images like for any other document, so they are drawn here with Pillow and the CJK font found
on the machine (``fc-list :lang=zh``).
"""

from __future__ import annotations

import functools
import logging
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.errors import MissingDependency

log = logging.getLogger(__name__)

MM_PER_INCH = 25.4
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)


@functools.cache
def cjk_font_path() -> str:
    """A font with Chinese glyphs: a known path, else the first that fontconfig lists for zh."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    try:
        listed = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listed = ""
    for line in listed.splitlines():
        path = line.split(":")[0].strip()
        if path and Path(path).is_file():
            return path
    raise MissingDependency(
        "no CJK font to draw e-invoice pages: run `apt-get install fonts-wqy-zenhei` (or `make install`)"
    )


@functools.lru_cache(maxsize=64)
def font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(cjk_font_path(), max(size_px, 4))


@functools.lru_cache(maxsize=20000)
def glyph(ch: str, size_px: int) -> tuple[Image.Image, int, int] | None:
    """The coverage mask of one character and its offset from the baseline origin (cached per process:
    invoices use a handful of sizes and a few hundred characters, so each is rendered once)."""
    face = font(size_px)
    left, top, right, bottom = face.getbbox(ch, anchor="ls")
    if right <= left or bottom <= top:
        return None
    mask = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).text((-left, -top), ch, fill=255, font=face, anchor="ls")
    return mask, left, top


@functools.lru_cache(maxsize=20000)
def advance(ch: str, size_px: int) -> float:
    return float(font(size_px).getlength(ch))


class Canvas:
    """A page of ``width_mm`` x ``height_mm`` drawn at ``dpi``; coordinates in mm from the top left.

    Pixels are kept in BGR order (colours are swapped when drawn) so the page is an OpenCV image
    without a copy.
    """

    def __init__(self, width_mm: float, height_mm: float, dpi: int) -> None:
        self.scale = dpi / MM_PER_INCH
        self.width = max(1, round(width_mm * self.scale))
        self.height = max(1, round(height_mm * self.scale))
        self.image = Image.new("RGB", (self.width, self.height), "white")
        self.draw = ImageDraw.Draw(self.image)

    def px(self, value_mm: float) -> float:
        return value_mm * self.scale

    def text(
        self, x_mm: float, baseline_mm: float, text: str, size_mm: float, color: tuple[int, ...]
    ) -> float:
        """One run of characters from its baseline's left end, spaced by the font; returns its width (px)."""
        size = round(size_mm * self.scale)
        x = self.px(x_mm)
        if size < 2 or not text.strip():
            return 0.0
        start = x
        for ch in text:
            self._glyph(x, self.px(baseline_mm), ch, size, color)
            x += advance(ch, size)
        return x - start

    def char(self, x_mm: float, baseline_mm: float, ch: str, size_mm: float, color: tuple[int, ...]) -> None:
        """One character where the file places it."""
        size = round(size_mm * self.scale)
        if size >= 2:
            self._glyph(self.px(x_mm), self.px(baseline_mm), ch, size, color)

    def _glyph(self, x: float, baseline: float, ch: str, size: int, color: tuple[int, ...]) -> None:
        found = None if ch.isspace() else glyph(ch, size)
        if found is None:
            return
        mask, left, top = found
        x0, y0 = round(x) + left, round(baseline) + top
        self.image.paste(bgr(color), (x0, y0, x0 + mask.width, y0 + mask.height), mask)

    def polyline(self, points_mm: list[tuple[float, float]], width_mm: float, color: tuple[int, ...]) -> None:
        if len(points_mm) < 2:
            return
        points = [(self.px(x), self.px(y)) for x, y in points_mm]
        self.draw.line(points, fill=bgr(color), width=max(1, round(width_mm * self.scale)))

    def polygon(self, points_mm: list[tuple[float, float]], color: tuple[int, ...]) -> None:
        if len(points_mm) >= 3:
            self.draw.polygon([(self.px(x), self.px(y)) for x, y in points_mm], fill=bgr(color))

    def paste(self, picture: Image.Image, x_mm: float, y_mm: float, w_mm: float, h_mm: float) -> None:
        width, height = max(1, round(self.px(w_mm))), max(1, round(self.px(h_mm)))
        red, green, blue, alpha = (
            picture.convert("RGBA").resize((width, height), Image.Resampling.BILINEAR).split()
        )
        swapped = Image.merge("RGBA", (blue, green, red, alpha))
        self.image.paste(swapped, (round(self.px(x_mm)), round(self.px(y_mm))), swapped)

    def to_bgr(self) -> np.ndarray:
        return np.array(self.image)  # already in BGR order, see the class docstring


def bgr(color: tuple[int, ...]) -> tuple[int, ...]:
    return (color[2], color[1], color[0]) if len(color) >= 3 else color
