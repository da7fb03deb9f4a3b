"""The sample generator (scripts/make_samples.py) and the committed samples/ are self-consistent."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_samples.py"
SAMPLES = ROOT / "samples"

CN_FIELDS = {
    "title", "invoice_code", "invoice_number", "issue_date", "check_code", "machine_no", "buyer_name",
    "buyer_tax_id", "seller_name", "seller_tax_id", "amount_excl_tax", "tax_amount", "total_amount",
    "total_amount_words", "tax_rates",
}  # fmt: skip
EN_FIELDS = {
    "vendor_name", "invoice_number", "issue_date", "total_amount", "amount_excl_tax", "tax_amount", "currency",
    "vendor_tax_id",
}  # fmt: skip
TITLES = {
    "vat_special_paper": "北京增值税专用发票",
    "vat_general_paper": "北京增值税普通发票",
    "vat_e_invoice_general": "北京增值税电子普通发票",
    "fully_digital_general": "电子发票（普通发票）",
    "fully_digital_special": "电子发票（增值税专用发票）",
}
QR_TYPES = {
    "vat_special_paper": "01",
    "vat_general_paper": "04",
    "vat_e_invoice_general": "10",
    "fully_digital_special": "31",
    "fully_digital_general": "32",
}
CODE_PATTERNS = {
    "vat_special_paper": r"1100(\d\d)\d130",
    "vat_general_paper": r"01100(\d\d)\d{3}04",
    "vat_e_invoice_general": r"01100(\d\d)\d{3}11",
}
MONEY = re.compile(r"^\d+\.\d\d$")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
HAVE_CJK_FONT = any(
    Path(p).exists()
    for p in (
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    )
)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module
    spec.loader.exec_module(module)
    return module


def uscc_ok(code: str) -> bool:
    """Independent GB 32100-2015 check."""
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    total = sum(USCC_ALPHABET.index(c) * (3**i % 31) for i, c in enumerate(code[:17]))
    return USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def d(s: str) -> Decimal:
    assert MONEY.match(s), s
    return Decimal(s)


def check_cn(rec: dict[str, Any], gen: ModuleType) -> None:
    f, items, doc_type = rec["fields"], rec["items"], rec["doc_type"]
    assert set(f) == CN_FIELDS
    assert f["title"] == TITLES[doc_type]
    date = dt.date.fromisoformat(f["issue_date"])
    assert dt.date(2019, 1, 1) <= date <= dt.date(2025, 12, 31)
    yy = f"{date.year % 100:02d}"
    fully = doc_type.startswith("fully_digital")
    if fully:
        assert f["invoice_code"] is None
        assert re.fullmatch(r"\d{20}", f["invoice_number"]) and f["invoice_number"][:4] == yy + "11"
    else:
        m = re.fullmatch(CODE_PATTERNS[doc_type], f["invoice_code"])
        assert m and m.group(1) == yy, f["invoice_code"]
        assert re.fullmatch(r"\d{8}", f["invoice_number"])
    with_check = doc_type in ("vat_general_paper", "vat_e_invoice_general")
    assert (f["check_code"] is not None) == with_check and (f["machine_no"] is not None) == with_check
    if with_check:
        assert re.fullmatch(r"\d{20}", f["check_code"]) and re.fullmatch(r"\d{12}", f["machine_no"])
    assert f["buyer_tax_id"] is None or uscc_ok(f["buyer_tax_id"])  # None: a private buyer
    assert uscc_ok(f["seller_tax_id"])
    assert f["buyer_name"] and f["seller_name"] and f["buyer_name"] != f["seller_name"]

    assert 1 <= len(items) <= 3
    rates = []
    for it in items:
        rate = Decimal(it["tax_rate"].rstrip("%"))
        tax = (d(it["amount"]) * rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert d(it["tax_amount"]) == tax, it
        if it["quantity"] is not None:
            price_x_qty = Decimal(it["unit_price"]) * int(it["quantity"])
            assert abs(price_x_qty - d(it["amount"])) <= Decimal("0.005"), it
        if it["tax_rate"] not in rates:
            rates.append(it["tax_rate"])
    assert f["tax_rates"] == rates
    amount, tax, total = d(f["amount_excl_tax"]), d(f["tax_amount"]), d(f["total_amount"])
    assert amount == sum(d(it["amount"]) for it in items)
    assert tax == sum(d(it["tax_amount"]) for it in items)
    assert amount + tax == total
    assert f["total_amount_words"] == gen.amount_in_words(total, "圆" if fully else "元")

    parts = rec["qr_payload"].split(",")
    if not fully:
        assert parts.pop() == "", "old-style payloads end with a comma"
    assert len(parts) == 8
    assert parts[:4] == ["01", QR_TYPES[doc_type], f["invoice_code"] or "", f["invoice_number"]]
    assert parts[4] == (f["total_amount"] if fully else f["amount_excl_tax"])
    assert parts[5] == date.strftime("%Y%m%d")
    assert parts[6] == (f["check_code"] or "")
    assert re.fullmatch(r"[0-9A-F]{4}", parts[7])


def check_en(rec: dict[str, Any]) -> None:
    f = rec["fields"]
    assert set(f) == EN_FIELDS
    dt.date.fromisoformat(f["issue_date"])
    assert f["currency"] in {"EUR", "USD", "GBP"}
    assert f["vendor_name"] and f["invoice_number"] and f["vendor_tax_id"]
    for it in rec["items"]:
        assert d(it["unit_price"]) * int(it["quantity"]) == d(it["amount"])
    subtotal, tax, total = d(f["amount_excl_tax"]), d(f["tax_amount"]), d(f["total_amount"])
    assert subtotal == sum(d(it["amount"]) for it in rec["items"])
    assert subtotal + tax == total
    assert rec["qr_payload"] is None


def check_record(rec: dict[str, Any], folder: Path, gen: ModuleType) -> None:
    assert rec["doc_type"] in {*TITLES, "generic_invoice"}
    assert rec["variant"]
    assert rec["files"]
    for name in rec["files"]:
        assert (folder / name).is_file(), name
        assert Path(name).stem == rec["case"]
    if rec["doc_type"] == "generic_invoice":
        check_en(rec)
    else:
        check_cn(rec, gen)


def qr_texts(path: Path) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    return [b.text for b in zxingcpp.read_barcodes(np.asarray(Image.open(path).convert("L")))]


# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "yuan", "words"),
    [
        ("600.20", "元", "陆佰元零贰角"),
        ("7018.83", "元", "柒仟零壹拾捌元捌角叁分"),
        ("1500.00", "元", "壹仟伍佰元整"),
        ("112.20", "元", "壹佰壹拾贰元贰角"),
        ("1005.07", "元", "壹仟零伍元零柒分"),
        ("10.00", "元", "壹拾元整"),
        ("0.05", "元", "伍分"),
        ("0.30", "元", "叁角"),
        ("100500.00", "元", "壹拾万零伍佰元整"),
        ("30000.10", "元", "叁万元零壹角"),
        ("15003000.00", "元", "壹仟伍佰万叁仟元整"),
        ("100000003.00", "元", "壹亿零叁元整"),
        ("585.00", "圆", "伍佰捌拾伍圆整"),
        ("50.00", "圆", "伍拾圆整"),
    ],
)
def test_amount_in_words(gen: ModuleType, value: str, yuan: str, words: str) -> None:
    assert gen.amount_in_words(Decimal(value), yuan) == words


def test_uscc_generator_matches_independent_check(gen: ModuleType) -> None:
    import random

    rng = random.Random(1)
    for _ in range(200):
        code = gen.make_uscc(rng, "110108")
        assert uscc_ok(code) and gen.uscc_is_valid(code)
    assert uscc_ok("91440101MA59RNUF8X") and uscc_ok("911201163409833307")  # real ones (eval set)
    assert not uscc_ok("91440101MA59RNUF8Y")


@pytest.mark.skipif(not HAVE_CJK_FONT, reason="needs fonts-wqy-microhei (apt-get install fonts-wqy-microhei)")
def test_random_generation_is_consistent_and_deterministic(tmp_path: Path, gen: ModuleType) -> None:
    runs = []
    for sub in ("a", "b"):
        out = tmp_path / sub
        cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--count", "3", "--seed", "14"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert runs[0] == runs[1], "same seed, same bytes"
    out = tmp_path / "a"
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.expected.json"))]
    assert len(records) == 3
    for rec in records:
        check_record(rec, out, gen)
        for name in rec["files"]:
            if rec["qr_payload"] and not name.endswith(".pdf"):
                assert rec["qr_payload"] in qr_texts(out / name), name


def committed_records() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("*.expected.json"))]


def test_committed_samples_are_consistent(gen: ModuleType) -> None:
    records = committed_records()
    assert len(records) >= 9
    covered = set()
    for rec in records:
        assert rec["case"] in gen.SAMPLE_CASES
        check_record(rec, SAMPLES, gen)
        covered.add(rec["doc_type"])
    assert covered == {*TITLES, "generic_invoice"}
    # every document has its truth, except the deliberately broken one
    documents = [p for p in SAMPLES.iterdir() if not p.name.endswith(".json")]
    named = {name for rec in records for name in rec["files"]}
    assert {p.name for p in documents} - named == {"corrupt_truncated.jpg"}


def test_committed_corrupt_jpeg_is_truncated() -> None:
    data = (SAMPLES / "corrupt_truncated.jpg").read_bytes()
    assert data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9")
    with pytest.raises(OSError), Image.open(SAMPLES / "corrupt_truncated.jpg") as img:
        img.load()


def test_committed_pdfs_have_a_text_layer() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    for rec in committed_records():
        for name in rec["files"]:
            if not name.endswith(".pdf"):
                continue
            doc = pdfium.PdfDocument(str(SAMPLES / name))
            text = doc[0].get_textpage().get_text_range()
            f = rec["fields"]
            assert f["invoice_number"] in text, name
            assert (f.get("buyer_name") or f["vendor_name"]) in text, name
            assert f["total_amount"] in text.replace(",", ""), name


def test_committed_images_carry_the_qr_payload() -> None:
    for rec in committed_records():
        for name in rec["files"]:
            if rec["qr_payload"] and not name.endswith(".pdf"):
                assert rec["qr_payload"] in qr_texts(SAMPLES / name), name


def test_committed_samples_stay_small() -> None:
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    assert len(files) <= 26
    assert sum(p.stat().st_size for p in files) <= 5 * 1024 * 1024


PRIVATE_CASES = ("vat_e_general_private", "fully_digital_general_private", "vat_general_private_scan")


def test_committed_samples_have_private_buyers_on_every_kind_that_issues_to_persons() -> None:
    """专票 need the buyer's ID; 普票 on paper, 电子普票 and 全电 普通发票 are issued to persons."""
    private = [rec for rec in committed_records() if rec["fields"].get("buyer_tax_id", "x") is None]
    assert {rec["case"] for rec in private} == set(PRIVATE_CASES)
    assert {rec["doc_type"] for rec in private} == {
        "vat_general_paper",
        "vat_e_invoice_general",
        "fully_digital_general",
    }
    names = {rec["fields"]["buyer_name"] for rec in private}
    assert "个人" in names and any(name != "个人" for name in names)  # 个人 and a person's name
    for rec in private:
        assert uscc_ok(rec["fields"]["seller_tax_id"])


@pytest.mark.skipif(not HAVE_CJK_FONT, reason="needs fonts-wqy-microhei (apt-get install fonts-wqy-microhei)")
def test_private_buyer_samples_regenerate_byte_for_byte(tmp_path: Path, gen: ModuleType) -> None:
    gen.generate_samples(tmp_path, gen.DEFAULT_SEED, PRIVATE_CASES)
    for case in PRIVATE_CASES:
        record = json.loads((SAMPLES / f"{case}.expected.json").read_text(encoding="utf-8"))
        for name in [*record["files"], f"{case}.expected.json"]:
            assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
