"""`invoices serve`: the web app for the finance team (search, invoice, statistics, review, hot folder)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.cli.common import BadArgs, add_common, open_store_for, settings_from


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.review.corrections import default_reviewer
    from pipeline.web import serve
    from pipeline.web.server import LOOPBACK, is_loopback
    from pipeline.web.state import read_token_file

    settings = settings_from(args)
    host = args.host or LOOPBACK
    token = read_token_file(args.token_file) if args.token_file else None
    if not is_loopback(host) and token is None:
        raise BadArgs(
            f"--host {host} is not loopback: it needs --token-file FILE (a secret of 16+ characters)"
        )
    serve(
        lambda: open_store_for(settings),
        reviewer=(args.reviewer or "").strip() or default_reviewer(),
        port=args.port,
        open_browser=not args.no_browser,
        review_below=settings.review_below,
        announce=lambda line: print(line, flush=True),
        host=host,
        token=token,
        folder=args.folder,
        settings=settings,
        view=args.view,
    )
    return 0


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    parser.add_argument("--reviewer", default=None, help="name kept with each correction (default: $USER)")
    parser.add_argument(
        "--host",
        default=None,
        help="address to listen on (default 127.0.0.1). Anything else is reachable from other machines: "
        "it needs --token-file and prints a warning",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="read the access token from this file instead of making a random one (needed with --host)",
    )
    parser.add_argument(
        "--folder", type=Path, default=None, help="the hot folder to show (failed files, retry, counts)"
    )


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="the web app: search, invoices, statistics, review, batches and hot folder (127.0.0.1)",
        description=(
            "One local web app for the finance team, in Chinese and English:\n"
            "  search     one box finds an invoice by any key (number, code, seller or buyer,\n"
            "             taxpayer ID, amount, text on the page), with filters; sortable, paged\n"
            "  invoice    the pages with field boxes, every field's value, status and reasons, the\n"
            "             rules, the ledger outcome, the audit history, downloads; correct a field\n"
            "  statistics per month, seller, tax rate and kind, rates over time; CSV/XLSX export\n"
            "  review     the review queue (as `invoices review`)\n"
            "  folder     batches, and with --folder the hot folder: failed files, retry one\n"
            "A JSON API for ERPs lives under /api/v1 (OpenAPI at /api/v1/openapi.json; the token in\n"
            "the X-Invoices-Token header).\n\n"
            "It listens on 127.0.0.1 only, behind a random token in the printed address. Examples:\n\n"
            "  invoices serve                                  # opens the browser\n"
            "  invoices serve --no-browser --port 8765         # over ssh -L 8765:127.0.0.1:8765\n"
            "  invoices serve --folder /srv/scans              # with the hot folder's page\n"
            "  invoices serve --host 0.0.0.0 --token-file /etc/invoices/token   # other machines (warns)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_server_options(serve)
    add_common(serve)
    serve.set_defaults(func=cmd_serve, view="")
