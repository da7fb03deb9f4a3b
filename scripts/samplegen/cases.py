"""Rendering one document and the case builders: Doc, the committed sample cases (SAMPLE_CASES) and
random documents for benchmarks (build_random)."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from samplegen.canvas import DPI, Canvas, PdfCanvas, RasterCanvas
from samplegen.degrade import (
    blur,
    jpeg_bytes,
    jpeg_roundtrip,
    noise,
    paper_tone,
    perspective_onto,
    png_bytes,
    rotate,
    textured_background,
    to_array,
    uneven_light,
)
from samplegen.invoices import (
    CN_DOC_TYPES,
    FULLY_DIGITAL,
    CnInvoice,
    EnInvoice,
    make_cn_invoice,
    make_en_invoice,
    private_buyer,
)
from samplegen.layouts import (
    INK_BLACK,
    INK_BLUE,
    Style,
    layout_english,
    layout_fully_digital,
    layout_old_style,
    page_size,
)


def render_cn(inv: CnInvoice, style: Style, rng: random.Random, pdf: bool = False) -> np.ndarray | bytes:
    w, h = page_size(inv.doc_type)
    canvas: Canvas = PdfCanvas(w, h, inv.title) if pdf else RasterCanvas(w, h)
    if inv.doc_type in FULLY_DIGITAL:
        layout_fully_digital(canvas, inv, style, rng)
    else:
        layout_old_style(canvas, inv, style, rng)
    if isinstance(canvas, PdfCanvas):
        return canvas.output()
    assert isinstance(canvas, RasterCanvas)
    return to_array(canvas.img)


def render_en(inv: EnInvoice, pdf: bool = False) -> np.ndarray | bytes:
    canvas: Canvas = PdfCanvas(210, 297, f"Invoice {inv.number}") if pdf else RasterCanvas(210, 297)
    layout_english(canvas, inv)
    if isinstance(canvas, PdfCanvas):
        return canvas.output()
    assert isinstance(canvas, RasterCanvas)
    return to_array(canvas.img)


def paper_style(rng: random.Random, inv: CnInvoice, **kw: Any) -> Style:
    base = {
        "paper": True,
        "ink": rng.choice((INK_BLUE, INK_BLUE, INK_BLACK)),
        "offset": (round(rng.uniform(-0.8, 1.0), 2), round(rng.uniform(-0.4, 0.7), 2)),
        "seal_angle": round(rng.uniform(-12, 12), 1),
        "copy_label": "抵扣联" if inv.doc_type == "vat_special_paper" and rng.random() < 0.5 else "发票联",
    }
    base.update(kw)
    return Style(**base)


@dataclass
class Doc:
    """One generated document: files to write (name -> bytes) and its ground truth."""

    case: str
    doc_type: str
    variant: str
    files: dict[str, bytes]
    truth: dict[str, Any]
    degradations: list[dict[str, Any]]
    image: dict[str, Any] | None


def _image_info(arr: np.ndarray, rotation: float = 0.0) -> dict[str, Any]:
    return {"width": int(arr.shape[1]), "height": int(arr.shape[0]), "dpi": DPI, "rotation_ccw_deg": rotation}


def case_seed(seed: int, case: str) -> int:
    return zlib.crc32(f"{seed}:{case}".encode()) & 0x7FFFFFFF


# Each builder: (case name, rng seeded for it) -> Doc


def build_vat_special_clean(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_special_paper")
    style = paper_style(rng, inv, ink=INK_BLACK)
    arr = paper_tone(render_cn(inv, style, rng), nrng, (250, 249, 244), grain=0)  # type: ignore[arg-type]
    return Doc(
        case, inv.doc_type, "clean_scan_200dpi", {f"{case}.png": png_bytes(arr)}, inv.truth(),
        [{"op": "paper_tone"}], _image_info(arr),
    )  # fmt: skip


def build_vat_general_photo(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    style = paper_style(rng, inv, holes=True)
    page = paper_tone(render_cn(inv, style, rng), nrng, (246, 244, 236), grain=1.5)  # type: ignore[arg-type]
    # the phone sees the page larger than 200 dpi: scale up so values stay >= 22 px after the warp
    page = cv2.resize(page, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_CUBIC)
    bg = textured_background(nrng, 2600, 1950)
    arr, corners = perspective_onto(page, bg, nrng, fill_ratio=0.86, jitter=0.035)
    arr = uneven_light(arr, nrng, 0.4, shadow=True)
    arr = blur(arr, 0.7)
    arr = noise(arr, nrng, 2.5)
    data = jpeg_bytes(arr, 82)
    degr = [
        {"op": "paper_tone"},
        {"op": "scale", "factor": 1.25},
        {"op": "perspective", "corners": corners, "background": "textured_dark"},
        {"op": "uneven_light", "strength": 0.4, "shadow": True},
        {"op": "blur", "sigma": 0.7},
        {"op": "noise", "sigma": 2.5},
        {"op": "jpeg", "quality": 82},
    ]
    return Doc(case, inv.doc_type, "phone_photo", {f"{case}.jpg": data}, inv.truth(), degr, _image_info(arr))


def build_vat_e_general_pdf(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_e_invoice_general")
    data = render_cn(inv, Style(seal_angle=round(rng.uniform(-8, 8), 1)), rng, pdf=True)
    assert isinstance(data, bytes)
    return Doc(case, inv.doc_type, "born_digital_pdf", {f"{case}.pdf": data}, inv.truth(), [], None)


def build_fully_digital_general_pdf(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "fully_digital_general")
    data = render_cn(inv, Style(), rng, pdf=True)
    assert isinstance(data, bytes)
    return Doc(case, inv.doc_type, "born_digital_pdf", {f"{case}.pdf": data}, inv.truth(), [], None)


def build_fully_digital_special_rot90(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "fully_digital_special")
    arr = rotate(render_cn(inv, Style(), rng), 90)  # type: ignore[arg-type]
    return Doc(
        case, inv.doc_type, "rotated_90", {f"{case}.png": png_bytes(arr)}, inv.truth(),
        [{"op": "rotate", "angle_ccw": 90}], _image_info(arr, 90),
    )  # fmt: skip


def build_vat_special_seal_rot180(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_special_paper")
    style = paper_style(rng, inv, seal_at="seller_name", seal_angle=round(rng.uniform(-6, 6), 1))
    arr = paper_tone(render_cn(inv, style, rng), nrng, (247, 246, 240), grain=1.5)  # type: ignore[arg-type]
    arr = rotate(arr, 180)
    degr = [
        {"op": "seal_overlay", "over": "seller_name"},
        {"op": "rotate", "angle_ccw": 180},
        {"op": "jpeg", "quality": 85},
    ]
    return Doc(
        case, inv.doc_type, "rotated_180_seal_over_seller", {f"{case}.jpg": jpeg_bytes(arr, 85)}, inv.truth(),
        degr, _image_info(arr, 180),
    )  # fmt: skip


def build_vat_general_degraded(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    style = paper_style(rng, inv)
    arr = paper_tone(render_cn(inv, style, rng), nrng, (244, 242, 232), grain=2.0)  # type: ignore[arg-type]
    angle = 3.0
    arr = rotate(arr, angle, fill=(244, 242, 232))
    arr = blur(arr, 0.9)
    arr = noise(arr, nrng, 7.0)
    arr = jpeg_roundtrip(arr, 30)
    data = jpeg_bytes(arr, 24)
    degr = [
        {"op": "rotate", "angle_ccw": angle},
        {"op": "blur", "sigma": 0.9},
        {"op": "noise", "sigma": 7.0},
        {"op": "jpeg", "quality": 30},
        {"op": "jpeg", "quality": 24},
    ]
    return Doc(
        case, inv.doc_type, "degraded", {f"{case}.jpg": data}, inv.truth(), degr, _image_info(arr, angle)
    )


def build_vat_e_general_skew(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_e_invoice_general")
    arr = render_cn(inv, Style(seal_angle=round(rng.uniform(-8, 8), 1)), rng)
    angle = round(rng.choice((-1, 1)) * rng.uniform(1.5, 4.5), 1)
    arr = rotate(arr, angle)  # type: ignore[arg-type]
    arr = uneven_light(arr, nrng, 0.3, shadow=False)
    degr = [{"op": "rotate", "angle_ccw": angle}, {"op": "uneven_light", "strength": 0.3, "shadow": False}]
    return Doc(
        case, inv.doc_type, "skewed_uneven_light", {f"{case}.png": png_bytes(arr)}, inv.truth(), degr,
        _image_info(arr, angle),
    )  # fmt: skip


def build_en_invoice(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_en_invoice(rng)
    pdf = render_en(inv, pdf=True)
    arr = render_en(inv)
    assert isinstance(pdf, bytes) and isinstance(arr, np.ndarray)
    gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    return Doc(
        case, "generic_invoice", "png_200dpi_and_pdf_text_layer",
        {f"{case}.png": png_bytes(gray), f"{case}.pdf": pdf}, inv.truth(), [], _image_info(gray),
    )  # fmt: skip


def build_vat_e_general_private_pdf(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_e_invoice_general")
    inv.buyer = private_buyer(rng, "个人")
    data = render_cn(inv, Style(seal_angle=round(rng.uniform(-8, 8), 1)), rng, pdf=True)
    assert isinstance(data, bytes)
    return Doc(
        case, inv.doc_type, "born_digital_pdf_buyer_个人", {f"{case}.pdf": data}, inv.truth(), [], None
    )


def build_fully_digital_general_private(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "fully_digital_general")
    inv.buyer = private_buyer(rng, "person")
    arr = render_cn(inv, Style(), rng)
    assert isinstance(arr, np.ndarray)
    return Doc(
        case, inv.doc_type, "image_200dpi_buyer_a_person", {f"{case}.jpg": jpeg_bytes(arr, 88)}, inv.truth(),
        [{"op": "jpeg", "quality": 88}], _image_info(arr),
    )  # fmt: skip


def build_vat_general_private_scan(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    inv.buyer = private_buyer(rng, "person")
    style = paper_style(rng, inv)
    arr = paper_tone(render_cn(inv, style, rng), nrng, (248, 247, 241), grain=1.0)  # type: ignore[arg-type]
    degr = [{"op": "paper_tone"}, {"op": "jpeg", "quality": 85}]
    return Doc(
        case, inv.doc_type, "scan_buyer_a_person_empty_id_cell", {f"{case}.jpg": jpeg_bytes(arr, 85)},
        inv.truth(), degr, _image_info(arr),
    )  # fmt: skip


def build_corrupt(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    arr = render_cn(inv, paper_style(rng, inv), rng)
    data = jpeg_bytes(cv2.resize(arr, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA), 80)  # type: ignore[arg-type]
    cut = data[: len(data) // 3]
    return Doc(case, inv.doc_type, "truncated_jpeg", {f"{case}.jpg": cut}, {}, [], None)


SAMPLE_CASES: dict[str, Callable[[str, random.Random, np.random.Generator], Doc]] = {
    "vat_special_clean": build_vat_special_clean,
    "vat_general_photo": build_vat_general_photo,
    "vat_e_general": build_vat_e_general_pdf,
    "fully_digital_general": build_fully_digital_general_pdf,
    "fully_digital_special_rot90": build_fully_digital_special_rot90,
    "vat_special_seal_rot180": build_vat_special_seal_rot180,
    "vat_general_degraded": build_vat_general_degraded,
    "vat_e_general_skew": build_vat_e_general_skew,
    "en_invoice": build_en_invoice,
    "vat_e_general_private": build_vat_e_general_private_pdf,
    "fully_digital_general_private": build_fully_digital_general_private,
    "vat_general_private_scan": build_vat_general_private_scan,
    "corrupt_truncated": build_corrupt,
}
NO_TRUTH_CASES = {"corrupt_truncated"}


# Random documents for benchmarks ------------------------------------------------------------


def build_random(case: str, rng: random.Random, nrng: np.random.Generator, allow_pdf: bool) -> Doc:
    doc_type = rng.choices([*CN_DOC_TYPES, "generic_invoice"], weights=(2, 2, 2, 2, 2, 1))[0]
    if doc_type == "generic_invoice":
        en = make_en_invoice(rng)
        truth = en.truth()
        born_digital = True
        if allow_pdf and rng.random() < 0.5:
            pdf = render_en(en, pdf=True)
            assert isinstance(pdf, bytes)
            return Doc(case, doc_type, "born_digital_pdf", {f"{case}.pdf": pdf}, truth, [], None)
        arr = render_en(en)
        assert isinstance(arr, np.ndarray)
    else:
        inv = make_cn_invoice(rng, doc_type)
        truth = inv.truth()
        born_digital = doc_type not in ("vat_special_paper", "vat_general_paper")
        if born_digital:
            style = Style(seal_angle=round(rng.uniform(-8, 8), 1))
            if allow_pdf and rng.random() < 0.5:
                pdf = render_cn(inv, style, rng, pdf=True)
                assert isinstance(pdf, bytes)
                return Doc(case, doc_type, "born_digital_pdf", {f"{case}.pdf": pdf}, truth, [], None)
        else:
            style = paper_style(rng, inv, seal_at=rng.choice(("remark", "remark", "seller_name", "words")))
        rendered = render_cn(inv, style, rng)
        assert isinstance(rendered, np.ndarray)
        arr = rendered if born_digital else paper_tone(rendered, nrng, grain=1.5)
    fill = tuple(int(v) for v in arr[2, 2]) if arr.ndim == 3 else (255, 255, 255)
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    variant = rng.choice(("clean", "rot90", "rot180", "rot270", "skew", "degraded", "photo"))
    degr: list[dict[str, Any]] = []
    rotation = 0.0
    quality: int | None = None
    if variant in ("rot90", "rot180", "rot270"):
        rotation = float(variant[3:])
        arr = rotate(arr, rotation)
        degr.append({"op": "rotate", "angle_ccw": rotation})
    elif variant == "skew":
        rotation = round(rng.choice((-1, 1)) * rng.uniform(1, 5), 1)
        arr = uneven_light(rotate(arr, rotation, fill), nrng, 0.3, shadow=False)  # type: ignore[arg-type]
        degr += [{"op": "rotate", "angle_ccw": rotation}, {"op": "uneven_light", "strength": 0.3}]
    elif variant == "degraded":
        rotation = round(rng.uniform(-3, 3), 1)
        sigma, nsig, quality = (
            round(rng.uniform(0.5, 1.0), 2),
            round(rng.uniform(3, 8), 1),
            rng.randint(25, 45),
        )
        arr = noise(blur(rotate(arr, rotation, fill), sigma), nrng, nsig)  # type: ignore[arg-type]
        degr += [
            {"op": "rotate", "angle_ccw": rotation},
            {"op": "blur", "sigma": sigma},
            {"op": "noise", "sigma": nsig},
        ]
    elif variant == "photo":
        arr = cv2.resize(arr, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_CUBIC)
        h, w = arr.shape[:2]
        bg = textured_background(nrng, int(w * 1.18), int(w * 1.18 * 0.75) if w > h else int(h * 1.18))
        arr, corners = perspective_onto(arr, bg, nrng, fill_ratio=0.86, jitter=0.03)
        arr = blur(uneven_light(arr, nrng, 0.35, shadow=rng.random() < 0.5), 0.6)
        quality = 82
        degr += [
            {"op": "perspective", "corners": corners},
            {"op": "uneven_light"},
            {"op": "blur", "sigma": 0.6},
        ]
    if quality is None and (not born_digital or (variant != "clean" and rng.random() < 0.5)):
        quality = rng.randint(70, 92)  # scans and photos of paper are JPEGs (a grainy PNG is huge)
    if quality is not None:
        degr.append({"op": "jpeg", "quality": quality})
        files = {f"{case}.jpg": jpeg_bytes(arr, quality)}
    else:
        files = {f"{case}.png": png_bytes(arr)}
    return Doc(case, doc_type, variant, files, truth, degr, _image_info(arr, rotation))
