"""The review page: a small local web server (standard library only) and one HTML page.

It listens on 127.0.0.1 only, and every path starts with a random token (``/<token>/...``): a request
without the right token gets 403, so other local users and web pages cannot read invoices or write
corrections. Endpoints, all under ``/<token>/``:

    GET  /                                        the page (pipeline/review/page.html)
    GET  api/queue                                invoices with fields to review
    GET  api/documents/<id>                       one invoice: its fields to review, pages
    GET  api/documents/<id>/pages/<n>.png         the stored page image (n from 0)
    GET  api/documents/<id>/crops/<field>.png     the page around the field's box
    POST api/documents/<id>/fields/<field>        {"value": "...", "accept": false} -> 200, or 400 + message

Store access runs on one worker thread: the SQLite index may only be used from the thread that opened
it, and corrections to the same invoice must not interleave.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from pipeline.errors import ConfigError, NotFound, PipelineError
from pipeline.review.corrections import (
    DEFAULT_REVIEW_BELOW,
    ReviewInputError,
    apply_correction,
    display_value,
    fields_to_review,
    ledger_values,
    review_queue,
)
from pipeline.review.images import PageCache, crop_png, page_png
from pipeline.store import open_store

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
_DOCUMENT_ID = re.compile(r"^[0-9a-f]{6,64}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PAGE_FILE = re.compile(r"^(\d{1,4})\.png$")
_CROP_FILE = re.compile(r"^([a-z][a-z0-9_]{0,63})\.png$")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}

T = TypeVar("T")


def page_html() -> bytes:
    return resources.files("pipeline.review").joinpath("page.html").read_bytes()


def document_payload(store: Store, document_id: str) -> dict[str, Any]:
    """What the page shows for one invoice."""
    result = store.load_result(document_id)
    ledger = ledger_values(store, result.document_id)
    return {
        "document_id": result.document_id,
        "source_name": result.source_name,
        "doc_type": str(result.doc_type),
        "status": str(result.status),
        "pages": [{"index": p.index, "width": p.width, "height": p.height} for p in result.pages],
        "fields": [item.to_dict() for item in fields_to_review(result, ledger)],
        "summary": {
            name: display_value(result.value(name))
            for name in ("seller_name", "vendor_name", "invoice_number", "issue_date", "total_amount")
            if result.value(name) not in (None, "", [])
        },
    }


class ReviewServer:
    """The server and its store; ``start()`` serves in a thread, ``serve_forever()`` in this one.

    ``store`` is a store location, or a function that opens the store (called on the store thread).
    """

    def __init__(
        self,
        store: str | Callable[[], Store],
        reviewer: str,
        port: int = 0,
        token: str | None = None,
        review_below: float = DEFAULT_REVIEW_BELOW,
    ) -> None:
        self.reviewer = reviewer
        self.token = token or secrets.token_urlsafe(24)
        self.review_below = review_below
        self.pages = PageCache()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-store")
        opener = (lambda: open_store(store)) if isinstance(store, str) else store
        try:
            self._store: Store = self._executor.submit(opener).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        try:
            self.httpd = _Server((HOST, port), _Handler)
        except OSError as exc:
            self._close_store()
            raise ConfigError(
                f"cannot listen on {HOST}:{port}: {exc.strerror}; choose another --port"
            ) from exc
        self.httpd.app = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/{self.token}/"

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` on the store's thread."""
        return self._executor.submit(fn, self._store, *args).result()

    def start(self) -> ReviewServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="review-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()
        self._close_store()

    def _close_store(self) -> None:
        self._executor.submit(lambda: self._store.close()).result()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> ReviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what the endpoints do (on the store thread) -----------------------------------

    def queue(self, store: Store) -> dict[str, Any]:
        entries = review_queue(store)
        return {
            "reviewer": self.reviewer,
            "documents": [entry.to_dict() for entry in entries],
            "fields": sum(len(entry.fields) for entry in entries),
        }

    def correct(self, store: Store, document_id: str, field: str, body: dict[str, Any]) -> dict[str, Any]:
        value = body.get("value")
        if value is not None and not isinstance(value, str):
            raise ReviewInputError("the value must be text")
        accept = bool(body.get("accept", False))
        before = display_value(store.load_result(document_id).value(field))
        result = apply_correction(
            store, document_id, field, value, self.reviewer, accept=accept, review_below=self.review_below
        )
        after = display_value(result.value(field))
        return {
            "action": "accept" if after == before else "correct",
            "field": field,
            "value": after,
            "document": document_payload(store, result.document_id),
            "remaining": sum(len(entry.fields) for entry in review_queue(store)),
        }

    def crop(self, store: Store, document_id: str, field: str) -> bytes:
        result = store.load_result(document_id)
        found = result.fields.get(field)
        if found is None or found.box is None:
            raise NotFound(f"field {field} has no box on the page")
        return crop_png(store, result.document_id, found.box, self.pages)

    def page(self, store: Store, document_id: str, index: int) -> bytes:
        result = store.load_result(document_id)
        return page_png(store, result.document_id, index)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: ReviewServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "invoices-review"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ---- responses -----------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=600" if cache else "no-store")
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # ---- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _authorised(self, parts: list[str]) -> bool:
        app = self.server.app
        given = parts[1] if len(parts) > 1 else ""
        if not hmac.compare_digest(given.encode(), app.token.encode()):
            return False
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        return host in LOCAL_HOSTS

    def _dispatch(self, method: str) -> None:
        parts = [unquote(part) for part in urlsplit(self.path).path.split("/")]
        if not self._authorised(parts):
            body = json.dumps({"error": "forbidden: wrong or missing token"}).encode()
            self.close_connection = True
            self._send(HTTPStatus.FORBIDDEN, body, "application/json; charset=utf-8")
            return
        route = parts[2:]
        app = self.server.app
        try:
            if method == "POST":
                self._post(app, route)
            else:
                self._get(app, route)
        except ReviewInputError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except NotFound as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except PipelineError as exc:
            log.warning("review request %s %s failed: %s", method, route, exc)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
        except Exception:
            log.exception("review request %s %s failed", method, route)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error: see the server's log")

    def _get(self, app: ReviewServer, route: list[str]) -> None:
        if not route:  # /<token> without the slash: relative links need it
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/{app.token}/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route == [""]:
            self._send(HTTPStatus.OK, page_html(), "text/html; charset=utf-8")
            return
        if route == ["api", "queue"]:
            self._json(HTTPStatus.OK, app.call(app.queue))
            return
        if len(route) >= 3 and route[:2] == ["api", "documents"] and _DOCUMENT_ID.match(route[2]):
            document_id, rest = route[2], route[3:]
            if not rest:
                self._json(HTTPStatus.OK, app.call(document_payload, document_id))
                return
            if len(rest) == 2 and rest[0] == "pages" and (match := _PAGE_FILE.match(rest[1])):
                png = app.call(app.page, document_id, int(match.group(1)))
                self._send(HTTPStatus.OK, png, "image/png", cache=True)
                return
            if len(rest) == 2 and rest[0] == "crops" and (match := _CROP_FILE.match(rest[1])):
                png = app.call(app.crop, document_id, match.group(1))
                self._send(HTTPStatus.OK, png, "image/png", cache=True)
                return
        self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _post(self, app: ReviewServer, route: list[str]) -> None:
        if not (
            len(route) == 5
            and route[:2] == ["api", "documents"]
            and _DOCUMENT_ID.match(route[2])
            and route[3] == "fields"
            and _FIELD.match(route[4])
        ):
            self._error(HTTPStatus.NOT_FOUND, "no such endpoint")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
            return
        raw = self.rfile.read(length)
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, 'send JSON: {"value": "..."}')
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ReviewInputError("the request is not valid JSON") from None
        if not isinstance(body, dict):
            raise ReviewInputError('send a JSON object: {"value": "..."}')
        self._json(HTTPStatus.OK, app.call(app.correct, route[2], route[4], body))


def _has_display() -> bool:
    """A graphical browser can open (on Linux without one, webbrowser would start a text browser)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(
    store: str | Callable[[], Store],
    reviewer: str,
    port: int = 0,
    open_browser: bool = True,
    review_below: float = DEFAULT_REVIEW_BELOW,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the review page until Ctrl+C."""
    server = ReviewServer(store, reviewer, port=port, review_below=review_below)
    try:
        announce(f"Review page: {server.url}")
        announce(f"reviewing as {reviewer}; the page works only with this address (Ctrl+C stops)")
        if open_browser and (not _has_display() or not webbrowser.open(server.url)):
            announce("(no browser could be opened here: open the address above)")
        server.serve_forever()
    except KeyboardInterrupt:
        announce("stopped")
    finally:
        server.close()
