"""Rules of the validation stage applied to one extracted invoice: ``validate_invoice`` behaviour."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipeline.model import DocType, DocumentStatus, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo
from pipeline.validate import NOT_FOUND, validate_invoice
from tests.eval_labels import TODAY, eval_labels

# Label doc types (eval set) -> ours; the Shenzhen blockchain e-invoice has no DocType of its own.
LABEL_DOC_TYPES = {
    "vat_e_invoice_general": DocType.VAT_E_INVOICE_GENERAL,
    "fully_digital_invoice_general": DocType.FULLY_DIGITAL_GENERAL,
    "fully_digital_invoice_special": DocType.FULLY_DIGITAL_SPECIAL,
    "vat_special_paper": DocType.VAT_SPECIAL_PAPER,
    "vat_general_paper": DocType.VAT_GENERAL_PAPER,
    "shenzhen_blockchain_e_invoice": DocType.VAT_E_INVOICE_GENERAL,
}


# ---------------------------------------------------------------------------------- validate_invoice

E_INVOICE = {
    "title": "天津增值税电子普通发票",
    "invoice_code": "012001800111",
    "invoice_number": "41539530",
    "issue_date": "2018-09-21",
    "check_code": "09721126099007676378",
    "machine_no": "499099255083",
    "buyer_name": "广州亚信技术有限公司",
    "buyer_tax_id": "91440101MA59RNUF8X",
    "seller_name": "滴滴出行科技有限公司",
    "seller_tax_id": "911201163409833307",
    "amount_excl_tax": "582.72",
    "tax_amount": "17.48",
    "total_amount": "600.20",
    "total_amount_words": "陆佰元零贰角",
}
E_INVOICE_QR = "01,10,012001800111,41539530,582.72,20180921,09721126099007676378,276D,"


def make_result(
    values: dict[str, Any],
    doc_type: DocType = DocType.VAT_E_INVOICE_GENERAL,
    confidence: float = 0.95,
    weak: tuple[str, ...] = (),
    qr: str | None = None,
) -> InvoiceResult:
    """Fields as extraction would leave them: OK when strong, NEEDS_REVIEW (with a reason) when weak."""
    fields: dict[str, Field] = {}
    for name, value in values.items():
        if value is None:
            fields[name] = Field.missing()
        elif name in weak:
            fields[name] = Field(value, 0.8, FieldStatus.NEEDS_REVIEW, FieldSource.OCR, reasons=["weak OCR"])
        else:
            fields[name] = Field(value, confidence, FieldStatus.OK, FieldSource.OCR)
    return InvoiceResult("doc", "doc.png", doc_type, fields, qr_payload=qr)


def failed(result: InvoiceResult) -> dict[str, str]:
    return {c.rule: c.detail for c in result.checks if not c.passed}


def passed(result: InvoiceResult) -> set[str]:
    return {c.rule for c in result.checks if c.passed}


def test_clean_e_invoice_passes_every_rule() -> None:
    result = validate_invoice(make_result(E_INVOICE, qr=E_INVOICE_QR), today=TODAY)
    assert failed(result) == {}
    assert {
        "tax_id_checksum:seller_tax_id",
        "tax_id_checksum:buyer_tax_id",
        "amount_plus_tax_equals_total",
        "words_equal_total",
        "invoice_code_structure",
        "invoice_number_structure",
        "check_code_structure",
        "issue_date_valid",
        "qr_agrees:invoice_number",
        "qr_agrees:amount_excl_tax",
        "qr_agrees:doc_type",
    } <= passed(result)
    assert result.status == DocumentStatus.OK


def test_sum_and_words_trust_weak_amounts() -> None:
    amounts = ("amount_excl_tax", "tax_amount", "total_amount", "total_amount_words")
    result = validate_invoice(make_result(E_INVOICE, weak=amounts), today=TODAY)
    for name in amounts:
        assert result.fields[name].status == FieldStatus.OK, name
        assert result.fields[name].confidence == pytest.approx(0.99)
    assert result.status == DocumentStatus.OK


def test_words_alone_do_not_trust_amounts_when_the_sum_fails() -> None:
    values = {**E_INVOICE, "tax_amount": "17.84"}
    result = validate_invoice(make_result(values, weak=("amount_excl_tax",)), today=TODAY)
    assert "amount_plus_tax_equals_total" in failed(result)
    # The words confirm the total, so the amount or the tax is the misread.
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW
    assert result.fields["amount_excl_tax"].status == FieldStatus.NEEDS_REVIEW
    assert result.fields["total_amount"].status == FieldStatus.OK
    assert "582.72 + tax 17.84 = 600.56, but total is 600.20" in result.fields["tax_amount"].reasons[0]


def test_misread_words_are_the_ones_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount_words": "陆佰元零叁角"}), today=TODAY)
    assert "words_equal_total" in failed(result)
    assert result.fields["total_amount_words"].status == FieldStatus.NEEDS_REVIEW
    assert "600.30" in result.fields["total_amount_words"].reasons[0]
    assert result.fields["total_amount"].status == FieldStatus.OK


def test_misread_total_is_the_one_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount": "600.02"}), today=TODAY)
    assert result.fields["total_amount"].status == FieldStatus.NEEDS_REVIEW
    assert "600.20" in result.fields["total_amount"].reasons[0]
    assert result.fields["total_amount_words"].status == FieldStatus.OK
    assert result.fields["amount_excl_tax"].status == FieldStatus.OK


def test_unreadable_words_are_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount_words": "陆佰零贰"}), today=TODAY)
    assert "words_equal_total" in failed(result)
    assert result.fields["total_amount_words"].status == FieldStatus.NEEDS_REVIEW


def test_wrong_checksum_is_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "seller_tax_id": "911201163409833308"}), today=TODAY)
    assert "tax_id_checksum:seller_tax_id" in failed(result)
    field = result.fields["seller_tax_id"]
    assert field.status == FieldStatus.NEEDS_REVIEW
    assert "911201163409833308" in field.reasons[0]
    assert result.status == DocumentStatus.NEEDS_REVIEW


def test_qr_disagreement_is_flagged() -> None:
    result = validate_invoice(
        make_result({**E_INVOICE, "invoice_number": "41539580"}, qr=E_INVOICE_QR), TODAY
    )
    assert "qr_agrees:invoice_number" in failed(result)
    assert result.fields["invoice_number"].status == FieldStatus.NEEDS_REVIEW
    assert "QR code says 41539530" in result.fields["invoice_number"].reasons


def test_qr_agreement_trusts_a_weak_field() -> None:
    result = validate_invoice(
        make_result(E_INVOICE, weak=("check_code", "issue_date"), qr=E_INVOICE_QR), TODAY
    )
    for name in ("check_code", "issue_date"):
        assert result.fields[name].status == FieldStatus.OK
        assert result.fields[name].confidence == 1.0


def test_qr_fills_a_missing_field() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "check_code": None}, qr=E_INVOICE_QR), TODAY)
    field = result.fields["check_code"]
    assert field.value == "09721126099007676378"
    assert (field.status, field.source, field.confidence, field.box) == (
        FieldStatus.OK,
        FieldSource.QR,
        1.0,
        None,
    )
    assert result.status == DocumentStatus.OK


def test_qr_total_on_fully_digital_invoice() -> None:
    values = {
        "invoice_number": "26342000001798762786",
        "issue_date": "2026-06-10",
        "seller_name": "某某公司",
        "seller_tax_id": "92341882MAK1CDJB6X",
        "amount_excl_tax": "265.35",
        "tax_amount": "2.65",
        "total_amount": "268.00",
        "tax_rates": ["1%"],
    }
    qr = "01,31,,26342000001798762786,268.00,20260610,,3AB4"
    result = validate_invoice(
        make_result(values, DocType.FULLY_DIGITAL_SPECIAL, weak=("total_amount",), qr=qr), TODAY
    )
    assert failed(result) == {}
    assert result.fields["total_amount"].confidence == 1.0
    assert "invoice_code" not in result.fields  # not mandatory on 全电
    assert result.status == DocumentStatus.OK


def test_qr_type_corrects_the_classification_with_a_warning() -> None:
    """The QR code's type is exact; a misread or sealed title is not."""
    result = validate_invoice(make_result(E_INVOICE, DocType.VAT_GENERAL_PAPER, qr=E_INVOICE_QR), TODAY)
    assert result.doc_type == DocType.VAT_E_INVOICE_GENERAL
    assert "qr_agrees:doc_type" not in failed(result)
    assert any("taken from the QR code" in warning for warning in result.warnings)


def test_non_invoice_qr_is_ignored() -> None:
    result = validate_invoice(make_result(E_INVOICE, qr="https://example.com/x"), today=TODAY)
    assert not any(c.rule.startswith("qr_agrees") for c in result.checks)
    assert result.status == DocumentStatus.OK


def test_future_date_is_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "issue_date": "2026-12-01"}), today=TODAY)
    assert "issue_date_valid" in failed(result)
    assert "in the future" in result.fields["issue_date"].reasons[0]


def test_date_before_code_year_is_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "issue_date": "2016-09-21"}), today=TODAY)
    assert result.fields["issue_date"].status == FieldStatus.NEEDS_REVIEW


def test_bad_structures_are_flagged() -> None:
    values = {**E_INVOICE, "invoice_code": "01200180011", "invoice_number": "4153953", "check_code": "0972"}
    result = validate_invoice(make_result(values), today=TODAY)
    assert {"invoice_code_structure", "invoice_number_structure", "check_code_structure"} <= set(
        failed(result)
    )
    for name in ("invoice_code", "invoice_number", "check_code"):
        assert result.fields[name].status == FieldStatus.NEEDS_REVIEW


def test_missing_mandatory_field_sends_document_to_review() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "seller_name": None}), today=TODAY)
    assert result.fields["seller_name"].reasons == [NOT_FOUND]
    assert result.fields["seller_name"].status == FieldStatus.MISSING
    assert result.status == DocumentStatus.NEEDS_REVIEW


def test_absent_mandatory_field_is_added_as_missing() -> None:
    values = {k: v for k, v in E_INVOICE.items() if k != "invoice_number"}
    result = validate_invoice(make_result(values), today=TODAY)
    assert result.fields["invoice_number"].reasons == [NOT_FOUND]


def test_optional_fields_stay_missing_quietly() -> None:
    values = {**E_INVOICE, "invoice_code": "5100191160", "issue_date": "2019-06-14", "check_code": None}
    values |= {"machine_no": None, "buyer_tax_id": None}
    result = validate_invoice(make_result(values, DocType.VAT_SPECIAL_PAPER), today=TODAY)
    for name in ("check_code", "machine_no", "buyer_tax_id"):
        assert result.fields[name].status == FieldStatus.MISSING
        assert result.fields[name].reasons == []
    assert result.status == DocumentStatus.OK


def test_check_code_is_mandatory_on_e_invoices() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "check_code": None}), today=TODAY)
    assert result.fields["check_code"].reasons == [NOT_FOUND]


def test_missing_tax_is_derived_from_trusted_total() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "tax_amount": None}), today=TODAY)
    field = result.fields["tax_amount"]
    assert (field.value, field.status, field.source) == ("17.48", FieldStatus.OK, FieldSource.DERIVED)
    assert field.confidence == pytest.approx(0.98)
    assert "derived:tax_amount" in passed(result)
    assert result.status == DocumentStatus.OK


def test_missing_amount_derived_from_a_weak_tax_needs_review() -> None:
    result = validate_invoice(
        make_result({**E_INVOICE, "amount_excl_tax": None}, weak=("tax_amount",)), TODAY
    )
    field = result.fields["amount_excl_tax"]
    assert field.value == "582.72"
    assert field.status == FieldStatus.NEEDS_REVIEW
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW


def test_without_words_a_derived_tax_is_only_a_suggestion() -> None:
    result = validate_invoice(
        make_result({**E_INVOICE, "tax_amount": None, "total_amount_words": None}), today=TODAY
    )
    field = result.fields["tax_amount"]
    assert (field.value, field.source, field.status) == (
        "17.48",
        FieldSource.DERIVED,
        FieldStatus.NEEDS_REVIEW,
    )
    assert "nothing else on the page confirms it" in field.reasons[0]


def test_without_words_the_rate_and_the_items_confirm_a_derived_tax() -> None:
    values = {**E_INVOICE, "tax_amount": None, "total_amount_words": None, "tax_rates": ["3%"]}
    result = make_result(values)
    result.items = [{"amount": "582.72", "tax_rate": "3%", "tax_amount": "17.48"}]
    validate_invoice(result, today=TODAY)
    field = result.fields["tax_amount"]
    assert (field.value, field.source, field.status) == ("17.48", FieldSource.DERIVED, FieldStatus.OK)


def test_a_derived_tax_the_rate_contradicts_goes_to_review() -> None:
    values = {**E_INVOICE, "tax_amount": None, "tax_rates": ["13%"]}  # 582.72 × 13 % is not 17.48
    result = validate_invoice(make_result(values), today=TODAY)
    field = result.fields["tax_amount"]
    assert field.value == "17.48" and field.status == FieldStatus.NEEDS_REVIEW
    assert "13%" in field.reasons[0]


def test_both_amounts_missing_are_split_by_the_single_rate() -> None:
    values = {**E_INVOICE, "amount_excl_tax": None, "tax_amount": None, "tax_rates": ["3%"]}
    result = make_result(values)
    result.items = [{"amount": "582.72", "tax_rate": "3%", "tax_amount": None}]
    validate_invoice(result, today=TODAY)
    assert result.fields["amount_excl_tax"].value == "582.72"
    assert result.fields["tax_amount"].value == "17.48"
    # words and the item amount confirm the split
    assert result.fields["amount_excl_tax"].status == FieldStatus.OK
    assert result.fields["tax_amount"].source == FieldSource.DERIVED


def test_both_amounts_missing_and_nothing_but_the_rate_stay_for_review() -> None:
    values = {**E_INVOICE, "amount_excl_tax": None, "tax_amount": None, "tax_rates": ["3%"]}
    values["total_amount_words"] = None
    result = validate_invoice(make_result(values), today=TODAY)
    assert result.fields["tax_amount"].value == "17.48"
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW


def test_an_exempt_invoice_gets_a_zero_tax_confirmed_by_the_rate_and_the_words() -> None:
    values = {**E_INVOICE, "amount_excl_tax": "600.20", "tax_amount": None, "tax_rates": ["免税"]}
    result = validate_invoice(make_result(values), today=TODAY)
    field = result.fields["tax_amount"]
    assert (field.value, field.status) == ("0.00", FieldStatus.OK)


def test_missing_total_derived_when_words_equal_the_sum() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount": None}), today=TODAY)
    field = result.fields["total_amount"]
    assert (field.value, field.status, field.source) == ("600.20", FieldStatus.OK, FieldSource.DERIVED)


def test_tax_rate_rules() -> None:
    values = {**E_INVOICE, "issue_date": "2023-03-10", "tax_rates": ["3%", "17%"]}
    result = validate_invoice(make_result(values), today=TODAY)
    assert "tax_rate_whitelist" in failed(result)
    assert result.fields["tax_rates"].status == FieldStatus.NEEDS_REVIEW
    assert "17%" in result.fields["tax_rates"].reasons[0]
    old = validate_invoice(make_result({**values, "issue_date": "2018-09-21"}), today=TODAY)
    assert "tax_rate_whitelist" in passed(old)


def test_line_tax_rule_on_items() -> None:
    result = make_result(E_INVOICE)
    result.items = [
        {"name": "*运输服务*客运服务费", "amount": "500.00", "tax_rate": "3%", "tax_amount": "15.00"},
        {"name": "*运输服务*客运服务费", "amount": "82.72", "tax_rate": "3%", "tax_amount": "2.84"},
    ]
    validate_invoice(result, today=TODAY)
    assert "line 2: 82.72 × 3% = 2.48, but tax is 2.84" in failed(result)["line_tax"]
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW


def test_items_add_up_to_the_totals() -> None:
    lines = [
        {"name": "*运输服务*客运服务费", "amount": "500.00", "tax_rate": "3%", "tax_amount": "15.00"},
        {"name": "*运输服务*客运服务费", "amount": "82.72", "tax_rate": "3%", "tax_amount": "2.48"},
    ]
    result = make_result(E_INVOICE)
    result.items = lines
    validate_invoice(result, today=TODAY)
    assert {"items_add_up:amounts", "items_add_up:taxes"} <= passed(result)
    # A line the table reader missed: the items are wrong, the totals (confirmed by their own sum) are not.
    missed = make_result(E_INVOICE)
    missed.items = lines[:1]
    validate_invoice(missed, today=TODAY)
    assert (
        failed(missed)["items_add_up:amounts"] == "item amounts add up to 500.00; amount_excl_tax is 582.72"
    )
    assert any("check the item lines" in warning for warning in missed.warnings)
    assert missed.fields["amount_excl_tax"].status == FieldStatus.OK


def test_exempt_line_with_starred_tax() -> None:
    result = make_result({**E_INVOICE, "tax_amount": "***", "amount_excl_tax": "600.20"})
    result.items = [{"amount": "600.20", "tax_rate": "免税", "tax_amount": "***"}]
    validate_invoice(result, today=TODAY)
    assert failed(result) == {}
    assert {"line_tax", "tax_rate_whitelist", "amount_plus_tax_equals_total"} <= passed(result)


def test_low_confidence_ok_field_is_caught() -> None:
    result = make_result(E_INVOICE)
    result.fields["buyer_name"].confidence = 0.5
    validate_invoice(result, today=TODAY, review_below=0.9)
    assert result.fields["buyer_name"].status == FieldStatus.NEEDS_REVIEW


def test_clerk_correction_is_not_sent_back() -> None:
    result = make_result(E_INVOICE)
    result.fields["seller_tax_id"] = Field("911201163409833308", 1.0, FieldStatus.OK, FieldSource.REVIEW)
    validate_invoice(result, today=TODAY)
    assert "tax_id_checksum:seller_tax_id" in failed(result)  # still recorded
    assert result.fields["seller_tax_id"].status == FieldStatus.OK


def test_revalidation_replaces_checks() -> None:
    result = validate_invoice(make_result(E_INVOICE, qr=E_INVOICE_QR), today=TODAY)
    count = len(result.checks)
    validate_invoice(result, today=TODAY)
    assert len(result.checks) == count


def test_other_documents_are_untouched() -> None:
    result = make_result(
        {"total_amount": "12.00", "issue_date": "2099-01-01"}, DocType.OTHER, qr=E_INVOICE_QR
    )
    before = copy.deepcopy(result)
    assert validate_invoice(result, today=TODAY) is result
    assert result == before
    assert result.status == DocumentStatus.NOT_AN_INVOICE


def test_generic_invoice_rules() -> None:
    values = {
        "amount_excl_tax": "100.00",
        "tax_amount": "20.00",
        "total_amount": "121.00",
        "issue_date": "2030-01-01",
    }
    values["seller_tax_id"] = "not checked"
    result = validate_invoice(make_result(values, DocType.GENERIC_INVOICE), today=TODAY)
    assert set(failed(result)) == {"amount_plus_tax_equals_total", "issue_date_valid"}
    assert all(result.fields[n].status == FieldStatus.NEEDS_REVIEW for n in ("total_amount", "issue_date"))
    assert result.fields["seller_tax_id"].status == FieldStatus.OK
    good = {**values, "total_amount": "120.00", "issue_date": "2024-01-01"}
    assert failed(validate_invoice(make_result(good, DocType.GENERIC_INVOICE), today=TODAY)) == {}


def test_generic_invoice_with_partial_amounts_has_no_sum_rule() -> None:
    result = validate_invoice(make_result({"total_amount": "$1,200.00"}, DocType.GENERIC_INVOICE), TODAY)
    assert result.checks == []


def test_eval_labels_pass_every_rule() -> None:
    """The real, checked labels must not trip any rule: guards against rules that cry wolf.

    The one exception is on purpose: cn_044 was issued by a tax-office machine whose printed
    seller name ("高新自助代开七") is not an organisation name, and a clerk should see it.
    """
    name_shape_flags = []
    for label in eval_labels():
        doc_type = LABEL_DOC_TYPES[label["doc_type"]]
        values = {k: v for k, v in label["fields"].items() if v is not None}
        result = validate_invoice(make_result(values, doc_type), today=TODAY)
        problems = failed(result)
        name_shape_flags += [(label["id"], rule) for rule in problems if rule.startswith("name_shape")]
        problems = {rule: v for rule, v in problems.items() if not rule.startswith("name_shape")}
        assert problems == {}, label["id"]
        if any(rule.startswith("name_shape") for rule in failed(result)):
            continue
        assert result.status == DocumentStatus.OK, (
            label["id"],
            result.to_dict(include_lines=False)["fields"],
        )
    assert name_shape_flags == [("cn_044", "name_shape:seller_name")]


def test_cut_off_ocr_names_go_to_review() -> None:
    values = {"seller_name": "奇点同舟餐饮管理", "buyer_name": "张伟"}
    result = validate_invoice(make_result(values), today=TODAY)
    assert result.fields["seller_name"].status == FieldStatus.NEEDS_REVIEW
    assert "cut off" in result.fields["seller_name"].reasons[-1]
    assert result.fields["buyer_name"].status == FieldStatus.OK  # a person's name
    whole = validate_invoice(make_result({"seller_name": "奇点同舟餐饮管理（北京）有限公司"}), today=TODAY)
    assert whole.fields["seller_name"].status == FieldStatus.OK
    exact = make_result(values)
    exact.fields["seller_name"].source = FieldSource.TEXT_LAYER
    assert validate_invoice(exact, today=TODAY).fields["seller_name"].status == FieldStatus.OK


@pytest.mark.parametrize(
    ("text_source", "want"), [("text_layer", FieldSource.TEXT_LAYER), ("ocr", FieldSource.OCR)]
)
def test_a_field_not_found_names_where_it_was_looked_for(text_source: str, want: FieldSource) -> None:
    """A missing field's source is the page's (its text layer or OCR), not always OCR."""
    values = {k: v for k, v in E_INVOICE.items() if k != "check_code"}
    result = make_result(values)
    result.pages = [PageInfo(0, 1700, 1100, text_source)]
    validate_invoice(result, today=TODAY)
    found = result.fields["check_code"]
    assert found.value is None and NOT_FOUND in found.reasons
    assert found.source == want


def test_extraction_gives_missing_fields_the_page_source() -> None:
    from pipeline.extract import extract_fields
    from pipeline.model import TextLine, polygon_from_rect

    lines = [
        TextLine("电子发票（普通发票）", 1.0, polygon_from_rect(600, 60, 1000, 90)),
        TextLine("发票号码：25447000001115703415", 1.0, polygon_from_rect(1300, 60, 1900, 90)),
        TextLine("开票日期：2025年09月23日", 1.0, polygon_from_rect(1300, 100, 1900, 130)),
    ]
    for source in (FieldSource.TEXT_LAYER, FieldSource.OCR):
        fields = extract_fields(lines, source, 0.9).fields
        missing = [name for name, found in fields.items() if found.value is None]
        assert missing and all(fields[name].source == source for name in missing), source
