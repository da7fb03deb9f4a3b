"""``isolated_aws``: no AWS settings of the machine leak into a test, no credential lookup leaves it.

An autouse fixture kept out of conftest.py on purpose: it applies to every test of the modules that
import it (``from tests.aws_env import isolated_aws  # noqa: F401``), and only to those.
"""

from __future__ import annotations

from pathlib import Path

import pytest

AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_SESSION_TOKEN",
    "INVOICES_STORE",
    "INVOICES_INDEX",
    "INVOICES_S3_ADDRESSING_STYLE",
    "INVOICES_S3_SSE",
    "INVOICES_S3_SSE_KMS_KEY_ID",
)


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS settings of the machine leak in; no credential lookup leaves the machine."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("INVOICES_S3_MAX_ATTEMPTS", "2")
