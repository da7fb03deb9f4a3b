"""Degradations (deterministic with the rng handed in): rotation, perspective onto a table, uneven light,
blur, noise, paper tone, JPEG; and the PNG/JPEG encoders."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image

from samplegen.canvas import RGB


def to_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def rotate(arr: np.ndarray, angle: float, fill: RGB = (255, 255, 255)) -> np.ndarray:
    """Rotate counter-clockwise by ``angle`` degrees, growing the canvas (exact for multiples of 90)."""
    if angle % 90 == 0:
        return np.ascontiguousarray(np.rot90(arr, int(angle // 90) % 4))
    h, w = arr.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(arr, m, (nw, nh), flags=cv2.INTER_CUBIC, borderValue=fill)


def textured_background(rng: np.random.Generator, w: int, h: int, base: RGB = (96, 78, 62)) -> np.ndarray:
    """A darker table-top: low-frequency blotches plus wood-like streaks."""
    low = cv2.resize(rng.random((6, 8), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    streak = cv2.resize(rng.random((h // 4, 1), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    streak = cv2.GaussianBlur(streak, (0, 0), 2.0)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    factor = 0.8 + 0.25 * low + 0.12 * (streak - 0.5) + 0.03 * grain
    out = np.asarray(base, dtype=np.float32)[None, None, :] * factor[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def perspective_onto(
    arr: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
    fill_ratio: float = 0.8,
    jitter: float = 0.05,
) -> tuple[np.ndarray, list[list[float]]]:
    """Warp the document onto ``background`` as a phone would see it; returns image and corners."""
    h, w = arr.shape[:2]
    bh, bw = background.shape[:2]
    scale = min(bw * fill_ratio / w, bh * fill_ratio / h)
    dw, dh = w * scale, h * scale
    cx, cy = bw / 2 + rng.uniform(-0.04, 0.04) * bw, bh / 2 + rng.uniform(-0.04, 0.04) * bh
    base = np.array(
        [
            [cx - dw / 2, cy - dh / 2],
            [cx + dw / 2, cy - dh / 2],
            [cx + dw / 2, cy + dh / 2],
            [cx - dw / 2, cy + dh / 2],
        ]
    )
    dst = (base + rng.uniform(-jitter, jitter, (4, 2)) * np.array([dw, dh])).astype(np.float32)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(arr, m, (bw, bh), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (bw, bh), flags=cv2.INTER_LINEAR)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    # a soft drop shadow under the sheet
    shadow = cv2.GaussianBlur(mask, (0, 0), 12).astype(np.float32)[..., None] / 255.0
    shadow = np.roll(shadow, (10, 8), axis=(0, 1))
    bg = background.astype(np.float32) * (1 - 0.45 * shadow * (1 - a))
    out = warped.astype(np.float32) * a + bg * (1 - a)
    return np.clip(out, 0, 255).astype(np.uint8), dst.round(1).tolist()


def uneven_light(
    arr: np.ndarray, rng: np.random.Generator, strength: float = 0.35, shadow: bool = True
) -> np.ndarray:
    """Multiply by a lighting field: a linear gradient, a vignette and optionally a soft shadow."""
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    grad = ((xx / w - 0.5) * math.cos(theta) + (yy / h - 0.5) * math.sin(theta)) + 0.5
    r = np.sqrt(((xx - w * rng.uniform(0.3, 0.7)) / w) ** 2 + ((yy - h * rng.uniform(0.3, 0.7)) / h) ** 2)
    field_ = 1.0 - strength * 0.6 * grad - strength * 0.5 * np.clip(r - 0.3, 0, None)
    if shadow:
        mask = np.zeros((h, w), np.float32)
        x0 = rng.uniform(0.55, 0.8) * w
        pts = np.array([[x0, 0], [w, 0], [w, h], [x0 + rng.uniform(-0.25, 0.1) * w, h]], np.int32)
        cv2.fillPoly(mask, [pts], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), w * 0.03)
        field_ *= 1.0 - 0.28 * mask
    out = arr.astype(np.float32) * np.clip(field_, 0.35, 1.05)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(arr, (0, 0), sigma)


def noise(arr: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    out = arr.astype(np.float32) + rng.normal(0, sigma, arr.shape[:2])[..., None].astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def paper_tone(
    arr: np.ndarray, rng: np.random.Generator, tint: RGB = (248, 246, 238), grain: float = 2.0
) -> np.ndarray:
    out = arr.astype(np.float32) * (np.asarray(tint, np.float32) / 255.0)
    if grain:
        out += cv2.GaussianBlur(rng.normal(0, grain, arr.shape[:2]).astype(np.float32), (0, 0), 0.8)[
            ..., None
        ]
    return np.clip(out, 0, 255).astype(np.uint8)


def jpeg_bytes(arr: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=True)
    return buf.getvalue()


def jpeg_roundtrip(arr: np.ndarray, quality: int) -> np.ndarray:
    return to_array(Image.open(io.BytesIO(jpeg_bytes(arr, quality))))


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", optimize=True)
    return buf.getvalue()
