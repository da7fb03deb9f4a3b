"""PP-OCR with the models inside the pinned RapidOCR wheel (rapidocr==3.10.0), run by OpenVINO
(default) or ONNX Runtime.

RapidOCR's own pipeline (``RapidOCR.__call__``) detects at up to 2000 px and pads every
recognition batch to at least 320 px, so a short label such as ``名称：`` costs as much as a
long line. This engine loads RapidOCR's detector, recogniser and angle classifier and runs
the steps itself:

- detection on a copy of the page scaled to ``det_max_side`` (never with a short side below
  RapidOCR's own 736 px minimum); the boxes are mapped back and every line is cut from the
  full-resolution page;
- recognition of each line at its own width (``rec_own_width``: "flat" pages only by default;
  a page cut out of a photo is read in RapidOCR's padded batches, the shape the model was
  trained on, because blurred short lines read at their own width were sometimes misread
  with full confidence);
- the page's quadrant turn decided once, from the detection boxes' shape and the angle
  classifier on a few lines, instead of re-reading the whole page per guess;
- detection run by OpenVINO's CPU plugin in f32 on the same ONNX file (``runtime="openvino"``,
  ``pipeline.ocr.openvino_runtime``): the same boxes, 2.5-3.5x faster on CPUs with AVX-512,
  where ``runtime="auto"`` (the default) chooses it; ONNX Runtime elsewhere.

``_RapidParts`` is the one place that reaches into RapidOCR's internals.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import cv2
import numpy as np

from pipeline.errors import MissingDependency, OcrEngineError
from pipeline.model import OcrPage
from pipeline.ocr.base import OcrEngine, Timings, add_time, lines_from_arrays
from pipeline.ocr.openvino_runtime import OpenVinoDetector, detector_runtime, model_path_of
from pipeline.ocr.orientation import looks_upright, text_score
from pipeline.preprocess import rotate_quadrant

log = logging.getLogger(__name__)

# rapidocr 3.10.0 bundles exactly these; any other choice would download at first use.
BUNDLED_MODELS = "PP-OCRv6_det_small+PP-OCRv6_rec_small"
BUNDLED_CLS = "ch_ppocr_mobile_v2.0_cls"

# RapidOCR's defaults, kept where this engine does the step itself.
RAPID_MAX_SIDE = 2000  # Global.max_side_len: the page is scaled down to this before anything
DET_MIN_SHORT_SIDE = 736  # Det.limit_side_len with limit_type "min": small pages are scaled up
TEXT_SCORE = 0.5  # Global.text_score: lines read with less confidence are dropped
REC_HEIGHT = 48  # Rec.rec_img_shape
REC_WIDTH_STEP = 8  # the recogniser downsamples the width by 8: pad to a multiple of it
# Short crops (``***``, one digit) are padded to this width, twice the line height: read bare,
# symbols merge (``* *``). 96 px read every key field and item table of the flat sets as
# 160 px did, for 3 % less recognition CPU; RapidOCR's floor is 320 px.
REC_MIN_WIDTH = 96
RAPID_MIN_WIDTH = 320  # RapidOCR's floor (Rec.rec_img_shape), the width the model was trained at
# A line read at its own width with less confidence than this is read again padded to
# RapidOCR's 320-px floor, and that reading is kept: what own width changes is mostly lines
# it is unsure of (receipt amounts such as ``327 00`` for ``32700``). Alone, not in RapidOCR's
# batches of 6 padded to the widest: a third less CPU, and the same key fields. At 0.95 about
# 4 lines of a 200-dpi invoice page are read again (9 at 0.98), for the same fields on every
# flat set of make bench-accuracy.
OWN_WIDTH_SURE = 0.95

# Orientation: lines at least this elongated tell which way the text runs.
ELONGATED = 2.0
ORIENTATION_SAMPLE = 16  # lines shown to the angle classifier
CLS_THRESH = 0.9  # Cls.cls_thresh: a "180" vote needs this confidence


@dataclass(frozen=True)
class OnnxOptions:
    threads: int = 1
    det_max_side: int = 0  # 0: RapidOCR's own detection size (up to 2000 px)
    # "flat": own width except on photographed pages; "always"; "never": RapidOCR's padded batches (>= 320 px)
    rec_own_width: str = "flat"
    orientation: str = "detect"  # "detect": decide once from the boxes; "retry": re-read per guess
    # The detector's: "openvino", "onnxruntime" (RapidOCR's own session), or "auto": OpenVINO
    # where the CPU has AVX-512, else ONNX Runtime (``detector_runtime``).
    runtime: str = "auto"


class _RapidParts:
    """RapidOCR 3.10's detector, recogniser and classifier objects, loaded once.

    Everything this module needs from RapidOCR beyond its public ``RapidOCR(params=...)``
    constructor goes through here, so an upgrade has one place to check.
    """

    def __init__(self, threads: int, runtime: str = "onnxruntime") -> None:
        try:
            from rapidocr import RapidOCR
            from rapidocr.ch_ppocr_rec import TextRecInput
            from rapidocr.utils.process_img import get_rotate_crop_image
        except ImportError as exc:
            raise MissingDependency("rapidocr is not installed: run `make install`") from exc
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        params = {
            "Global.use_cls": False,
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        try:
            self.ocr = RapidOCR(params=params)
            self.det = self.ocr._load_det_model()
            self.rec = self.ocr._load_rec_model()
            self.cls = self.ocr._load_cls_model()
        except Exception as exc:  # RapidOCR raises bare exceptions on missing or bad models
            raise OcrEngineError(f"RapidOCR could not load its bundled models: {exc}") from exc
        if runtime == "openvino":
            # The detector's ONNX Runtime session swapped for OpenVINO on the same file.
            self.det.session = OpenVinoDetector(model_path_of(self.det.session), threads)
        self.rec_input = TextRecInput
        self.crop = get_rotate_crop_image
        # RapidOCR installs its own stderr handler; route its records through ours (--log-json).
        rapid_log = logging.getLogger("RapidOCR")
        rapid_log.handlers.clear()
        rapid_log.propagate = True
        rapid_log.setLevel(logging.WARNING)

    def detect(self, det_image: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """Boxes (N x 4 x 2, reading order) in ``det_image`` pixels; its sides are multiples of 32."""
        tensor = ((det_image.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        preds = self.det.session(np.ascontiguousarray(tensor))
        boxes, scores = self.det.postprocess_op(preds, det_image.shape[:2])
        if len(boxes) == 0:
            return np.zeros((0, 4, 2), np.float32), []
        order = _reading_order(np.asarray(boxes, dtype=np.float32))
        return np.asarray(boxes, dtype=np.float32)[order], [float(scores[i]) for i in order]

    def recognise_padded(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """RapidOCR's own batches: each padded to the widest line and to at least 320 px."""
        output = self.rec(self.rec_input(img=crops, return_word_box=False))
        return list(zip(output.txts, output.scores, strict=True))

    def recognise_one(self, crop: np.ndarray, min_width: int = REC_MIN_WIDTH) -> tuple[str, float]:
        """One line at its own width (height 48, width rounded up to a multiple of 8, at least ``min_width``)."""
        height, width = crop.shape[:2]
        ratio = width / float(max(height, 1))
        resized_w = own_width(crop)
        padded_w = max(min_width, -(-resized_w // REC_WIDTH_STEP) * REC_WIDTH_STEP)
        resized = cv2.resize(crop, (resized_w, REC_HEIGHT)).astype(np.float32)
        tensor = np.zeros((1, 3, REC_HEIGHT, padded_w), np.float32)
        tensor[0, :, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
        preds = self.rec.session(tensor)
        results, _ = self.rec.postprocess_op(
            preds, False, wh_ratio_list=[ratio], max_wh_ratio=padded_w / REC_HEIGHT
        )
        text, score = results[0]
        return str(text), float(score)

    def classify(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """The angle classifier's ("0" | "180", score) per line crop."""
        output = self.cls(crops)
        return [(str(label), float(score)) for label, score in output.cls_res]


def own_width(crop: np.ndarray) -> int:
    """The crop's width once scaled to the recogniser's 48-px height."""
    height, width = crop.shape[:2]
    return max(1, math.ceil(REC_HEIGHT * width / float(max(height, 1))))


def _reading_order(boxes: np.ndarray) -> np.ndarray:
    """RapidOCR's box order (``TextDetector.sorted_boxes``): rows top to bottom, then left to right."""
    y_order = np.argsort(boxes[:, 0, 1], kind="stable")
    y_sorted = boxes[y_order, 0, 1]
    line_ids = np.concatenate([[0], np.cumsum(np.diff(y_sorted) >= 10)])
    return y_order[np.lexsort((boxes[y_order, 0, 0], line_ids))]


def detection_scale(height: int, width: int, det_max_side: int) -> float:
    """How much to scale the page for detection.

    RapidOCR scales the page down to 2000 px and then up until its short side is 736 px;
    with ``det_max_side`` the long side is capped there too, but the short side is never
    taken below 736 px (long receipts keep their small print).
    """
    long_side, short_side = max(height, width), max(1, min(height, width))
    rapid = min(1.0, RAPID_MAX_SIDE / long_side)
    rapid *= max(1.0, DET_MIN_SHORT_SIDE / (short_side * rapid))
    if not det_max_side or long_side <= det_max_side:
        return rapid
    return min(rapid, max(det_max_side / long_side, DET_MIN_SHORT_SIDE / short_side))


def _extent(box: np.ndarray) -> tuple[float, float]:
    """Width and height of a box's upright bounding rectangle."""
    return float(box[:, 0].max() - box[:, 0].min()), float(box[:, 1].max() - box[:, 1].min())


class OnnxEngine(OcrEngine):
    name = "onnx"

    def __init__(self, threads: int = 1, options: OnnxOptions | None = None) -> None:
        self.options = options or OnnxOptions(threads=threads)
        self.runtime = detector_runtime(self.options.runtime)
        self._parts = _RapidParts(self.options.threads, self.runtime)

    def version(self) -> str:
        try:
            openvino = f" + openvino {version('openvino')} f32 (det)" if self.runtime == "openvino" else ""
            base = f"rapidocr {version('rapidocr')} / onnxruntime {version('onnxruntime')}{openvino} / {BUNDLED_MODELS}"
        except PackageNotFoundError:
            base = f"rapidocr / {BUNDLED_MODELS}"
        opts = self.options
        det = f"det {opts.det_max_side} px" if opts.det_max_side else "det 2000 px"
        rec = {"flat": "rec own width on flat pages", "always": "rec own width"}.get(
            opts.rec_own_width, "rec padded"
        )
        return f"{base} ({det}, {rec})"

    # ---- the steps ------------------------------------------------------------------------

    def _detect(self, image: np.ndarray) -> np.ndarray:
        """Boxes in ``image`` pixels, in reading order."""
        height, width = image.shape[:2]
        scale = detection_scale(height, width, self.options.det_max_side)
        det_w, det_h = max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32)
        shrink = det_w < width
        det_image = cv2.resize(
            image, (det_w, det_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        boxes, _ = self._parts.detect(det_image)
        if len(boxes):
            boxes[:, :, 0] = np.clip(boxes[:, :, 0] * (width / det_w), 0, width)
            boxes[:, :, 1] = np.clip(boxes[:, :, 1] * (height / det_h), 0, height)
        return boxes

    def _crops(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        return [self._parts.crop(image, box.copy()) for box in boxes]

    def _own_width(self, photographed: bool) -> bool:
        return self.options.rec_own_width == "always" or (
            self.options.rec_own_width == "flat" and not photographed
        )

    def _read(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        page: int,
        timings: Timings | None,
        photographed: bool = False,
    ) -> list:
        started = time.process_time()
        crops = self._crops(image, boxes)
        if not crops:
            results: list[tuple[str, float]] = []
        elif self._own_width(photographed):
            results = [self._parts.recognise_one(crop) for crop in crops]
            for i, (_, score) in enumerate(results):
                # A line already 320 px or wider would be read from the very same tensor again.
                if score < OWN_WIDTH_SURE and own_width(crops[i]) < RAPID_MIN_WIDTH:
                    results[i] = self._parts.recognise_one(crops[i], RAPID_MIN_WIDTH)
        else:
            results = self._parts.recognise_padded(crops)
        add_time(timings, "recognition", time.process_time() - started)
        kept = [i for i, (text, score) in enumerate(results) if text.strip() and score >= TEXT_SCORE]
        return lines_from_arrays(
            [boxes[i] for i in kept], [results[i][0] for i in kept], [results[i][1] for i in kept], page
        )

    def _timed_detect(self, image: np.ndarray, timings: Timings | None) -> np.ndarray:
        started = time.process_time()
        try:
            return self._detect(image)
        finally:
            add_time(timings, "detection", time.process_time() - started)

    def recognize(
        self, image: np.ndarray, page: int = 0, timings: Timings | None = None, *, photographed: bool = False
    ) -> OcrPage:
        started = time.process_time()
        try:
            boxes = self._timed_detect(image, timings)
            lines = self._read(image, boxes, page, timings, photographed)
        except Exception as exc:
            raise OcrEngineError(f"RapidOCR failed on page {page + 1}: {exc}") from exc
        return OcrPage(lines=lines, engine=self.name, seconds=time.process_time() - started)

    # ---- orientation ----------------------------------------------------------------------

    def guess_turn(self, image: np.ndarray, boxes: np.ndarray) -> tuple[int, bool]:
        """The counter-clockwise quadrant turn that makes the page upright, and whether it is sure.

        Lines run along the page: when most elongated boxes are taller than wide, the page
        lies on its side (90 or 270); the angle classifier on a few of them tells which end
        is up (it answers 0 or 180 for a line laid horizontal).
        """
        shapes = [_extent(box) for box in boxes]
        elongated = [
            (i, w, h) for i, (w, h) in enumerate(shapes) if max(w, h) >= ELONGATED * max(min(w, h), 1.0)
        ]
        if len(elongated) < 3:
            return 0, False
        tall = [item for item in elongated if item[2] > item[1]]
        sideways = len(tall) > len(elongated) / 2
        chosen = tall if sideways else [item for item in elongated if item[1] >= item[2]]
        # The biggest lines read best; very long ones get squeezed into the classifier's 192 px.
        chosen.sort(key=lambda item: -min(item[1], item[2]))
        sample = [boxes[i] for i, _, _ in chosen[:ORIENTATION_SAMPLE]]
        # The crop helper lays a tall line horizontal by turning it 90 degrees counter-clockwise.
        votes = self._parts.classify(self._crops(image, np.asarray(sample)))
        flipped = sum(1 for label, score in votes if "180" in label and score > CLS_THRESH)
        upright = len(votes) - flipped
        sure = max(flipped, upright) >= 0.75 * len(votes)
        if sideways:
            return (270 if flipped > upright else 90), sure
        return (180 if flipped > upright else 0), sure

    def read_upright(
        self, image: np.ndarray, page: int = 0, timings: Timings | None = None, *, photographed: bool = False
    ) -> tuple[np.ndarray, OcrPage, int]:
        if self.options.orientation != "detect":
            return super().read_upright(image, page, timings, photographed=photographed)
        started = time.process_time()
        try:
            boxes = self._timed_detect(image, timings)
            turn_started = time.process_time()
            angle, sure = self.guess_turn(image, boxes)
            add_time(timings, "orientation", time.process_time() - turn_started)
            turned = image
            if angle:
                turned = rotate_quadrant(image, angle)
                boxes = self._timed_detect(turned, timings)
            lines = self._read(turned, boxes, page, timings, photographed)
            if not sure and not looks_upright(lines):
                # The classifier was split: read the opposite end up as well and keep the better.
                other = (angle + 180) % 360
                other_image = rotate_quadrant(image, other)
                other_boxes = self._timed_detect(other_image, timings)
                other_lines = self._read(other_image, other_boxes, page, timings, photographed)
                if text_score(other_lines) > text_score(lines):
                    turned, lines, angle = other_image, other_lines, other
        except Exception as exc:
            raise OcrEngineError(f"RapidOCR failed on page {page + 1}: {exc}") from exc
        return turned, OcrPage(lines=lines, engine=self.name, seconds=time.process_time() - started), angle


def options_from(settings: Any) -> OnnxOptions:
    return OnnxOptions(
        threads=settings.threads_per_worker,
        det_max_side=settings.ocr_det_max_side,
        rec_own_width=settings.ocr_rec_own_width,
        orientation=settings.ocr_orientation,
        runtime=settings.ocr_runtime,
    )
