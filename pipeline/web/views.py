"""The pages: search, invoice, statistics, review, batches and hot folder, help; and the files they show
(page images, crops, the original, the result JSON, exports). Every value goes through Jinja2's
autoescape; views call ``payloads`` / ``pipeline.stats`` on the store's thread, never SQL."""

from __future__ import annotations

import logging
import re
from datetime import date
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline.errors import InputError, NotFound
from pipeline.model import DocType
from pipeline.reconcile.platform import PlatformStatus
from pipeline.reconcile.threeway import LineOutcome
from pipeline.review.images import crop_png, page_png
from pipeline.store.index import DOCUMENT_STATUSES, SEARCH_SORTS, Search
from pipeline.web import charts, payloads
from pipeline.web.i18n import LANGUAGES, labels, pick_language
from pipeline.web.state import AppState

log = logging.getLogger(__name__)

PER_PAGE = 50
_DOCUMENT_ID = re.compile(r"^[0-9a-f]{6,64}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
STATIC = {"app.css": "text/css", "app.js": "text/javascript", "review.js": "text/javascript"}
SEARCH_PARAMS = (
    "q",
    "date_from",
    "date_to",
    "amount_min",
    "amount_max",
    "kind",
    "status",
    "outcome",
    "platform_status",
    "needs_review",
    "source",
    "batch",
)
KINDS = tuple(str(kind) for kind in DocType)
# The three-way outcome codes and platform statuses of `invoices reconcile` (`invoices query --outcome`).
OUTCOMES = tuple(str(code) for code in LineOutcome)
PLATFORM_STATUSES = tuple(str(status) for status in PlatformStatus)

templates = Environment(
    loader=PackageLoader("pipeline.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)


def _web(request: Request) -> AppState:
    state: AppState = request.app.state.web
    return state


def language(request: Request) -> str:
    wanted = request.query_params.get("lang")
    if wanted in LANGUAGES:
        return wanted
    cookie = request.cookies.get("lang")
    if cookie in LANGUAGES:
        return cookie
    return pick_language(request.headers.get("accept-language"))


def root_of(request: Request) -> str:
    """The relative path from this page back to the app's root (the token is never written in a page)."""
    path: str = request.scope["path"]
    root = request.scope.get("root_path", "")
    rest = path[len(root) :] if root and path.startswith(root) else path
    depth = max(0, rest.count("/") - 1)
    return "../" * depth or "./"


def _with(params: dict[str, str], **changes: Any) -> str:
    merged = {**params}
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return "?" + urlencode(merged) if merged else "?"


def render(request: Request, template: str, view: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    params = {key: value for key, value in request.query_params.items() if key != "lang"}
    other = "en" if lang == "zh" else "zh"
    body = templates.get_template(template).render(
        t=labels(lang),
        lang=lang,
        view=view,
        root=root_of(request),
        params=params,
        with_params=lambda **changes: _with(params, **changes),
        switch_url=_with(params, lang=other),
        **context,
    )
    response = HTMLResponse(body, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict", httponly=True)
    return response


def _date(value: str | None, name: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{name}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _float(value: str | None, name: str, problems: list[str]) -> float | None:
    if not value:
        return None
    try:
        number = float(value.replace(",", "").strip())
    except ValueError:
        problems.append(f"{name}: {value!r} is not a number")
        return None
    if number != number or number in (float("inf"), float("-inf")):
        problems.append(f"{name}: {value!r} is not a number")
        return None
    return number


def search_from(params: Any) -> tuple[Search, list[str]]:
    """The search of a page's address; what cannot be read is left out and reported."""
    problems: list[str] = []
    kind = params.get("kind") or None
    status = params.get("status") or None
    outcome = params.get("outcome") or None
    platform_status = params.get("platform_status") or None
    if kind and kind not in KINDS:
        problems.append(f"kind: unknown {kind!r}")
        kind = None
    if status and status not in DOCUMENT_STATUSES:
        problems.append(f"status: unknown {status!r}")
        status = None
    if outcome and outcome not in OUTCOMES:
        problems.append(f"outcome: unknown {outcome!r}")
        outcome = None
    if platform_status and platform_status not in PLATFORM_STATUSES:
        problems.append(f"platform_status: unknown {platform_status!r}")
        platform_status = None
    search = Search(
        q=(params.get("q") or "")[:200],
        date_from=_date(params.get("date_from"), "date_from", problems),
        date_to=_date(params.get("date_to"), "date_to", problems),
        amount_min=_float(params.get("amount_min"), "amount_min", problems),
        amount_max=_float(params.get("amount_max"), "amount_max", problems),
        kind=kind,
        status=status,
        outcome=outcome,
        platform_status=platform_status,
        needs_review=params.get("needs_review") in ("1", "on", "true"),
        source=(params.get("source") or "")[:200] or None,
        batch=_date(params.get("batch"), "batch", problems),
    )
    return search, problems


def _choices() -> dict[str, tuple[str, ...]]:
    return {
        "kinds": KINDS,
        "statuses": DOCUMENT_STATUSES,
        "outcomes": OUTCOMES,
        "platform_statuses": PLATFORM_STATUSES,
    }


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("search", status_code=303)


@router.get("/search")
async def search_view(request: Request) -> HTMLResponse:
    web = _web(request)
    search, problems = search_from(request.query_params)
    sort = request.query_params.get("sort", "date")
    sort = sort if sort in SEARCH_SORTS else "date"
    descending = request.query_params.get("order", "desc") != "asc"
    try:
        page = max(1, min(100_000, int(request.query_params.get("page", "1"))))
    except ValueError:
        page = 1
    answer = await web.stores.run(payloads.search_page, search, sort, descending, page, PER_PAGE)
    pages = max(1, -(-answer["total"] // PER_PAGE))
    return render(
        request,
        "search.html",
        "search",
        answer=answer,
        search=search,
        problems=problems,
        sort=sort,
        descending=descending,
        pages=pages,
        **_choices(),
    )


@router.get("/search.{fmt}")
async def search_export(request: Request, fmt: str) -> Response:
    from pipeline.stats import EXPORT_FORMATS, search_export

    if fmt not in EXPORT_FORMATS:
        raise NotFound(f"no export format {fmt!r}")
    search, _ = search_from(request.query_params)
    body = await _web(request).stores.run(search_export, search, fmt)
    return _download(body, f"invoices.{fmt}", _EXPORT_TYPES[fmt])


_EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get("/invoice/{document_id}")
async def invoice_view(request: Request, document_id: str) -> HTMLResponse:
    if not _DOCUMENT_ID.match(document_id):
        raise NotFound(f"no document with id {document_id!r}")
    details = await _web(request).stores.run(payloads.invoice_details, document_id)
    boxes: dict[int, list[dict[str, Any]]] = {}
    for n, field in enumerate(details["fields"], start=1):
        box = field.get("box")
        if box:
            xs = [point[0] for point in box["polygon"]]
            ys = [point[1] for point in box["polygon"]]
            field["mark"] = n
            boxes.setdefault(box["page"], []).append(
                {
                    "n": n,
                    "name": field["name"],
                    "label": field["label"],
                    "status": field["status"],
                    "x": min(xs),
                    "y": min(ys),
                    "w": max(1.0, max(xs) - min(xs)),
                    "h": max(1.0, max(ys) - min(ys)),
                }
            )
    return render(request, "invoice.html", "invoice", doc=details, boxes=boxes)


@router.get("/stats")
async def stats_view(request: Request) -> HTMLResponse:
    from pipeline.stats import TABLE_COLUMNS, statistics, totals

    search, problems = search_from(request.query_params)
    tables = await _web(request).stores.run(statistics, search)
    t = labels(language(request))
    chart = {
        "months": charts.bars(tables["months"], "month", "total", t["months"]),
        "sellers": charts.bars(tables["sellers"], "seller", "total", t["sellers"]),
        "rates": charts.bars(tables["rates"], "rate", "total", t["rates"]),
        "kinds": charts.bars(
            [{**row, "kind": t.get(row["kind"], row["kind"])} for row in tables["kinds"]],
            "kind",
            "total",
            t["kinds"],
        ),
        "quality": charts.lines(
            tables["quality"],
            "month",
            [
                ("review_rate", t["review_rate"]),
                ("failure_rate", t["failure_rate"]),
                ("not_in_ledger_rate", t["not_in_ledger_rate"]),
            ],
            t["quality"],
        ),
    }
    return render(
        request,
        "stats.html",
        "stats",
        tables=tables,
        columns=TABLE_COLUMNS,
        chart=chart,
        totals=totals(tables),
        search=search,
        problems=problems,
        filtered=any(request.query_params.get(key) for key in SEARCH_PARAMS),
        **_choices(),
    )


@router.get("/stats.{fmt}")
async def stats_export(request: Request, fmt: str) -> Response:
    from pipeline.stats import EXPORT_FORMATS, TABLE_COLUMNS, statistics, table_bytes

    table = request.query_params.get("table", "months")
    if fmt not in EXPORT_FORMATS or table not in TABLE_COLUMNS:
        raise NotFound(f"no export {table}.{fmt}")
    search, _ = search_from(request.query_params)
    tables = await _web(request).stores.run(statistics, search)
    body = table_bytes(tables[table], TABLE_COLUMNS[table], fmt, table)
    return _download(body, f"statistics-{table}.{fmt}", _EXPORT_TYPES[fmt])


@router.get("/folder")
async def folder_view(request: Request) -> HTMLResponse:
    web = _web(request)
    overview = await web.stores.run(payloads.folder_overview, web.folder)
    return render(request, "folder.html", "folder", overview=overview)


@router.get("/review")
async def review_view(request: Request) -> HTMLResponse:
    return render(request, "review.html", "review")


@router.get("/help")
async def help_view(request: Request) -> HTMLResponse:
    return render(request, "help.html", "help")


# ---- files ---------------------------------------------------------------------------------------


def _download(body: bytes, name: str, kind: str, inline: bool = False) -> Response:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "download"
    disposition = "inline" if inline else "attachment"
    return Response(
        body,
        media_type=kind,
        headers={
            "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
        },
    )


@router.get("/documents/{document_id}/pages/{page}.png")
async def page_image(request: Request, document_id: str, page: int) -> Response:
    if not _DOCUMENT_ID.match(document_id) or not 0 <= page < 10_000:
        raise NotFound("no such page")

    def load(store: Any) -> bytes:
        return page_png(store, store.load_result(document_id).document_id, page)

    png = await _web(request).stores.run(load)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


@router.get("/documents/{document_id}/crops/{field}.png")
async def crop_image(request: Request, document_id: str, field: str) -> Response:
    if not _DOCUMENT_ID.match(document_id) or not _FIELD.match(field):
        raise NotFound("no such field")
    web = _web(request)

    def load(store: Any) -> bytes:
        result = store.load_result(document_id)
        found = result.fields.get(field)
        if found is None or found.box is None:
            raise NotFound(f"field {field} has no box on the page")
        return crop_png(store, result.document_id, found.box, web.pages)

    png = await web.stores.run(load)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


@router.get("/documents/{document_id}/original")
async def original(request: Request, document_id: str) -> Response:
    from pipeline.store import _content_type

    if not _DOCUMENT_ID.match(document_id):
        raise NotFound("no such document")
    name, data = await _web(request).stores.run(payloads.original_bytes, document_id)
    return _download(data, name, _content_type(data))


@router.get("/documents/{document_id}/result.json")
async def result_download(request: Request, document_id: str) -> Response:
    if not _DOCUMENT_ID.match(document_id):
        raise NotFound("no such document")
    name, body = await _web(request).stores.run(payloads.result_json, document_id)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return _download(body, f"{stem}.result.json", "application/json")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound("no such file")
    body = resources.files("pipeline.web").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "private, max-age=300"})


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        return render(request, "error.html", "error", status=status, code=status, message=message)
    except Exception:  # the error page itself must not fail
        log.exception("cannot render the error page")
        return HTMLResponse("error", status_code=status)


__all__ = ["InputError", "error_page", "router", "search_from"]
