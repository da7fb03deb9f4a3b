"""The app's front door (pure ASGI): token, Host and Origin checks, and the security headers.

* Pages and images live under ``/<token>/``; the JSON API under ``/api/v1`` takes the token in a
  header (``X-Invoices-Token``, or ``Authorization: Bearer``), never in a cookie.
* Every request that is not GET or HEAD must carry the token in that header, whatever its path: a form
  or script on another site cannot add it (a custom header needs a CORS preflight, which is refused),
  so writes cannot be forged. A POST whose ``Origin`` is another site is refused as well.
* Bound to loopback, only loopback ``Host`` names are answered (DNS rebinding).
* The token never reaches a log: uvicorn's access log is off, and this logs paths with it masked.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-invoices-token"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def host_name(host_header: str) -> str:
    """``Host`` without the port ("[::1]:8080" -> "[::1]")."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _same(given: str, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


class Guard:
    def __init__(self, app: Callable[..., Awaitable[None]], token: str, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        path: str = scope["path"]
        method: str = scope["method"]
        api = path == "/api" or path.startswith("/api/")
        host = headers.get("host", "")
        if self.loopback and host_name(host) not in LOCAL_HOSTS:
            await _deny(send, api, "forbidden: this app answers only to 127.0.0.1 / localhost")
            return
        given = headers.get(TOKEN_HEADER, "")
        bearer = headers.get("authorization", "")
        if not given and bearer[:7].lower() == "bearer ":
            given = bearer[7:].strip()
        header_ok = _same(given, self.token)
        api_in_path = False
        if api:
            if not header_ok:
                await _deny(
                    send, True, "forbidden: wrong or missing token (send it in the X-Invoices-Token header)"
                )
                return
        else:
            parts = path.split("/", 2)
            if len(parts) < 2 or not _same(parts[1], self.token):
                await _deny(send, False, "forbidden: wrong or missing token")
                return
            if len(parts) == 2:  # /<token> without the slash: relative links need it
                await _redirect(send, f"/{self.token}/")
                return
            api_in_path = parts[2] == "api" or parts[2].startswith("api/")
            scope = dict(scope, root_path=scope.get("root_path", "") + "/" + self.token)
        if method not in SAFE_METHODS:
            if not header_ok:
                await _deny(send, api, "forbidden: a write needs the token in the X-Invoices-Token header")
                return
            origin = headers.get("origin", "")
            if origin and origin != "null" and urlsplit(origin).netloc.lower() != host.lower():
                await _deny(send, api, "forbidden: cross-origin request")
                return
            if headers.get("sec-fetch-site", "") == "cross-site":
                await _deny(send, api, "forbidden: cross-site request")
                return
        if not api and api_in_path:  # the API answers only at /api/v1, with the token in a header
            await _deny(send, True, "not found: the API is under /api/v1 with the token in a header", 404)
            return
        log.debug("%s %s", method, path.replace(self.token, "<token>"))

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *[(key, value) for key, value in SECURITY_HEADERS if key not in present],
                ]
                if b"cache-control" not in present:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _deny(send: Send, api: bool, message: str, status: int = 403) -> None:
    if api:
        body = json.dumps({"error": message}).encode()
        kind = b"application/json"
    else:
        text = message.replace("&", "&amp;").replace("<", "&lt;")
        body = (
            f"<!doctype html><meta charset=utf-8><title>{status}</title>"
            f"<h1>{status}</h1><p>{text}</p><p>Open the address that <code>invoices serve</code> printed.</p>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 308,
            "headers": [(b"location", location.encode()), (b"content-length", b"0"), *SECURITY_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": b""})
