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


def test_invented_values_swapped_ids_and_the_review_rate_are_counted() -> None:
    bench = load_bench()
    expected = {
        "invoice_code": None,  # not printed (a 全电 invoice)
        "buyer_tax_id": None,  # a private buyer
        "seller_tax_id": "92341882MAK1CDJB6X",
        "total_amount": "268.00",
    }
    cases = [bench.Case("cn_1", "cn", Path("x.pdf"), "digital_pdf", expected, tuple(expected))]
    runs = {
        "cn_1": run_with(
            {
                "invoice_code": (None, "missing"),  # correctly absent: neither wrong nor review
                "buyer_tax_id": ("92341882MAK1CDJB6X", "ok"),  # the seller's ID, invented and accepted
                "seller_tax_id": (None, "missing"),  # printed but not read: review
                "total_amount": ("268.00", "needs_review"),
            },
            [],
        )
    }
    report = bench.score(cases, runs)
    keys = report["key_fields"]["cn/digital_pdf"]
    assert keys["accuracy"] == pytest.approx(2 / 4)
    assert (
        keys["invented"] == 1 and keys["swapped"] == 1
    )  # invented, and the seller's ID in the buyer's field
    assert keys["silent_errors"] == 1 and keys["silent_error_rate"] == 1.0
    assert keys["review_rate"] == pytest.approx(2 / 4)
    by_field = {row["field"]: row for row in report["fields"] if row["modality"] == "all"}
    assert by_field["buyer_tax_id"]["invented"] == 1
    assert by_field["invoice_code"]["invented"] == 0 and by_field["invoice_code"]["review"] == 0

    company = {**expected, "buyer_tax_id": "91310114MAEF222A74"}
    cases = [bench.Case("cn_2", "cn", Path("x.pdf"), "photo", company, tuple(company))]
    report = bench.score(cases, {"cn_2": runs["cn_1"]})
    assert report["key_fields"]["cn/photo"]["swapped"] == 1  # the seller's ID in the buyer's field


def test_forced_ocr_reads_the_pdf_not_the_prerendered_page(eval_dir: Path) -> None:
    bench = load_bench()
    both = bench.load_cases(eval_dir, ["cn"], ("text", "ocr"))
    forced = [case for case in both if case.force_ocr and case.dataset == "cn"]
    assert forced and all(case.path.suffix == ".pdf" for case in forced)
    assert {case.modality for case in forced} == {"digital_pdf_forced_ocr"}
    texts = [
        case for case in both if case.dataset == "cn" and not case.force_ocr and case.path.suffix == ".pdf"
    ]
    assert len(texts) == len(forced)
    photos = bench.load_cases(eval_dir, ["cn_photos"], ("text",))
    assert {case.modality for case in photos} == {"mild", "moderate", "harsh"}


def test_the_ocr_cache_returns_what_the_engine_read(tmp_path: Path) -> None:
    import numpy as np

    from pipeline.model import OcrPage, TextLine, polygon_from_rect
    from pipeline.preprocess import rotate_quadrant

    bench = load_bench()

    class CountingEngine:
        calls = 0

        def version(self) -> str:
            return "fake-1"

        def read_upright(
            self, image: Any, page: int = 0, timings: Any = None, *, photographed: bool = False
        ) -> tuple[Any, OcrPage, int]:
            CountingEngine.calls += 1
            line = TextLine("发票号码 12345678", 0.97, polygon_from_rect(1, 2, 30, 12), page)
            return rotate_quadrant(image, 180), OcrPage([line], "fake-1", 1.0), 180

    engine = bench.CachedEngine(CountingEngine(), tmp_path, "onnx|2400|1|detect")
    image = np.arange(20 * 40 * 3, dtype=np.uint8).reshape(20, 40, 3)
    first_image, first, first_angle = engine.read_upright(image, 0)
    again_image, again, again_angle = engine.read_upright(image.copy(), 0)
    assert CountingEngine.calls == 1
    assert [(line.text, line.confidence, line.polygon) for line in again.lines] == [
        (line.text, line.confidence, line.polygon) for line in first.lines
    ]
    assert again_angle == first_angle == 180 and np.array_equal(again_image, first_image)
    engine.read_upright(image, 0, photographed=True)  # read another way: not the same answer
    assert CountingEngine.calls == 2
    image[0, 0] = 1  # another image: read again
    engine.read_upright(image, 0)
    assert CountingEngine.calls == 3


@pytest.mark.slow
def test_a_small_real_run_writes_its_report(eval_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "scripts" / "bench_accuracy.py"), "--eval-dir", str(eval_dir)]
    command += ["--sets", "cn,invoice2data", "--limit", "2", "--pdf-mode", "text", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "exact / auto-accepted by modality" in done.stdout
    assert "invented values" in done.stdout and "review" in done.stdout
    report = json.loads((tmp_path / "accuracy-onnx-text.json").read_text(encoding="utf-8"))
    assert report["run"]["documents"] == 6 and not report["run"]["errors"]  # 2 each: cn, its negatives, i2d
    assert report["key_fields"]["cn/all"]["accuracy"] == 1.0
    assert report["key_fields"]["cn/all"]["silent_error_rate"] == 0.0
    assert report["items"]["cn/all"]["items_add_up"] == 2


def test_photos_made_with_another_seed_are_read_from_their_own_directory(
    eval_dir: Path, tmp_path: Path
) -> None:
    """--photos-dir: the cn_photos set from a directory make_photos.py wrote (labels beside the JPEGs)."""
    bench = load_bench()
    source = json.loads(sorted((eval_dir / "cn_photos").glob("cn_*.json"))[0].read_text(encoding="utf-8"))
    (tmp_path / "cn_999_mild.json").write_text(
        json.dumps({**source, "id": "cn_999_mild", "files": {"image": "cn_999_mild.jpg"}}), encoding="utf-8"
    )
    cases = bench.load_cases(eval_dir, ["cn_photos"], ("text",), tmp_path)
    assert [case.path for case in cases] == [tmp_path / "cn_999_mild.jpg"]
    assert cases[0].modality == source["level"] and cases[0].expected == source["fields"]
    assert len(bench.load_cases(eval_dir, ["cn_photos"], ("text",))) == 114


def test_label_corrections_apply_by_case_and_say_what_they_change(tmp_path: Path) -> None:
    bench = load_bench()
    corrections = tmp_path / "corrections.json"
    corrections.write_text(
        json.dumps(
            {"corrections": {"i2d_X": {"total_amount": {"value": 12.5, "why": "prints Total 12.50"}}}}
        ),
        encoding="utf-8",
    )
    fields = ("invoice_number", "total_amount")
    cases = [
        bench.Case("i2d_X", "invoice2data", Path("x.pdf"), "digital_pdf", {"total_amount": None}, fields),
        bench.Case("i2d_Y", "invoice2data", Path("y.pdf"), "digital_pdf", {"total_amount": None}, fields),
    ]
    applied = bench.apply_corrections(cases, corrections)
    assert cases[0].expected["total_amount"] == 12.5
    assert cases[1].expected["total_amount"] is None
    assert applied == ["i2d_X total_amount: None -> 12.5 (prints Total 12.50)"]


def test_every_shipped_correction_names_a_labelled_case_and_field(eval_dir: Path) -> None:
    bench = load_bench()
    cases = bench.load_cases(eval_dir, ["cn", "cn_photos", "invoice2data", "sroie"], ("text",))
    by_id = {case.case_id: case for case in cases}
    shipped = json.loads(bench.LABEL_CORRECTIONS.read_text(encoding="utf-8"))["corrections"]
    for case_id, fixes in shipped.items():
        assert case_id in by_id, case_id
        for name, fix in fixes.items():
            assert name in by_id[case_id].expected and fix["why"], (case_id, name)
