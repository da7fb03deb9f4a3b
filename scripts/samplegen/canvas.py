"""Fonts and canvases: layout is in millimetres, with one raster (Pillow) and one PDF (fpdf2) back end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DPI = 200
PPM = DPI / 25.4  # pixels per millimetre

FONT_CANDIDATES: dict[str, list[tuple[str, int]]] = {
    "cjk": [
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ],
    "mono": [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 1),
    ],
    "sans": [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ],
    "sans_bold": [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ],
}


def font_file(key: str) -> tuple[str, int]:
    for path, index in FONT_CANDIDATES[key]:
        if Path(path).exists():
            return path, index
    raise SystemExit(
        f"make_samples: no font for {key!r}; install fonts-wqy-microhei and fonts-dejavu-core "
        "(apt-get install -y fonts-wqy-microhei fonts-wqy-zenhei fonts-dejavu-core)"
    )


RGB = tuple[int, int, int]


class Canvas:
    """Drawing surface in millimetres. Text anchors: l/m/r + m (middle) or s (baseline)."""

    def measure(self, s: str, size: float, font: str) -> float:
        raise NotImplementedError

    def _text(self, x: float, y: float, s: str, size: float, color: RGB, font: str, anchor: str) -> None:
        raise NotImplementedError

    def line(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float = 0.25) -> None:
        raise NotImplementedError

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: RGB | None,
        width: float = 0.3,
        fill: RGB | None = None,
    ) -> None:
        raise NotImplementedError

    def image(self, x: float, y: float, w: float, h: float, img: Image.Image, multiply: bool = False) -> None:
        raise NotImplementedError

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float) -> None:
        raise NotImplementedError

    # helpers shared by both back ends
    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float,
        color: RGB,
        font: str = "cjk",
        anchor: str = "lm",
        max_width: float | None = None,
        min_size: float | None = None,
    ) -> float:
        """Draw ``s``; shrink it (down to ``min_size``) to fit ``max_width``. Returns the width."""
        if max_width is not None:
            floor = min_size if min_size is not None else size * 0.7
            while size > floor and self.measure(s, size, font) > max_width:
                size = max(floor, size - 0.1)
        self._text(x, y, s, size, color, font, anchor)
        return self.measure(s, size, font)

    def spread(
        self, x0: float, x1: float, y: float, s: str, size: float, color: RGB, font: str = "cjk"
    ) -> None:
        """Characters spaced evenly from x0 to x1 (labels like 名    称, 校 验 码)."""
        if len(s) == 1:
            self._text(x0, y, s, size, color, font, "lm")
            return
        last_w = self.measure(s[-1], size, font)
        step = (x1 - x0 - last_w) / (len(s) - 1)
        for i, ch in enumerate(s):
            self._text(x0 + i * step, y, ch, size, color, font, "lm")

    def vtext(
        self, xc: float, y0: float, y1: float, s: str, size: float, color: RGB, font: str = "cjk"
    ) -> None:
        """Vertical label: characters stacked and centred between y0 and y1."""
        step = (y1 - y0) / len(s)
        for i, ch in enumerate(s):
            self._text(xc, y0 + step * (i + 0.5), ch, size, color, font, "mm")


class RasterCanvas(Canvas):
    def __init__(self, w_mm: float, h_mm: float, ppm: float = PPM, bg: RGB = (255, 255, 255)) -> None:
        self.ppm = ppm
        self.w_mm, self.h_mm = w_mm, h_mm
        self.img = Image.new("RGB", (round(w_mm * ppm), round(h_mm * ppm)), bg)
        self.draw = ImageDraw.Draw(self.img)
        self._fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def font(self, key: str, size: float) -> ImageFont.FreeTypeFont:
        px = max(6, round(size * self.ppm))
        if (key, px) not in self._fonts:
            path, index = font_file(key)
            self._fonts[key, px] = ImageFont.truetype(path, px, index=index)
        return self._fonts[key, px]

    def measure(self, s: str, size: float, font: str) -> float:
        return self.font(font, size).getlength(s) / self.ppm

    def _text(self, x: float, y: float, s: str, size: float, color: RGB, font: str, anchor: str) -> None:
        self.draw.text((x * self.ppm, y * self.ppm), s, font=self.font(font, size), fill=color, anchor=anchor)

    def _w(self, width: float) -> int:
        return max(1, round(width * self.ppm))

    def line(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float = 0.25) -> None:
        p = self.ppm
        self.draw.line([(x0 * p, y0 * p), (x1 * p, y1 * p)], fill=color, width=self._w(width))

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: RGB | None,
        width: float = 0.3,
        fill: RGB | None = None,
    ) -> None:
        p = self.ppm
        self.draw.rectangle(
            [x0 * p, y0 * p, x1 * p, y1 * p], outline=color, width=self._w(width) if color else 0, fill=fill
        )

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float) -> None:
        p = self.ppm
        self.draw.ellipse([x0 * p, y0 * p, x1 * p, y1 * p], outline=color, width=self._w(width))

    def image(self, x: float, y: float, w: float, h: float, img: Image.Image, multiply: bool = False) -> None:
        p = self.ppm
        size = (max(1, round(w * p)), max(1, round(h * p)))
        box = (round(x * p), round(y * p))
        if img.mode == "1" or getattr(img, "is_qr", False):
            scaled = img.convert("L").resize(size, Image.Resampling.NEAREST).convert("RGB")
            self.img.paste(scaled, box)
            return
        scaled = img.convert("RGBA").resize(size, Image.Resampling.LANCZOS)
        if not multiply:
            self.img.paste(scaled, box, scaled)
            return
        region = (box[0], box[1], box[0] + size[0], box[1] + size[1])
        base = np.asarray(self.img.crop(region), dtype=np.float32)
        over = np.asarray(scaled, dtype=np.float32)
        alpha = over[..., 3:4] / 255.0
        out = base * (1.0 - alpha + alpha * over[..., :3] / 255.0)
        self.img.paste(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), box[:2])


class PdfCanvas(Canvas):
    def __init__(self, w_mm: float, h_mm: float, title: str) -> None:
        try:
            from fpdf import FPDF
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise SystemExit("make_samples: PDF output needs fpdf2 (pip install fpdf2)") from exc
        orientation = "L" if w_mm > h_mm else "P"
        fmt = (h_mm, w_mm) if orientation == "L" else (w_mm, h_mm)
        self.pdf = FPDF(orientation=orientation, unit="mm", format=fmt)
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(0, 0, 0)
        self.pdf.set_creation_date(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
        self.pdf.set_creator("scripts/make_samples.py")
        self.pdf.set_title(title)
        self.pdf.add_page()
        self._loaded: set[str] = set()
        self._cur: tuple[str, float] | None = None

    def _font(self, key: str, size: float) -> None:
        if key not in self._loaded:
            path, index = font_file(key)
            self.pdf.add_font(key, fname=path, collection_font_number=index)
            self._loaded.add(key)
        if self._cur != (key, size):
            self.pdf.set_font(key, size=size * 72 / 25.4)
            self._cur = (key, size)

    def measure(self, s: str, size: float, font: str) -> float:
        self._font(font, size)
        return float(self.pdf.get_string_width(s))

    def _text(self, x: float, y: float, s: str, size: float, color: RGB, font: str, anchor: str) -> None:
        self._font(font, size)
        width = self.pdf.get_string_width(s)
        if anchor[0] == "m":
            x -= width / 2
        elif anchor[0] == "r":
            x -= width
        if anchor[1] == "m":
            desc = self.pdf.current_font.desc
            y += (desc.ascent + desc.descent) / 2000 * size
        self.pdf.set_text_color(*color)
        self.pdf.text(x, y, s)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float = 0.25) -> None:
        self.pdf.set_draw_color(*color)
        self.pdf.set_line_width(width)
        self.pdf.line(x0, y0, x1, y1)

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: RGB | None,
        width: float = 0.3,
        fill: RGB | None = None,
    ) -> None:
        style = ("F" if fill else "") + ("D" if color else "")
        if fill:
            self.pdf.set_fill_color(*fill)
        if color:
            self.pdf.set_draw_color(*color)
            self.pdf.set_line_width(width)
        self.pdf.rect(x0, y0, x1 - x0, y1 - y0, style=style)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float) -> None:
        self.pdf.set_draw_color(*color)
        self.pdf.set_line_width(width)
        self.pdf.ellipse(x0, y0, x1 - x0, y1 - y0)

    def image(self, x: float, y: float, w: float, h: float, img: Image.Image, multiply: bool = False) -> None:
        if multiply:
            with self.pdf.local_context(blend_mode="Multiply"):
                self.pdf.image(img, x, y, w, h)
        else:
            self.pdf.image(img, x, y, w, h)

    def output(self) -> bytes:
        return bytes(self.pdf.output())
