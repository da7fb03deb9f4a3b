"""The accuracy benchmark: its scoring on made-up runs, and one small real run over the eval set."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_accuracy", REPO / "scripts" / "bench_accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_accuracy"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def run_with(fields: dict[str, tuple[str | None, str]], items: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "result": {
            "doc_type": "vat_e_invoice_general",
            "fields": {name: {"value": value, "status": status} for name, (value, status) in fields.items()},
            "items": items,
        },
        "error": None,
    }


def test_scoring_counts_silent_errors_and_items_that_do_not_add_up() -> None:
    bench = load_bench()
    expected = {"invoice_number": "41539530", "amount_excl_tax": "582.72", "tax_amount": "17.48"}
    cases = [
        bench.Case(f"cn_{n}", "cn", Path("x.pdf"), "digital_pdf", expected, tuple(expected)) for n in (1, 2)
    ]
    runs = {
        "cn_1": run_with(
            {
                "invoice_number": ("41539530", "ok"),
                "amount_excl_tax": ("582.72", "ok"),
                "tax_amount": ("17.48", "ok"),
            },
            [{"amount": "500.00", "tax_amount": "15.00"}, {"amount": "82.72", "tax_amount": "2.48"}],
        ),
        "cn_2": run_with(
            {
                "invoice_number": ("41539536", "ok"),  # wrong and auto-accepted: a silent error
                "amount_excl_tax": ("582.72", "ok"),
                "tax_amount": ("17.43", "needs_review"),  # wrong but sent to review
            },
            [{"amount": "500.00", "tax_amount": "15.00"}],  # a line missed
        ),
    }
    report = bench.score(cases, runs)
    keys = report["key_fields"]["cn/digital_pdf"]
    assert keys["fields"] == 6
    assert keys["accuracy"] == pytest.approx(4 / 6)
    assert keys["auto_accepted"] == pytest.approx(5 / 6)
    assert keys["silent_error_rate"] == pytest.approx(1 / 5)
    items = report["items"]["cn/all"]
    assert (items["invoices"], items["with_items"], items["items_add_up"]) == (2, 2, 1)
    assert items["not_adding_up"] == ["cn_2"]


@pytest.mark.slow
def test_a_small_real_run_writes_its_report(eval_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "scripts" / "bench_accuracy.py"), "--eval-dir", str(eval_dir)]
    command += ["--sets", "cn,invoice2data", "--limit", "2", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "exact / auto-accepted by modality" in done.stdout
    report = json.loads((tmp_path / "accuracy-onnx.json").read_text(encoding="utf-8"))
    assert report["run"]["documents"] == 6 and not report["run"]["errors"]  # 2 each: cn, its negatives, i2d
    assert report["key_fields"]["cn/all"]["accuracy"] == 1.0
    assert report["key_fields"]["cn/all"]["silent_error_rate"] == 0.0
    assert report["items"]["cn/all"]["items_add_up"] == 2
