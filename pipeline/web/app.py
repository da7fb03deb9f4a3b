"""The app: FastAPI routes for the pages and the API, behind ``security.Guard``; errors mapped here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from pipeline import __version__
from pipeline.errors import InputError, NotFound, PipelineError
from pipeline.web import api, views
from pipeline.web.security import Guard
from pipeline.web.state import AppState

log = logging.getLogger(__name__)

DESCRIPTION = """Invoices stored by `invoices ingest` / `invoices watch`, for ERPs and other systems.

Every request carries the token `invoices serve` printed in the `X-Invoices-Token` header
(or `Authorization: Bearer <token>`). Writes are POSTs; cross-origin writes are refused.
Errors answer `{"error": "..."}`.
"""


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="invoices",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI would load its scripts from the internet
        redoc_url=None,
    )
    app.state.web = state
    app.include_router(api.router)
    app.include_router(views.router)

    def answer(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return views.error_page(request, status, message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # The framework's own answers (unknown path, wrong method, unreadable body) in the app's shape.
        response = answer(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(InputError)
    async def refused(request: Request, exc: InputError) -> Response:
        return answer(request, 400, str(exc))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return answer(request, 404, str(exc))

    @app.exception_handler(PipelineError)
    async def failed(request: Request, exc: PipelineError) -> Response:
        log.warning("%s %s failed: %s", request.method, request.scope.get("route_name", ""), exc)
        return answer(request, 500, str(exc))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.error("request failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return answer(request, 500, "internal error: see the server's log")

    app.add_middleware(Guard, token=state.token, loopback=state.loopback)
    return app
