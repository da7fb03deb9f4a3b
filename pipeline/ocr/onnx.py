"""PP-OCR on ONNX Runtime through RapidOCR 3 (models ship inside the pinned wheel)."""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from pipeline.errors import MissingDependency, OcrEngineError
from pipeline.model import OcrPage
from pipeline.ocr.base import OcrEngine, lines_from_arrays

log = logging.getLogger(__name__)

# rapidocr 3.10.0 bundles exactly these; any other choice would download at first use.
BUNDLED_MODELS = "PP-OCRv6_det_small+PP-OCRv6_rec_small"


class OnnxEngine(OcrEngine):
    name = "onnx"

    def __init__(self, threads: int = 1) -> None:
        try:
            from rapidocr import RapidOCR
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
            self._ocr = RapidOCR(params=params)
        except Exception as exc:  # RapidOCR raises bare exceptions on missing or bad models
            raise OcrEngineError(f"RapidOCR could not load its bundled models: {exc}") from exc
        # RapidOCR installs its own stderr handler; route its records through ours (--log-json).
        rapid_log = logging.getLogger("RapidOCR")
        rapid_log.handlers.clear()
        rapid_log.propagate = True
        rapid_log.setLevel(logging.WARNING)

    def version(self) -> str:
        try:
            return f"rapidocr {version('rapidocr')} / onnxruntime {version('onnxruntime')} / {BUNDLED_MODELS}"
        except PackageNotFoundError:
            return f"rapidocr / {BUNDLED_MODELS}"

    def recognize(self, image: np.ndarray, page: int = 0) -> OcrPage:
        started = time.perf_counter()
        try:
            output = self._ocr(image, use_cls=False)
        except Exception as exc:
            raise OcrEngineError(f"RapidOCR failed on page {page + 1}: {exc}") from exc
        lines = lines_from_arrays(output.boxes, output.txts, output.scores, page)
        return OcrPage(lines=lines, engine=self.name, seconds=time.perf_counter() - started)
