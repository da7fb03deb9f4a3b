"""The JSON API under ``/api/v1`` for ERPs and other systems (用友, 金蝶, in-house): the same operations
as the pages. The token goes in the ``X-Invoices-Token`` header (checked in ``security.Guard``, declared
here so the OpenAPI description says so)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, StrictBool

from pipeline.errors import InputError, NotFound
from pipeline.model import DocType
from pipeline.store.index import DOCUMENT_STATUSES, RECONCILIATION_OUTCOMES, SEARCH_SORTS, Search
from pipeline.web import payloads
from pipeline.web.state import AppState
from pipeline.web.views import OUTCOMES, PLATFORM_STATUSES

DOCUMENT_ID = r"^[0-9a-f]{6,64}$"
FIELD_NAME = r"^[a-z][a-z0-9_]{0,63}$"

token_header = APIKeyHeader(
    name="X-Invoices-Token",
    description="the token `invoices serve` printed (or the content of --token-file)",
    auto_error=False,
)


class ErrorBody(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "refused input (the message says why)"},
    403: {"model": ErrorBody, "description": "wrong or missing token, or a cross-origin write"},
    404: {"model": ErrorBody, "description": "no such document"},
}

router = APIRouter(prefix="/api/v1", dependencies=[Depends(token_header)], responses=ERRORS)


class SearchAnswer(BaseModel):
    total: int = Field(description="how many invoices match in all")
    page: int
    per_page: int
    results: list[dict[str, Any]]


class CorrectionBody(BaseModel):
    value: str | None = Field(
        None,
        max_length=200,
        pattern=r"\S",
        description="the right value (checked against the field's format: an amount, a date, a tax ID...); "
        "null with accept=true",
    )
    accept: StrictBool = Field(False, description="the value read is right as it is")
    reviewer: str | None = Field(
        None, min_length=1, max_length=100, description="kept in the audit record (default: the server's)"
    )


class CorrectionAnswer(BaseModel):
    action: Literal["accept", "correct"]
    field: str
    value: str
    document: dict[str, Any]
    remaining: int = Field(description="fields still to review in the whole store")


class UploadMember(BaseModel):
    name: str = Field(description="bundle.zip!path/inside")
    document_id: str | None = Field(None, description="its id (none when refused before processing)")
    state: Literal["processing", "stored", "already_stored", "failed", "skipped"]
    message: str = ""
    status_url: str | None = None


class UploadAnswer(BaseModel):
    document_id: str
    state: Literal["processing", "stored", "already_stored", "failed"]
    status: str = ""
    message: str = ""
    status_url: str
    result: dict[str, Any] | None = None
    members: list[UploadMember] | None = Field(
        None, description="a ZIP bundle: each document inside, sent on as an upload of its own"
    )


class RetryBody(BaseModel):
    name: str = Field(min_length=1, max_length=255)


class RetryAnswer(BaseModel):
    name: str
    moved_to: str


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.web
    return state


StateDep = Annotated[AppState, Depends(app_state)]
DocumentIdPath = Annotated[str, PathParam(pattern=DOCUMENT_ID)]
FieldPath = Annotated[str, PathParam(pattern=FIELD_NAME)]


ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{name}: {value} is not a date that exists") from None


def DateQuery(description: str) -> Any:
    # A string with a pattern, not ``date``: pydantic would take 0 or 1700000000 as a date.
    return Query(pattern=ISO_DATE, description=description, json_schema_extra={"format": "date"})


def search_filters(
    q: Annotated[
        str, Query(max_length=200, description="any key: number, code, name, tax ID, amount, text")
    ] = "",
    date_from: Annotated[str | None, DateQuery("issued on or after (YYYY-MM-DD)")] = None,
    date_to: Annotated[str | None, DateQuery("issued on or before (YYYY-MM-DD)")] = None,
    amount_min: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    amount_max: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    kind: DocType | None = None,
    status: Literal[DOCUMENT_STATUSES] | None = None,  # type: ignore[valid-type]
    outcome: Annotated[
        Literal[OUTCOMES] | None,  # type: ignore[valid-type]
        Query(description="the last `invoices reconcile` outcome code (main or additional)"),
    ] = None,
    platform_status: Annotated[
        Literal[PLATFORM_STATUSES] | None,  # type: ignore[valid-type]
        Query(description="the tax platform's status in the last `invoices reconcile`"),
    ] = None,
    needs_review: bool = False,
    source: Annotated[str | None, Query(max_length=200)] = None,
    batch: Annotated[str | None, DateQuery("ingested on this day (YYYY-MM-DD)")] = None,
) -> Search:
    return Search(
        q=q,
        date_from=_day(date_from, "date_from"),
        date_to=_day(date_to, "date_to"),
        amount_min=amount_min,
        amount_max=amount_max,
        kind=str(kind) if kind else None,
        status=status,
        outcome=outcome,
        platform_status=platform_status,
        needs_review=needs_review,
        source=source or None,
        batch=_day(batch, "batch"),
    )


SearchDep = Annotated[Search, Depends(search_filters)]


@router.get("/search", response_model=SearchAnswer, summary="Search invoices by any key, with filters")
async def search(
    web: StateDep,
    filters: SearchDep,
    sort: Literal[tuple(SEARCH_SORTS)] = "date",  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    return await web.stores.run(payloads.search_page, filters, sort, order == "desc", page, per_page)


@router.get("/statistics", summary="Counts and amounts per month, seller, tax rate and kind; rates over time")
async def statistics(web: StateDep, filters: SearchDep) -> dict[str, list[dict[str, Any]]]:
    from pipeline.stats import statistics as compute

    return await web.stores.run(compute, filters)


@router.get(
    "/documents/{document_id}",
    summary="One invoice: fields, rules, ledger and tax-platform outcome, other files, audit, result",
)
async def document(web: StateDep, document_id: DocumentIdPath) -> dict[str, Any]:
    def load(store: Any) -> dict[str, Any]:
        details = payloads.invoice_details(store, document_id)
        details["result"] = store.load_result(details["document_id"]).to_dict()
        return details

    return await web.stores.run(load)


@router.post(
    "/documents",
    response_model=UploadAnswer,
    status_code=202,
    summary="Upload a document for ingestion; answers with its id (poll status_url for the result)",
    responses={200: {"model": UploadAnswer, "description": "already stored: the result is included"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "PDF, image, OFD or XML e-invoice, or a ZIP bundle of them",
                            }
                        },
                        "required": ["file"],
                        "additionalProperties": False,
                    }
                }
            },
        }
    },
)
async def upload(
    web: StateDep,
    request: Request,
    file: Annotated[
        UploadFile, File(description="PDF, image, OFD or XML e-invoice, or a ZIP bundle of them")
    ],
) -> Any:
    from pipeline.process import content_id

    extra = sorted(set((await request.form()).keys()) - {"file"})
    if extra:
        raise InputError(f"send only the form field 'file' (not {', '.join(map(repr, extra[:3]))})")

    limit = web.uploads._settings().max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"the file is larger than {limit} bytes")
    name = (file.filename or "upload").replace("/", "_").replace("\\", "_")[-200:] or "upload"
    document_id = content_id(data)
    status_url = f"/api/v1/uploads/{document_id}"
    members = _bundle_members(web, name, data)
    if members is not None:
        answer = UploadAnswer(
            document_id=document_id,
            state="processing",
            status_url=status_url,
            members=[await _send_member(web, member) for member in members],
        )
        web.uploads.bundles[document_id] = answer.members or []
        return answer
    stored = await web.stores.run(lambda store: store.is_stored(document_id))
    if stored:
        result = await web.stores.run(lambda store: store.load_result(document_id).to_dict())
        answer = UploadAnswer(
            document_id=document_id,
            state="already_stored",
            status=str(result.get("status", "")),
            status_url=status_url,
            result=result,
        )
        return JSONResponse(answer.model_dump(), status_code=200)
    job = web.uploads.submit(web.stores, data, name, document_id)
    return UploadAnswer(document_id=document_id, state=job.state, status_url=status_url)  # type: ignore[arg-type]


def _bundle_members(web: AppState, name: str, data: bytes) -> list[Any] | None:
    """The documents of a ZIP bundle (``bundle.zip!inner/path``), or None for any other file (an OFD is
    a ZIP too, but one document)."""
    from pathlib import Path

    from pipeline.ingest import bundle_members

    return bundle_members(Path(name), data, web.uploads._settings())


async def _send_member(web: AppState, member: Any) -> UploadMember:
    from pipeline.ingest import Refused
    from pipeline.process import content_id

    if isinstance(member, Refused):
        state = "skipped" if member.skipped else "failed"
        return UploadMember(name=member.name, state=state, message=str(member.error))
    member_id = content_id(member.data)
    url = f"/api/v1/uploads/{member_id}"
    if await web.stores.run(lambda store: store.is_stored(member_id)):
        return UploadMember(name=member.name, document_id=member_id, state="already_stored", status_url=url)
    job = web.uploads.submit(web.stores, member.data, member.name, member_id)
    return UploadMember(name=member.name, document_id=member_id, state=job.state, status_url=url)  # type: ignore[arg-type]


async def _bundle_state(web: AppState, bundle_id: str, members: list[UploadMember]) -> Any:
    """A bundle's upload: 202 while a member is processing; then each member's state."""
    now = []
    for member in members:
        job = web.uploads.jobs.get(member.document_id or "")
        if job is not None and member.state == "processing":
            member = member.model_copy(update={"state": job.state, "message": job.message})
        now.append(member)
    busy = any(member.state == "processing" for member in now)
    failed = [member for member in now if member.state == "failed"]
    stored = [member for member in now if member.state in ("stored", "already_stored")]
    answer = UploadAnswer(
        document_id=bundle_id,
        state="processing" if busy else ("stored" if stored else "failed"),
        message=f"{len(failed)} of {len(now)} documents failed" if failed else "",
        status_url=f"/api/v1/uploads/{bundle_id}",
        members=now,
    )
    return JSONResponse(answer.model_dump(), status_code=202 if busy else 200)


@router.get(
    "/uploads/{document_id}",
    response_model=UploadAnswer,
    summary="State of an upload: processing (202), or stored / failed with the result (200)",
    responses={202: {"model": UploadAnswer, "description": "still processing"}},
)
async def upload_state(web: StateDep, document_id: DocumentIdPath) -> Any:
    job = web.uploads.jobs.get(document_id)
    status_url = f"/api/v1/uploads/{document_id}"
    bundle = web.uploads.bundles.get(document_id)
    if bundle is not None:
        return await _bundle_state(web, document_id, bundle)
    if job is not None and job.state == "processing":
        answer = UploadAnswer(document_id=document_id, state="processing", status_url=status_url)
        return JSONResponse(answer.model_dump(), status_code=202)
    stored = await web.stores.run(lambda store: store.is_stored(document_id))
    if stored:
        result = await web.stores.run(lambda store: store.load_result(document_id).to_dict())
        state = job.state if job is not None and job.state in ("stored", "already_stored") else "stored"
        return UploadAnswer(
            document_id=document_id,
            state=state,  # type: ignore[arg-type]
            status=str(result.get("status", "")),
            message=job.message if job else "",
            status_url=status_url,
            result=result,
        )
    if job is not None:
        return UploadAnswer(
            document_id=document_id, state="failed", message=job.message, status_url=status_url
        )
    raise NotFound(f"no upload and no stored document with id {document_id}")


@router.post(
    "/documents/{document_id}/fields/{field}",
    response_model=CorrectionAnswer,
    summary="Correct (or accept) one field: validated, audited, rules and ledger match re-run",
)
async def correct(
    web: StateDep,
    document_id: DocumentIdPath,
    field: FieldPath,
    body: CorrectionBody,
) -> dict[str, Any]:
    reviewer = (body.reviewer or "").strip() or web.reviewer
    return await web.stores.run(
        payloads.correct_field, document_id, field, body.value, body.accept, reviewer, web.review_below
    )


@router.get("/reconciliation", response_model=SearchAnswer, summary="Ledger reconciliation outcomes")
async def reconciliation(
    web: StateDep,
    outcome: Literal[(*RECONCILIATION_OUTCOMES, "no_invoice_scanned")] | None = None,  # type: ignore[valid-type]
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    rows, total = await web.stores.run(
        lambda store: store.index.reconciliation_outcomes(outcome, (page - 1) * per_page, per_page)
    )
    return {"total": total, "page": page, "per_page": per_page, "results": rows}


@router.get("/review/queue", summary="Invoices with fields to review")
async def review_queue(web: StateDep) -> dict[str, Any]:
    return await web.stores.run(payloads.queue_payload, web.reviewer)


@router.get("/review/documents/{document_id}", summary="One invoice's fields to review")
async def review_document(web: StateDep, document_id: DocumentIdPath) -> dict[str, Any]:
    return await web.stores.run(payloads.document_payload, document_id)


@router.get("/folder", summary="Hot folder and batches: counts, failed files, last documents")
async def folder(web: StateDep) -> dict[str, Any]:
    return await web.stores.run(payloads.folder_overview, web.folder)


@router.post("/folder/retry", response_model=RetryAnswer, summary="Move one failed file back into the inbox")
async def retry(web: StateDep, body: RetryBody) -> dict[str, Any]:
    from pipeline.hotfolder import retry_failed

    if web.folder is None:
        raise NotFound("no hot folder: start the app with --folder DIR")
    target = retry_failed(web.folder, body.name)
    return {"name": body.name, "moved_to": target.name}
