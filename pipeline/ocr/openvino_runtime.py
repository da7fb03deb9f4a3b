"""PP-OCR's text detector run by OpenVINO's CPU plugin instead of ONNX Runtime.

OpenVINO reads the ONNX file inside the rapidocr wheel directly (nothing is downloaded or
converted on disk). In 32-bit float its detection map equals ONNX Runtime's to about 1e-4,
and it runs PP-OCRv6's detector 2.5-3.5x faster on the machines measured
(docs/OCR_SPEED.md). The precision is pinned to f32: OpenVINO would otherwise choose bf16 on
CPUs that have it, and a page would read differently from one machine to the next.

The detector is compiled for each input shape it meets. With a dynamic shape OpenVINO plans no
reuse of its intermediate buffers and a 2000-px photo took 1 GB; compiled for its shape it
takes half of that. Compiling takes 0.15-0.3 s CPU, so the compiled models of the last two
shapes are kept (pages from one scanner, or one PDF producer, share a size); their buffers
are released after each page. Inputs are never padded to a common shape: the network pools
over the whole page, so a padded page reads differently.

Recognition stays on ONNX Runtime. OpenVINO read the same text, 3-7 % faster in RapidOCR's
padded batches, but lines at their own width (a new shape almost every line) were 7 % slower
and its cache of per-shape kernels took 200-300 MB more per worker; capping that cache made it
slower still.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import MissingDependency, OcrEngineError

# Compiled detectors kept, one per page shape: each holds ~50 MB once its buffers are released.
DETECTOR_SHAPES_KEPT = 2


def cpu_has_avx512() -> bool:
    """Whether this CPU runs AVX-512 (numpy's own dispatch probe; False when it cannot tell)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy moved its private probe: assume the common case
        return False
    return bool(__cpu_features__.get("AVX512F"))


def detector_runtime(requested: str) -> str:
    """The runtime the text detector runs on: ``requested``, or for "auto" the faster one here.

    OpenVINO ran PP-OCRv6's detector 2.5-3.5x faster than ONNX Runtime on an Intel Xeon with
    AVX-512, but exactly as fast on an AMD EPYC with AVX2 only (1.49 vs 1.48 CPU s a 200-dpi
    page), where compiling for each new page shape (0.4 s CPU) made it slower overall:
    a batch of phone photos, each cut out to its own size, compiled on every page.
    """
    if requested != "auto":
        return requested
    return "openvino" if cpu_has_avx512() else "onnxruntime"


class OpenVinoDetector:
    """A drop-in for RapidOCR's detector session: ``(1, 3, H, W)`` in, its ``(1, 1, H, W)`` map out."""

    def __init__(self, model_path: Path, threads: int) -> None:
        try:
            import openvino
        except ImportError as exc:
            raise MissingDependency(
                "openvino is not installed: run `make install`, or set ocr_runtime to onnxruntime"
            ) from exc
        self._core = openvino.Core()
        self._config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            # Pool workers are one process per core: pinning would put them all on the first.
            "ENABLE_CPU_PINNING": False,
        }
        self.model_path = model_path
        try:
            self._model = self._core.read_model(str(model_path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise OcrEngineError(f"OpenVINO could not read {model_path.name}: {exc}") from exc
        # shape -> (compiled model, its infer request), least recently used first
        self._kept: OrderedDict[tuple[int, ...], tuple[Any, Any]] = OrderedDict()
        self.compiles = 0

    def _compiled_for(self, shape: tuple[int, ...]) -> tuple[Any, Any]:
        if shape in self._kept:
            self._kept.move_to_end(shape)
            return self._kept[shape]
        while len(self._kept) >= DETECTOR_SHAPES_KEPT:
            self._kept.popitem(last=False)
        model = self._model.clone()
        model.reshape(list(shape))
        try:
            compiled = self._core.compile_model(model, "CPU", self._config)
        except Exception as exc:
            raise OcrEngineError(f"OpenVINO could not compile {self.model_path.name}: {exc}") from exc
        self._kept[shape] = (compiled, compiled.create_infer_request())
        self.compiles += 1
        return self._kept[shape]

    def __call__(self, tensor: np.ndarray) -> np.ndarray:
        compiled, request = self._compiled_for(tuple(tensor.shape))
        request.infer([np.ascontiguousarray(tensor, dtype=np.float32)])
        # The output tensor is reused by the next call: hand out a copy.
        output = np.array(request.get_output_tensor().data, copy=True)
        # Hand the intermediate buffers (about 450 MB on a 200-dpi page) back until the next page:
        # held, they sat under everything the rest of the page allocates.
        compiled.release_memory()
        return output


def model_path_of(ort_session: Any) -> Path:
    """The ONNX file RapidOCR's ONNX Runtime session was loaded from."""
    path = getattr(getattr(ort_session, "session", None), "_model_path", None)
    if not path:
        raise OcrEngineError("could not tell which ONNX file RapidOCR loaded")
    return Path(path)
