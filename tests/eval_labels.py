"""The labels of the Chinese eval set, and the fixed "today" the date checks are run against."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from tests.conftest import EVAL_DIR

EVAL_CN = EVAL_DIR / "cn"
TODAY = date(2026, 11, 27)


def eval_labels() -> list[dict[str, Any]]:
    if not EVAL_CN.is_dir():
        pytest.skip("eval set not available")
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EVAL_CN.glob("cn_*.json"))]
