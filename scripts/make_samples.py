#!/usr/bin/env python3
"""Generate realistic sample invoices with exact ground truth (deterministic, seeded).

Two modes:

* ``python scripts/make_samples.py`` (re)writes the committed sample set in ``samples/``;
  ``--case NAME`` limits it to some cases, ``--list`` prints them.
* ``python scripts/make_samples.py --out DIR --count N [--seed S] [--pdf]`` writes N random
  invoices (random kind, random degradations) into DIR for benchmarks.

Every document ``<case>.<ext>`` comes with ``<case>.expected.json``::

    {"case": ..., "doc_type": "vat_special_paper" | "vat_general_paper" | "vat_e_invoice_general"
                              | "fully_digital_general" | "fully_digital_special" | "generic_invoice",
     "variant": "...", "files": [document file names],
     "fields": {title, invoice_code, invoice_number, issue_date, check_code, machine_no,
                buyer_name, buyer_tax_id, seller_name, seller_tax_id, amount_excl_tax,
                tax_amount, total_amount, total_amount_words, tax_rates},
     "items": [{name, spec, unit, quantity, unit_price, amount, tax_rate, tax_amount}],
     "qr_payload": "01,..." | null,
     "degradations": [{"op": ..., ...}], "image": {...} | null, "generator": {...}}

English invoices (``generic_invoice``) have the fields vendor_name, invoice_number, issue_date,
total_amount, amount_excl_tax, tax_amount, currency, vendor_tax_id.  Amounts are strings with
two decimals, dates ISO (YYYY-MM-DD), null where the kind of invoice has no such field.

The committed set (``samples/``, at most 26 files and 5 MB):

=====================================  ======================================================
vat_special_clean.png                  paper 增值税专用发票, clean 200 dpi scan (240x146 mm)
vat_general_photo.jpg                  paper 增值税普通发票, phone photo: perspective, darker
                                       textured table, uneven light and a shadow
vat_e_general.pdf                      增值税电子普通发票, born-digital PDF with a text layer
fully_digital_general.pdf              全电 电子发票（普通发票）, born-digital PDF with a text layer
fully_digital_special_rot90.png        全电 电子发票（增值税专用发票）, image rotated 90°
vat_special_seal_rot180.jpg            paper 专票 rotated 180°, the seal over the seller's name
vat_general_degraded.jpg               paper 普票 rotated 3°, blurred, noisy, heavy JPEG artefacts
vat_e_general_skew.png                 电子普通发票 image rotated a few degrees, uneven light
en_invoice.png / en_invoice.pdf        one English invoice as a 200 dpi image and as a PDF with
                                       a text layer (one expected.json for both)
vat_e_general_private.pdf              电子普通发票 PDF whose buyer is 个人: no buyer ID printed
fully_digital_general_private.jpg      全电 普通发票 image whose buyer is a person's name, ID empty
vat_general_private_scan.jpg           paper 普票 scan, a person as buyer: ID, address, bank empty
corrupt_truncated.jpg                  the first third of a real JPEG: must fail with a clear
                                       error (no expected.json)
=====================================  ======================================================

Ground truth is exact by construction: each line's tax = round(amount x rate, 2) (half up),
totals are sums, ``total_amount_words`` comes from :func:`amount_in_words` (元 on paper and
provincial e-invoices, 圆 on 全电 invoices, as printed on real ones), taxpayer IDs are valid
GB 32100-2015 unified social credit codes, invoice codes follow docs FAPIAO.md (region 1100 =
Beijing, year = the issue year: 10-digit ``1100YYB130`` on 专票, 12-digit ``01100YYBBB04`` on
普票, ``...11`` on 电子普票; 全电 have a 20-digit number ``YY11`` + channel + sequence and no
code).  QR payload: ``01,<type>,<code>,<number>,<amount>,<YYYYMMDD>,<check code>,<4 hex>``:
types 01 专票 / 04 普票 / 10 电子普票 carry the amount excluding tax and a trailing comma;
全电 use types 31 (专票) / 32 (普票), an empty code and the total including tax, as real ones do.

Layout follows real invoices (QR top left, centred title with the red 监制章, code / number /
date / check code top right, buyer and seller blocks, 密码区, items table, 价税合计, 备注,
收款人 / 复核 / 开票人, the seller's red oval 发票专用章 with its tax ID).  Form print is the
brownish red of real forms, values black (blue-black and slightly shifted on paper).  Values
are at least 3.4 mm high (27 px at 200 dpi).  Needs the WenQuanYi fonts (``apt-get install
fonts-wqy-microhei``) and DejaVu; PDFs need ``fpdf2`` (fonts are embedded as subsets).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# The generator is the package scripts/samplegen/ next to this script: put this folder on sys.path so
# it imports also when the script is loaded by file path (tests/test_make_samples.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from samplegen.cases import SAMPLE_CASES
from samplegen.money import amount_in_words, make_uscc, uscc_is_valid  # noqa: F401  (tests use gen.<name>)
from samplegen.writing import DEFAULT_SEED, SAMPLES_DIR, generate_random, generate_samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_samples.py",
        description="Generate realistic sample invoices (Chinese VAT fapiao and English) with exact "
        "ground truth (<case>.expected.json). Without --count: the committed sample set into samples/.",
        epilog="Examples: make_samples.py  |  make_samples.py --case vat_general_photo  |  "
        "make_samples.py --out /tmp/bench --count 200 --seed 7 --pdf",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: samples/ of the repo)"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="write N random invoices (random kinds and degradations)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--pdf", action="store_true", help="with --count: write some born-digital ones as PDF"
    )
    parser.add_argument("--prefix", default="inv", help="with --count: file name prefix (default inv)")
    parser.add_argument("--case", action="append", choices=sorted(SAMPLE_CASES), help="only this sample case")
    parser.add_argument("--list", action="store_true", help="list the sample cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case, builder in SAMPLE_CASES.items():
            print(f"{case:32s} {builder.__name__}")
        return 0
    if args.count is not None:
        if args.count < 0:
            parser.error("--count must be >= 0")
        if args.out is None:
            parser.error("--count needs --out DIR (samples/ holds only the committed set)")
        written = generate_random(args.out, args.count, args.seed, args.pdf, args.prefix)
    else:
        written = generate_samples(args.out or SAMPLES_DIR, args.seed, args.case)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files ({total / 1e6:.2f} MB) to {(args.out or SAMPLES_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
