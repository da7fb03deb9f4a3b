"""One validated settings object, built at the edge (CLI or caller) and passed down.

It is pickle-able so worker processes receive it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EngineName = Literal["onnx", "paddle"]

DEFAULT_STORE = "./invoice-store"


def default_store() -> str:
    return os.environ.get("INVOICES_STORE", DEFAULT_STORE)


def default_model_dir() -> Path:
    return Path(os.environ.get("INVOICES_MODEL_DIR", Path.home() / ".cache" / "invoices" / "models"))


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineName = "onnx"
    store: str = Field(default_factory=default_store)
    model_dir: Path = Field(default_factory=default_model_dir)
    render_dpi: int = Field(200, ge=72, le=600)
    use_text_layer: bool = True
    max_file_bytes: int = Field(100 * 1024 * 1024, gt=0)
    max_pages: int = Field(50, gt=0)
    max_image_pixels: int = Field(80_000_000, gt=0)
    min_image_side: int = Field(64, gt=0)
    ocr_max_side: int = Field(2400, ge=640)
    review_below: float = Field(0.90, ge=0.0, le=1.0)
    threads_per_worker: int = Field(1, ge=1)

    @field_validator("store")
    @classmethod
    def _store_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("store must be a directory path or an s3:// URL")
        return value
