"""E-invoice XML -> the invoice's own data (and a page drawn from it).

Three shapes are read, wherever they occur (a file of their own, or attached inside an OFD):

* 数电票 XML, root ``EInvoice`` (TaxSupervisionInfo, SellerInformation, BuyerInformation,
  BasicInformation, IssuItemInformation per line);
* the older e-invoice XML, root ``eInvoice`` in the ``fp:`` namespace
  ``http://www.edrm.org.cn/schema/e-invoice/2019``;
* the XBRL-style ``inv:`` invoice some issuers attach to their OFD files.

Every XML is parsed by ``parse_safely``: no DTD, so no entity expansion (billion laughs) and no
external entity (nothing is read from disk or the network).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from pipeline.config import Settings
from pipeline.errors import EInvoiceUnreadable, UnsafeInput
from pipeline.fapiao import format_amount_words, region_of_code
from pipeline.load.einvoice import build, xml_page
from pipeline.model import Page, StructuredInvoice

FP_NAMESPACE = "http://www.edrm.org.cn/schema/e-invoice/2019"
DECLARED_PREFIX = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
USED_PREFIX = re.compile(rb"</?([A-Za-z_][\w.-]*):[A-Za-z_]")


def parse_safely(data: bytes, what: str) -> Element:
    """Parse XML with DTDs (hence entities) and external references refused.

    Some producers write namespace prefixes they never declare (``ofd:`` inside a CustomTag file,
    even ``<:eInvoice xmlns:="">``): those are repaired, since the element names are what counts.
    """
    data = _utf8(data)
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeInput(
            f"{what} declares a DTD or entities ({type(exc).__name__}): refused, e-invoice XML never "
            "needs them (they are how XML bombs and external-entity attacks work)"
        ) from exc
    except ParseError as exc:
        repaired = _repair_prefixes(data)
        if repaired != data:
            try:
                return fromstring(repaired, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            except (ParseError, DefusedXmlException):
                pass
        raise EInvoiceUnreadable(f"{what} is not well-formed XML: {exc}") from exc
    except (ValueError, UnicodeError) as exc:
        raise EInvoiceUnreadable(f"{what} is not readable XML: {exc}") from exc


DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_-]+)["']""")


def _utf8(data: bytes) -> bytes:
    """GBK/GB18030 XML (common from Chinese issuers) as UTF-8: expat reads only UTF-8/16 and Latin-1."""
    found = DECLARED_ENCODING.match(data[:200])
    if found is None or found.group(1).lower() not in (b"gbk", b"gb2312", b"gb18030", b"cp936"):
        return data
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise EInvoiceUnreadable(f"XML says it is {found.group(1).decode()} but is not: {exc}") from exc
    return re.sub(r"encoding\s*=\s*[\"'][A-Za-z0-9_-]+[\"']", 'encoding="UTF-8"', text, count=1).encode()


def _repair_prefixes(data: bytes) -> bytes:
    fixed = re.sub(rb'\sxmlns:\s*=\s*"[^"]*"', b"", data)
    fixed = re.sub(rb"<(/?):", rb"<\1", fixed)
    declared = set(DECLARED_PREFIX.findall(fixed)) | {b"xml"}
    missing = sorted(set(USED_PREFIX.findall(fixed)) - declared)
    if missing:
        declarations = b"".join(b' xmlns:%s="urn:undeclared:%s"' % (p, p) for p in missing)
        fixed = re.sub(rb"(<[A-Za-z_][\w.:-]*)", lambda m: m.group(1) + declarations, fixed, count=1)
        # The XML declaration itself starts with "<?": the substitution above skipped it.
    return fixed


def local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if local(child.tag) == name)


def child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next(children(element, name), None)
    return element


def text(element: Element | None, *path: str) -> str | None:
    found = child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def descendant(element: Element, name: str) -> Element | None:
    return next((e for e in element.iter() if local(e.tag) == name), None)


def deep_text(element: Element, *names: str) -> str | None:
    """The first non-empty text of an element with one of these names, anywhere below."""
    for name in names:
        for found in element.iter():
            if local(found.tag) == name and found.text and found.text.strip():
                return found.text.strip()
    return None


# ---- the three shapes --------------------------------------------------------------------------


def _from_fp(root: Element) -> tuple[dict[str, str | None], list[dict[str, str | None]], dict[str, str]]:
    values = {
        "invoice_code": text(root, "InvoiceCode"),
        "invoice_number": text(root, "InvoiceNo"),
        "issue_date": text(root, "IssueDate"),
        "check_code": text(root, "InvoiceCheckCode"),
        "machine_no": text(root, "MachineNo"),
        "buyer_name": text(root, "Buyer", "BuyerName"),
        "buyer_tax_id": text(root, "Buyer", "BuyerTaxID"),
        "seller_name": text(root, "Seller", "SellerName"),
        "seller_tax_id": text(root, "Seller", "SellerTaxID"),
        "amount_excl_tax": text(root, "TaxExclusiveTotalAmount"),
        "tax_amount": text(root, "TaxTotalAmount"),
        "total_amount": text(root, "TaxInclusiveTotalAmount"),
        "total_amount_words": text(root, "TaxInclusiveTotalAmountWithWords"),
    }
    items = [
        {
            "name": text(goods, "Item"),
            "spec": text(goods, "Specification"),
            "unit": text(goods, "MeasurementDimension"),
            "quantity": text(goods, "Quantity"),
            "unit_price": text(goods, "Price"),
            "amount": text(goods, "Amount"),
            "tax_rate": text(goods, "TaxScheme"),
            "tax_amount": text(goods, "TaxAmount"),
        }
        for goods in root.iter()
        if local(goods.tag) == "GoodsInfo"
    ]
    extra = {
        "remarks": text(root, "Note") or "",
        "original_invoice_code": text(root, "OriginalInvoiceCode") or "",
        "original_invoice_number": text(root, "OriginalInvoiceNo") or "",
        "type_code": text(root, "TypeCode") or "",
    }
    return values, items, extra


def _from_digital(root: Element) -> tuple[dict[str, str | None], list[dict[str, str | None]], dict[str, str]]:
    data = child(root, "EInvoiceData") or root
    seller = descendant(data, "SellerInformation")
    buyer = descendant(data, "BuyerInformation")
    basic = descendant(data, "BasicInformation")
    supervision = descendant(root, "TaxSupervisionInfo")
    values = {
        "invoice_number": text(supervision, "InvoiceNumber") or deep_text(root, "InvoiceNumber", "EIid"),
        "issue_date": text(supervision, "IssueTime") or deep_text(root, "IssueTime", "RequestTime"),
        "buyer_name": text(buyer, "BuyerName"),
        "buyer_tax_id": text(buyer, "BuyerIdNum"),
        "seller_name": text(seller, "SellerName"),
        "seller_tax_id": text(seller, "SellerIdNum"),
        # The invoice's totals; the line field TotaltaxIncludedAmount is per item, never read here.
        "amount_excl_tax": text(basic, "TotalAmWithoutTax"),
        "tax_amount": text(basic, "TotalTaxAm"),
        "total_amount": text(basic, "TotalTax-includedAmount"),
        "total_amount_words": text(basic, "TotalTax-includedAmountInChinese"),
    }
    items = [
        {
            "name": text(line, "ItemName"),
            "spec": text(line, "SpecMod"),
            "unit": text(line, "MeaUnits"),
            "quantity": text(line, "Quantity"),
            "unit_price": text(line, "UnPrice"),
            "amount": text(line, "Amount"),
            "tax_rate": text(line, "TaxRate"),
            "tax_amount": text(line, "ComTaxAm"),
        }
        for line in root.iter()
        if local(line.tag) == "IssuItemInformation"
    ]
    kind = ""
    label = descendant(root, "EInvoiceType")
    if label is not None:
        kind = text(label, "LabelName") or ""
    additional = descendant(data, "AdditionalInformation")
    extra = {"remarks": text(additional, "Remark") or "", "invoice_kind": kind}
    return values, items, extra


def _from_xbrl(root: Element) -> tuple[dict[str, str | None], list[dict[str, str | None]], dict[str, str]]:
    values = {
        "invoice_code": text(root, "CodeOfInvoice"),
        "invoice_number": text(root, "NumberOfInvoice"),
        "issue_date": text(root, "DateOfIssue"),
        "check_code": text(root, "IdentifyingCode"),
        "machine_no": text(root, "NumberOfInvoiceMachine"),
        "buyer_name": text(root, "NameOfPurchaser"),
        "buyer_tax_id": text(root, "TaxpayerIdentificationNumberUnifiedSocialCreditCodeOfPurchaser"),
        "seller_name": text(root, "NameOfSeller"),
        "seller_tax_id": text(root, "TaxpayerIdentificationNumberUnifiedSocialCreditCodeOfSeller"),
        "amount_excl_tax": text(root, "TotalAmountExcludingTax"),
        "tax_amount": text(root, "TotalTaxAmount"),
        "total_amount": text(root, "TaxIncludedAmountInFigures"),
        "total_amount_words": text(root, "TaxIncludedAmountInWords"),
    }
    items = [
        {
            "name": text(line, "NameOfTaxableGoodsOrServices"),
            "spec": text(line, "Specification"),
            "unit": text(line, "UnitOfGoodsOrServices"),
            "quantity": text(line, "QuantityOfGoodsOrServices"),
            "unit_price": text(line, "UnitPriceOfGoodsOrServices"),
            "amount": text(line, "AmountExcludingTax"),
            "tax_rate": text(line, "TaxRate"),
            "tax_amount": text(line, "TaxAmount"),
        }
        for line in root
        if local(line.tag) == "InformationOfTaxableGoodsOrServicesDetailItemsTuple"
    ]
    extra = {"remarks": text(root, "Remarks") or "", "invoice_kind": text(root, "TypeOfInvoice") or ""}
    return values, items, extra


READERS = {"eInvoice": _from_fp, "EInvoice": _from_digital, "xbrl": _from_xbrl}


def read_invoice_xml(
    root: Element,
) -> tuple[dict[str, str | None], list[dict[str, str | None]], dict[str, str]] | None:
    """The values, items and extras of an invoice XML tree, or None when it is not one."""
    name = local(root.tag)
    if name not in READERS:
        nested = next((e for e in root.iter() if local(e.tag) in ("eInvoice", "EInvoice")), None)
        if nested is None:
            return None
        root, name = nested, local(nested.tag)
    return READERS[name](root)


def structured_from_xml(data: bytes, what: str) -> StructuredInvoice | None:
    found = read_invoice_xml(parse_safely(data, what))
    if found is None:
        return None
    values, items, extra = found
    structured = build([(what, values, items)])
    if structured is not None:
        structured.extra.update({key: value for key, value in extra.items() if value})
    return structured


def xml_title(structured: StructuredInvoice) -> str:
    """The title the invoice's kind has on paper (the XML does not carry the printed one)."""
    kind = structured.extra.get("invoice_kind", "")
    if "invoice_code" not in structured.fields and len(structured.fields.get("invoice_number", "")) == 20:
        return "电子发票（增值税专用发票）" if "专用" in kind else "电子发票（普通发票）"
    # Tax-control e-invoices are titled by the region their code names: 北京增值税电子普通发票.
    region = region_of_code(structured.fields.get("invoice_code", "")) or ""
    return f"{region}增值税电子专用发票" if "专用" in kind else f"{region}增值税电子普通发票"


def load_xml(data: bytes, settings: Settings) -> list[Page]:
    """An e-invoice XML file: its data, and a page drawn from it for review and reports."""
    structured = structured_from_xml(data, "XML file")
    if structured is None:
        raise EInvoiceUnreadable(
            "XML file is not an e-invoice (expected a 数电票 EInvoice or an eInvoice in the fp: namespace)"
        )
    words = structured.fields.get("total_amount_words", "")
    if not words and "total_amount" in structured.fields:
        # Drawn on the page only (the extractor reads it from there): the XML does not say it.
        words = format_amount_words(Decimal(structured.fields["total_amount"]))
    return [xml_page(structured, xml_title(structured), settings.render_dpi, words)]
