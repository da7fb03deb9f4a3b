"""OCR engines behind one interface; ``get_engine`` builds (and caches) one per process."""

from __future__ import annotations

import logging
from functools import lru_cache

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.ocr.base import OcrEngine

log = logging.getLogger(__name__)

ENGINE_NAMES = ("onnx", "paddle")


def create_engine(settings: Settings) -> OcrEngine:
    if settings.engine == "onnx":
        from pipeline.ocr.onnx import OnnxEngine, options_from

        return OnnxEngine(options=options_from(settings))
    if settings.engine == "paddle":
        from pipeline.ocr.paddle import PaddleEngine

        return PaddleEngine(model_dir=settings.model_dir, threads=settings.threads_per_worker)
    raise ConfigError(f"unknown OCR engine {settings.engine!r}; choose one of {', '.join(ENGINE_NAMES)}")


@lru_cache(maxsize=4)
def _cached_engine(settings: Settings) -> OcrEngine:
    engine = create_engine(settings)
    engine.warm_up()
    log.debug("OCR engine ready: %s", engine.version())
    return engine


def get_engine(settings: Settings) -> OcrEngine:
    """One warmed-up engine per process and engine settings (models load once per worker)."""
    key = settings.model_copy(update={"store": "", "review_below": 0.0})
    return _cached_engine(key)


__all__ = ["ENGINE_NAMES", "OcrEngine", "create_engine", "get_engine"]
