"""OFD and XML e-invoices: generated samples against their golden files, the real OFD set, the
structured source, disagreement between data and page, HEIC photos, same invoice in several files."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from pipeline.config import Settings
from pipeline.ingest import State, run_batch
from pipeline.load import load_document, sniff_format
from pipeline.model import FieldSource, FieldStatus
from pipeline.process import process_document
from pipeline.store import invoices as grouping
from pipeline.store import open_store
from tests.conftest import REPO, SAMPLES

EINVOICE_SAMPLES = REPO / "samples_einvoice"
KEY_FIELDS = (
    "invoice_code",
    "invoice_number",
    "issue_date",
    "check_code",
    "buyer_tax_id",
    "seller_tax_id",
    "amount_excl_tax",
    "tax_amount",
    "total_amount",
)
SETTINGS = Settings()


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_einvoice_samples", REPO / "scripts" / "make_einvoice_samples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_einvoice_samples", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def golden() -> list[tuple[Path, dict]]:
    cases = []
    for path in sorted(EINVOICE_SAMPLES.glob("*.expected.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))
        cases.append((EINVOICE_SAMPLES / truth["files"][0], truth))
    return cases


GOLDEN = golden()


def test_the_committed_samples_are_what_the_generator_writes(gen: ModuleType, tmp_path: Path) -> None:
    assert gen.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in EINVOICE_SAMPLES.iterdir())
    for name in written:
        assert (tmp_path / name).read_bytes() == (EINVOICE_SAMPLES / name).read_bytes(), name
    kinds = {(t["files"][0].rsplit(".", 1)[1], t["red_letter"]) for _, t in GOLDEN}
    assert kinds == {("ofd", False), ("ofd", True), ("xml", False), ("xml", True)}
    assert all(t["items"] for _, t in GOLDEN)


@pytest.mark.parametrize(("path", "truth"), GOLDEN, ids=[p.name for p, _ in GOLDEN])
def test_generated_einvoice_against_golden(path: Path, truth: dict) -> None:
    result = process_document(path.read_bytes(), path.name, SETTINGS).result
    assert str(result.doc_type) == truth["doc_type"]
    for name in KEY_FIELDS:
        found = result.fields.get(name)
        want = truth["fields"][name]
        if want is None:
            assert found is None or found.value is None, (name, found)
            continue
        assert found is not None and found.value == want, (name, found)
        assert found.source == FieldSource.STRUCTURED and found.confidence == 1.0, name
        assert found.status == FieldStatus.OK, (name, found.reasons)
    for name, want in truth["fields"].items():
        found = result.fields.get(name)
        got = found.value if found else None
        if name == "tax_rates" and got is not None:
            got, want = sorted(got), sorted(want)
        # Never a silent error: a value that is not the truth is sent to review.
        assert got == want or (found is not None and found.status != FieldStatus.OK), (name, got, want)
    assert result.items == truth["items"]
    assert result.pages[0].width == round(210 / 25.4 * 200)  # drawn at 200 dpi
    assert "invoice's data" in result.pages[0].note


@pytest.mark.parametrize("name", ["fully_digital_red.ofd", "vat_e_general_red.xml"])
def test_red_letter_amounts_are_negative_and_consistent(name: str) -> None:
    path = EINVOICE_SAMPLES / name
    truth = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    result = process_document(path.read_bytes(), path.name, SETTINGS).result
    total = result.fields["total_amount"]
    assert total.value.startswith("-") and total.status == FieldStatus.OK
    sum_check = [c for c in result.checks if "sum" in c.rule or "add" in c.rule]
    assert sum_check and all(c.passed for c in sum_check), [c.to_dict() for c in sum_check]
    # The 大写 keeps its 负: it equals the negative total, so it is not sent to review.
    words = result.fields["total_amount_words"]
    assert words.value == truth["fields"]["total_amount_words"] and words.value.startswith("负")
    assert words.status == FieldStatus.OK, words.reasons
    assert any(c.rule == "words_equal_total" and c.passed for c in result.checks)


def test_red_letter_xml_names_its_blue_invoice_for_reconciliation() -> None:
    path = EINVOICE_SAMPLES / "vat_e_general_red.xml"
    fields = process_document(path.read_bytes(), path.name, SETTINGS).result.fields
    remarks = str(fields["remarks"].value)
    code, number = fields["original_invoice_code"], fields["original_invoice_number"]
    assert code.source == number.source == FieldSource.STRUCTURED
    assert f"{code.value}号码:{number.value}" in remarks.replace("：", ":")


def test_real_ofd_invoices_have_every_key_field_right(eval_dir: Path) -> None:
    wrong = []
    labels = sorted((eval_dir / "ofd").glob("*.json"))
    assert len(labels) >= 6
    for label_path in labels:
        label = json.loads(label_path.read_text(encoding="utf-8"))
        path = eval_dir / "ofd" / label["files"]["ofd"]
        result = process_document(path.read_bytes(), path.name, SETTINGS).result
        for name in KEY_FIELDS:
            found = result.fields.get(name)
            got = found.value if found else None
            if got != label["fields"][name]:
                wrong.append((label["id"], name, got, label["fields"][name]))
        assert result.pages and result.pages[0].text_source == "text_layer"
        assert result.pages[0].width == round(210 / 25.4 * 200), "drawn at 200 dpi"
    assert wrong == []


def tamper(data: bytes, member: str, old: bytes, new: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == member:
                assert old in content
                content = content.replace(old, new)
            target.writestr(info, content)
    return out.getvalue()


def test_data_and_page_that_disagree_send_the_field_to_review() -> None:
    path = EINVOICE_SAMPLES / "vat_e_general_blue.ofd"
    truth = json.loads((EINVOICE_SAMPLES / "vat_e_general_blue.expected.json").read_text(encoding="utf-8"))
    number = truth["fields"]["invoice_number"].encode()
    changed = b"9" + number[1:] if number[:1] != b"9" else b"1" + number[1:]
    data = tamper(
        path.read_bytes(), "Doc_0/Attachs/original_invoice.xml", b">" + number + b"<", b">" + changed + b"<"
    )
    result = process_document(data, path.name, SETTINGS).result
    found = result.fields["invoice_number"]
    assert found.value == changed.decode() and found.source == FieldSource.STRUCTURED
    assert found.status == FieldStatus.NEEDS_REVIEW
    assert any("the page shows" in reason for reason in found.reasons), found.reasons
    assert any("disagree" in reason for reason in found.reasons), found.reasons
    assert str(result.status) == "needs_review"


def test_digital_xml_reads_the_invoice_total_not_a_line_total() -> None:
    path = EINVOICE_SAMPLES / "fully_digital_special_blue.xml"
    data = path.read_bytes()
    assert b"<TotaltaxIncludedAmount>" in data and b"<TotalTax-includedAmount>" in data
    pages = load_document(data, SETTINGS)
    structured = pages[0].structured
    assert structured is not None
    truth = json.loads(
        (EINVOICE_SAMPLES / "fully_digital_special_blue.expected.json").read_text(encoding="utf-8")
    )
    assert structured.fields["total_amount"] == truth["fields"]["total_amount"]
    assert [item["tax_rate"] for item in structured.items] == [item["tax_rate"] for item in truth["items"]]
    assert pages[0].image.shape[2] == 3 and pages[0].image.dtype == np.uint8


def test_ofd_text_objects_are_the_text_layer_with_positions() -> None:
    pages = load_document((EINVOICE_SAMPLES / "vat_e_general_blue.ofd").read_bytes(), SETTINGS)
    lines = pages[0].text_layer or []
    width, height = pages[0].size
    assert pages[0].text_layer_trusted
    label = next(line for line in lines if line.text.startswith("发票号码"))
    value = next(line for line in lines if re.fullmatch(r"\d{8}", line.text))
    assert (
        0 <= label.x0 < label.x1 <= value.x0 < width and abs(label.center_y - value.center_y) < label.height
    )
    assert all(0 <= line.y0 < line.y1 <= height for line in lines)
    # The page is drawn: dark pixels where the text objects are.
    crop = pages[0].image[int(value.y0) : int(value.y1), int(value.x0) : int(value.x1)]
    assert crop.size and crop.min() < 100


def test_heic_photo_is_read_upright(tmp_path: Path) -> None:
    import pillow_heif

    source = Image.open(SAMPLES / "vat_special_clean.png").convert("RGB").resize((600, 400))
    heif = pillow_heif.from_pillow(source)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show rotated 90° clockwise
    out = io.BytesIO()
    heif.save(out, quality=80, exif=exif.tobytes())
    data = out.getvalue()
    assert sniff_format(data) == "heif"
    pages = load_document(data, SETTINGS)
    assert len(pages) == 1
    height, width = pages[0].image.shape[:2]
    # pillow-heif applies the orientation while decoding, as Pillow's exif_transpose does for JPEG.
    assert (width, height) == (400, 600)


def test_same_invoice_in_several_files_is_grouped_and_separate_arrivals_said(
    tmp_path: Path, gen: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    invoice = gen.random_invoice(random.Random(7), "pair", "fully_digital_general", False, 2)
    first, second, third = (
        tmp_path / "a" / "inv.ofd",
        tmp_path / "b" / "inv.xml",
        tmp_path / "c" / "bundle.zip",
    )
    for path in (first, second, third):
        path.parent.mkdir()
    first.write_bytes(gen.ofd_file(invoice, with_attachment=False))
    second.write_bytes(gen.digital_xml(invoice))
    with zipfile.ZipFile(third, "w") as bundle:  # the same two files downloaded again, together
        bundle.writestr("download/inv.xml", gen.digital_xml(invoice) + b"\n")
        bundle.writestr("download/inv.ofd", first.read_bytes() + b"")
    settings = Settings(store=str(tmp_path / "store"))
    store = open_store(settings.store)
    monkeypatch.setattr(grouping, "TOGETHER_SECONDS", -1.0)  # every batch counts as another delivery
    try:
        one = run_batch([first], settings, store, workers=1)
        two = run_batch([second], settings, store, workers=1)
        three = {o.path.rsplit("/c/", 1)[1]: o for o in run_batch([third], settings, store, workers=1)}
        groups = grouping.invoice_groups(store.index)
    finally:
        store.close()
    assert one[0].state == State.STORED and not one[0].same_invoice
    assert two[0].state == State.STORED
    assert "same invoice as inv.ofd" in two[0].same_invoice and "arrived separately" in two[0].same_invoice
    assert len(groups) == 1 and groups[0].number == invoice.number
    # From the bundle: the OFD is the same file (stored once), the XML another copy of the invoice.
    assert three["bundle.zip!download/inv.ofd"].state == State.ALREADY_STORED
    assert three["bundle.zip!download/inv.xml"].state == State.STORED
    assert "same invoice as inv.ofd" in three["bundle.zip!download/inv.xml"].same_invoice
    names = sorted(row["source_name"] for row in groups[0].documents)
    assert names == ["bundle.zip!download/inv.xml", "inv.ofd", "inv.xml"]
    assert groups[0].arrived_separately
    together = [
        {"document_id": "x", "source_name": "bundle.zip!download/inv.xml", "ingested_at": 10.0},
        {"document_id": "y", "source_name": "bundle.zip!download/inv.ofd", "ingested_at": 5000.0},
    ]
    assert not grouping.arrived_separately(together)


def test_gbk_encoded_xml_is_read() -> None:
    path = EINVOICE_SAMPLES / "fully_digital_special_blue.xml"
    text = path.read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="GBK"')
    pages = load_document(text.encode("gbk"), SETTINGS)
    utf8 = load_document(path.read_bytes(), SETTINGS)
    assert pages[0].structured is not None and utf8[0].structured is not None
    assert pages[0].structured.fields == utf8[0].structured.fields
    assert any("有限公司" in value for value in pages[0].structured.fields.values())


def without_data(data: bytes) -> bytes:
    """The OFD with its attachments, tags and CustomDatas removed: only the page is left."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if "/Attachs/" in info.filename or "/Tags/" in info.filename:
                continue
            content = source.read(info)
            if info.filename == "OFD.xml":
                content = re.sub(rb"<ofd:CustomDatas>.*</ofd:CustomDatas>", b"", content, flags=re.S)
            target.writestr(info, content)
    return out.getvalue()


@pytest.mark.parametrize("case", ["vat_e_general_blue", "fully_digital_red"])
def test_an_ofd_without_data_is_read_from_its_page_text(case: str) -> None:
    truth = json.loads((EINVOICE_SAMPLES / f"{case}.expected.json").read_text(encoding="utf-8"))
    data = without_data((EINVOICE_SAMPLES / f"{case}.ofd").read_bytes())
    pages = load_document(data, SETTINGS)
    assert pages[0].structured is None
    result = process_document(data, f"{case}.ofd", SETTINGS).result
    assert str(result.doc_type) == truth["doc_type"]
    for name in KEY_FIELDS:
        found = result.fields.get(name)
        assert (found.value if found else None) == truth["fields"][name], name
        if found is not None and found.value is not None:
            assert found.source == FieldSource.TEXT_LAYER


def test_real_ofd_pages_without_their_data_keep_amount_and_tax_apart(eval_dir: Path) -> None:
    """Read from the page alone, the 合计 amount and tax stay two numbers ("9.91" "1.29", not 911.29)."""
    wrong = []
    for label_path in sorted((eval_dir / "ofd").glob("*.json")):
        label = json.loads(label_path.read_text(encoding="utf-8"))
        data = without_data((eval_dir / "ofd" / label["files"]["ofd"]).read_bytes())
        assert load_document(data, SETTINGS)[0].structured is None
        fields = process_document(data, label_path.name, SETTINGS).result.fields
        for name in KEY_FIELDS:
            found = fields.get(name)
            if (found.value if found else None) != label["fields"][name]:
                wrong.append((label["id"], name, found.value if found else None, label["fields"][name]))
    assert wrong == []


def test_one_ofd_text_object_placing_two_cells_gives_two_numbers() -> None:
    """A TextObject whose DeltaX puts "9.91" and "1.29" far apart: never one run "9.911.29"."""
    from pipeline.extract.vat import extract_vat
    from pipeline.load.ofd import Glyphs, glyph_lines

    size = 3.175

    def run(text: str, x: float, y: float, step: float) -> list[tuple[str, float, float]]:
        return [(ch, x + i * step, y) for i, ch in enumerate(text)]

    near = Glyphs(
        "1", run("9.91", 120, 90, 0.5 * size) + run("1.29", 120 + 3 * size, 90, 0.5 * size), size, (0, 0, 0)
    )
    far = Glyphs("2", run("9.91", 120, 100, 0.5 * size) + run("1.29", 180, 100, 0.5 * size), size, (0, 0, 0))
    label = Glyphs("3", run("合计", 20, 100, size), size, (0, 0, 0))
    texts = [line.text for line in glyph_lines([near, far, label], 0, 200 / 25.4)]
    assert "9.91 1.29" in texts  # a word-sized gap: a space
    assert "9.91" in texts and "1.29" in texts  # far apart: two lines
    lines = glyph_lines([far, label], 0, 200 / 25.4)
    found = extract_vat(lines)
    assert (found["amount_excl_tax"].text, found["tax_amount"].text) == ("9.91", "1.29")
    one_line = glyph_lines([near, Glyphs("3", run("合计", 20, 90, size), size, (0, 0, 0))], 0, 200 / 25.4)
    found = extract_vat(one_line)
    assert (found["amount_excl_tax"].text, found["tax_amount"].text) == ("9.91", "1.29")
