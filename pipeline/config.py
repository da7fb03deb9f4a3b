"""One validated settings object, built at the edge (CLI or caller) and passed down.

It is pickle-able so worker processes receive it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EngineName = Literal["onnx", "paddle"]
Orientation = Literal["detect", "retry"]
OcrRuntime = Literal["auto", "openvino", "onnxruntime"]
RecWidth = Literal["flat", "always", "never"]

DEFAULT_STORE = "./invoice-store"


def default_store() -> str:
    return os.environ.get("INVOICES_STORE", DEFAULT_STORE)


def default_model_dir() -> Path:
    return Path(os.environ.get("INVOICES_MODEL_DIR", Path.home() / ".cache" / "invoices" / "models"))


# ---- store and index ------------------------------------------------------------------

S3AddressingStyle = Literal["auto", "path", "virtual"]
S3Encryption = Literal["AES256", "aws:kms"]


def default_index() -> Path | str | None:
    """``$INVOICES_INDEX``: an SQLite file or a ``postgresql://`` URL; None means: beside a
    directory store, or in the cache for S3."""
    return _index_location(os.environ.get("INVOICES_INDEX", ""))


def _index_location(value: str | Path | None) -> Path | str | None:
    if value is None or isinstance(value, Path):
        return value.expanduser() if isinstance(value, Path) else None
    value = value.strip()
    if not value:
        return None
    if value.lower().startswith(("postgresql://", "postgres://")):
        return value
    return Path(value).expanduser()


def default_index_dir() -> Path:
    """Where the local index of an S3 store lives unless ``--index`` / ``$INVOICES_INDEX`` says."""
    return Path.home() / ".cache" / "invoices" / "index"


def _env_or_none(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class S3Settings(BaseModel):
    """What the AWS variables and config files do not cover; each has an ``INVOICES_S3_*`` variable.

    Endpoint, region and credentials come from the standard AWS chain (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    ``AWS_PROFILE``, ``~/.aws/config`` and ``~/.aws/credentials``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None: the AWS config file's ``s3.addressing_style``, else path-style for a custom endpoint.
    addressing_style: S3AddressingStyle | None = Field(
        default_factory=lambda: _env_or_none("INVOICES_S3_ADDRESSING_STYLE")
    )
    # Server-side encryption of every object written: AES256 (SSE-S3) or aws:kms (SSE-KMS).
    encryption: S3Encryption | None = Field(default_factory=lambda: _env_or_none("INVOICES_S3_SSE"))
    kms_key_id: str | None = Field(default_factory=lambda: _env_or_none("INVOICES_S3_SSE_KMS_KEY_ID"))
    # Attempts per request, first try included (botocore "standard" retries: exponential backoff
    # with jitter on connection errors, 5xx, throttling).
    max_attempts: int = Field(
        default_factory=lambda: int(os.environ.get("INVOICES_S3_MAX_ATTEMPTS", "5")), ge=1, le=20
    )
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_pool_connections: int = Field(16, ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineName = "onnx"
    store: str = Field(default_factory=default_store)
    # An SQLite file (Path) or a PostgreSQL URL (str, postgresql://USER@HOST:PORT/DB).
    index: Path | str | None = Field(default_factory=default_index)
    s3: S3Settings = Field(default_factory=S3Settings)
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
    # ZIP bundles and OFD packages (issue 14): members, unpacked bytes and compression ratio allowed.
    max_bundle_members: int = Field(500, gt=0)
    max_unpacked_bytes: int = Field(300 * 1024 * 1024, gt=0)
    max_compression_ratio: float = Field(200.0, gt=1.0)

    @field_validator("index", mode="before")
    @classmethod
    def _index_path_or_url(cls, value: str | Path | None) -> Path | str | None:
        return _index_location(value)

    # ---- OCR engine speed levers (each keeps field accuracy on ../shared/eval; scripts/bench.py)
    # Detection on a copy of the page with this long side (its short side never below 736 px);
    # lines are still read from the full-resolution page. 0 (default): the engine's own size
    # (RapidOCR: up to 2000 px). 1280 halves detection time on 200-dpi pages but lost fields
    # on harsh phone photos and receipts (docs/OCR_SPEED.md).
    ocr_det_max_side: int = Field(0, ge=0)
    # Read each line at its own width instead of batches padded to the widest line (>= 320 px);
    # lines read with less than 0.95 confidence are read again padded to 320 px.
    # "flat" (default): on scans, renders and screenshots (recognition -25 to -35 % CPU on
    # 200-dpi pages, every key field of make bench-accuracy unchanged), not on pages cut out
    # of a photo, where harsh photos lost 0.5 pt; "always" (true); "never" (false)
    # (docs/OCR_SPEED.md).
    ocr_rec_own_width: RecWidth = "flat"
    # "detect": decide a page's quadrant turn once, from the detection boxes and the angle
    # classifier on a few lines; "retry": re-read the whole page per guess (the old way).
    ocr_orientation: Orientation = "detect"
    # What runs the default engine's text detector: OpenVINO (f32: the same boxes as ONNX
    # Runtime, 2.5-3.5x faster on an Intel Xeon with AVX-512, no faster on an AVX2-only AMD
    # EPYC, where compiling per page shape made it slower), ONNX Runtime (RapidOCR's own
    # session), or "auto" (default): OpenVINO where the CPU has AVX-512.
    ocr_runtime: OcrRuntime = "auto"

    @field_validator("ocr_rec_own_width", mode="before")
    @classmethod
    def _own_width_from_bool(cls, value: object) -> object:
        # It was a yes/no setting: true and false (also as text, e.g. bench_accuracy --ocr) still work.
        aliases = {True: "always", False: "never", "true": "always", "false": "never"}
        return aliases.get(value.lower() if isinstance(value, str) else value, value)  # type: ignore[call-overload]

    @field_validator("store")
    @classmethod
    def _store_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("store must be a directory path or an s3:// URL")
        return value
