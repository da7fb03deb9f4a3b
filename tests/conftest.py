"""Shared test fixtures and paths.

The real evaluation invoices live beside the checkout in ``../shared/eval`` (read-only);
``INVOICES_EVAL_DIR`` points elsewhere when needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(os.environ.get("INVOICES_EVAL_DIR", REPO.parent / "shared" / "eval"))
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not EVAL_DIR.is_dir():
        pytest.fail(f"evaluation data not found at {EVAL_DIR}: set INVOICES_EVAL_DIR")
    return EVAL_DIR
