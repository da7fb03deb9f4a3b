"""QR code and seals: the QR code of an invoice and the red oval stamps (监制章, 发票专用章)."""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
import zxingcpp
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from samplegen.canvas import PPM, RGB, Canvas, RasterCanvas, font_file


def qr_image(payload: str, module_px: int = 1) -> Image.Image:
    barcode = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    arr = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False), dtype=np.uint8)
    if module_px > 1:
        arr = np.kron(arr, np.ones((module_px, module_px), dtype=np.uint8))
    img = Image.fromarray(arr, "L")
    img.is_qr = True  # type: ignore[attr-defined]
    return img


def draw_qr(canvas: Canvas, x: float, y: float, size: float, payload: str) -> None:
    img = qr_image(payload, 1 if isinstance(canvas, RasterCanvas) else 8)
    if isinstance(canvas, RasterCanvas):
        modules = np.asarray(img).shape[0]
        module_mm = math.floor(size * canvas.ppm / modules) / canvas.ppm
        size = module_mm * modules
    canvas.image(x, y, size, size, img)


def render_seal(
    w_mm: float,
    h_mm: float,
    arc_text: str,
    middle: str,
    bottom: str,
    rng: random.Random,
    ppm: float = PPM,
    color: RGB = (222, 38, 48),
    middle_font: str = "mono",
    ring_mm: float = 1.0,
    angle: float = 0.0,
    ink: float = 0.9,
) -> Image.Image:
    """A red oval stamp as an RGBA image: text along the top arc, a middle line, a bottom line."""
    scale = 3  # render large, then downsample (smooth edges)
    px = ppm * scale
    w, h = round(w_mm * px), round(h_mm * px)
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    ring = max(2, round(ring_mm * px))
    draw.ellipse([ring // 2, ring // 2, w - 1 - ring // 2, h - 1 - ring // 2], outline=255, width=ring)
    cjk_path, cjk_index = font_file("cjk")
    # arc text
    n = len(arc_text)
    span = math.radians(min(250.0, 24.0 * n))
    char_h = h_mm * 0.17
    for _ in range(3):  # shrink the glyphs until the name fits on the arc without overlaps
        a = w / 2 - ring - char_h * px * 0.75
        b = h / 2 - ring - char_h * px * 0.75
        char_h = min(h_mm * 0.17, span * (a + b) / 2 / n / px * 0.92)
    a = w / 2 - ring - char_h * px * 0.75
    b = h / 2 - ring - char_h * px * 0.75
    font = ImageFont.truetype(cjk_path, round(char_h * px), index=cjk_index)
    for i, ch in enumerate(arc_text):
        t = -math.pi / 2 - span / 2 + span * (i + 0.5) / n
        cx, cy = w / 2 + a * math.cos(t), h / 2 + b * math.sin(t)
        # normal of the ellipse at t gives the glyph's "up" direction
        nx, ny = math.cos(t) / a, math.sin(t) / b
        rot = -math.degrees(math.atan2(ny, nx)) - 90
        size = round(char_h * px * 1.6)
        glyph = Image.new("L", (size, size), 0)
        ImageDraw.Draw(glyph).text((size / 2, size / 2), ch, font=font, fill=255, anchor="mm")
        glyph = glyph.rotate(rot, resample=Image.Resampling.BICUBIC)
        mask.paste(ImageChops.lighter(mask.crop((round(cx - size / 2), round(cy - size / 2),
                                                  round(cx - size / 2) + size, round(cy - size / 2) + size)), glyph),
                   (round(cx - size / 2), round(cy - size / 2)))  # fmt: skip
    # middle line (tax ID), condensed to fit
    if middle:
        path, index = font_file(middle_font)
        mfont = ImageFont.truetype(path, round(h_mm * 0.14 * px), index=index)
        tw = round(mfont.getlength(middle)) + 4
        th = round(h_mm * 0.2 * px)
        tmp = Image.new("L", (tw, th), 0)
        ImageDraw.Draw(tmp).text((tw / 2, th / 2), middle, font=mfont, fill=255, anchor="mm")
        target_w = min(tw, round(w * 0.74))
        tmp = tmp.resize((target_w, th), Image.Resampling.LANCZOS)
        mask.paste(ImageChops.lighter(mask.crop((w // 2 - target_w // 2, h // 2 - th // 2,
                                                 w // 2 - target_w // 2 + target_w, h // 2 - th // 2 + th)), tmp),
                   (w // 2 - target_w // 2, h // 2 - th // 2))  # fmt: skip
    if bottom:
        bfont = ImageFont.truetype(cjk_path, round(h_mm * 0.15 * px), index=cjk_index)
        draw.text((w / 2, h * 0.76), bottom, font=bfont, fill=255, anchor="mm")
    # ink texture: uneven pressure, small voids
    nrng = np.random.default_rng(rng.randrange(2**32))
    low = cv2.resize(nrng.random((8, 12), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = nrng.random((h, w), dtype=np.float32)
    tex = np.clip(0.75 + 0.35 * low, 0.55, 1.0) * np.where(grain < 0.04, 0.35, 1.0)
    alpha = np.asarray(mask, dtype=np.float32) * tex * ink
    mask = Image.fromarray(np.clip(alpha, 0, 255).astype(np.uint8), "L")
    if angle:
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC)
    mask = mask.filter(ImageFilter.GaussianBlur(scale * 0.4)).resize(
        (round(w_mm * ppm), round(h_mm * ppm)), Image.Resampling.LANCZOS
    )
    seal = Image.new("RGBA", mask.size, (*color, 0))
    seal.putalpha(mask)
    return seal


def draw_seal(canvas: Canvas, xc: float, yc: float, seal: Image.Image, ppm: float = PPM) -> None:
    w, h = seal.size[0] / ppm, seal.size[1] / ppm
    canvas.image(xc - w / 2, yc - h / 2, w, h, seal, multiply=True)
