"""Serving the app with uvicorn: on 127.0.0.1 by default, in this thread or in a background one."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError
from pipeline.review.corrections import DEFAULT_REVIEW_BELOW
from pipeline.web.state import AppState, StoreThread, Uploads, new_token, opener_for

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.store import Store

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebServer:
    """The app and its store; ``start()`` serves in a thread, ``serve_forever()`` in this one.

    ``store`` is a store location, or a function that opens the store (called on the store thread).
    A ``host`` other than loopback needs a ``token`` (from ``--token-file``): a random one printed on
    a shared machine's terminal is not something the other users should be able to guess or read.
    """

    def __init__(
        self,
        store: str | Callable[[], Store],
        reviewer: str,
        port: int = 0,
        token: str | None = None,
        review_below: float = DEFAULT_REVIEW_BELOW,
        host: str = LOOPBACK,
        folder: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        import uvicorn

        from pipeline.watch import HotFolder
        from pipeline.web.app import create_app

        self.host = host
        self.loopback = is_loopback(host)
        if not self.loopback and not token:
            raise ConfigError(
                f"binding {host} (not loopback) needs --token-file FILE: every machine that can reach "
                "the address could otherwise try its way in"
            )
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"hot folder {folder} does not exist or is not a folder")
        self.token = token or new_token()
        self.reviewer = reviewer
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without, a response's two writes (headers, body) wait 40 ms
        # for the client's delayed ACK.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._socket.bind((host.strip("[]"), port))
        except OSError as exc:
            self._socket.close()
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
            ) from exc
        self._socket.listen(128)
        try:
            stores = StoreThread(opener_for(store))
        except BaseException:
            self._socket.close()
            raise
        self.state = AppState(
            stores=stores,
            token=self.token,
            reviewer=reviewer,
            folder=HotFolder(folder) if folder is not None else None,
            review_below=review_below,
            loopback=self.loopback,
            uploads=Uploads(settings),
        )
        self.app = create_app(self.state)
        config = uvicorn.Config(
            self.app,
            log_config=None,  # the CLI configures logging
            access_log=False,  # access lines would hold the token (it is in the pages' paths)
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def address(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.address}/{self.token}/"

    def call(self, fn: Callable[..., object], *args: object) -> object:
        """Run ``fn(store, *args)`` on the store's thread (tests look at the store this way)."""
        return self.state.stores.call(fn, *args)

    def start(self) -> WebServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="web-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the web server did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        self._server.run(sockets=[self._socket])

    def close(self) -> None:
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._thread = None
        self._socket.close()
        self.state.close()

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def has_display() -> bool:
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
    host: str = LOOPBACK,
    token: str | None = None,
    folder: Path | None = None,
    settings: Settings | None = None,
    view: str = "",
) -> None:
    """Serve the app until Ctrl+C (or SIGTERM); ``view`` is the page the browser opens ("review", …)."""
    server = WebServer(
        store,
        reviewer,
        port=port,
        token=token,
        review_below=review_below,
        host=host,
        folder=folder,
        settings=settings,
    )
    try:
        url = server.url + view
        if not server.loopback:
            announce(
                f"WARNING: listening on {host}, not only on this machine: anyone who can reach "
                f"{server.address} and has the token can read and correct invoices. Use HTTPS in front "
                "of it (a reverse proxy) on any network you do not trust."
            )
            announce(f"Invoices: {server.address}/<token from the token file>/{view}")
        else:
            announce(f"Invoices: {url}")
        announce(f"working as {reviewer}; the pages work only with this address (Ctrl+C stops)")
        if open_browser and (not has_display() or not webbrowser.open(url)):
            announce("(no browser could be opened here: open the address above)")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        announce("stopped")
        server.close()
