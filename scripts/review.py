#!/usr/bin/env python3
"""Terminal review for servers without a browser: ``invoices review --tui`` with the same options.

    python scripts/review.py --store ./invoice-store --reviewer alice

Walks every stored invoice with fields that need review. For each field it prints the value, why it
needs review and the QR-code value, and writes the crop of the page around the field to a PNG whose
path it prints. Enter accepts, typing corrects, ``s`` skips, ``n`` moves to the next invoice, ``q`` quits.
"""

from __future__ import annotations

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["review", "--tui", *sys.argv[1:]]))
