"""The local web app for the finance team: search, the invoice, statistics, the review queue, batches and
the hot folder, and the JSON API under ``/api/v1`` (``invoices serve``; ``invoices review`` opens its
review view). FastAPI on uvicorn, served on 127.0.0.1 behind a random token.
"""

from __future__ import annotations

from pipeline.web.server import WebServer, serve

__all__ = ["WebServer", "serve"]
