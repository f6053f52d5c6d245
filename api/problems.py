"""Errors as RFC 9457 ``application/problem+json``, for every error the API returns: raised :class:`Problem`,
Starlette HTTP errors (unknown paths, wrong methods), validation errors, database outages and unexpected bugs.

Exceptions::

    Problem(HTTPException)      a 4xx/5xx answer (attributes: status_code, title, detail, errors, headers)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

from stadtpuls.logs import get_logger

__all__ = [
    "BAD_REQUEST_PATHS",
    "PROBLEM_JSON",
    "Problem",
    "ProblemDetail",
    "integrity_problem",
    "install_handlers",
    "invalid_body",
    "invalid_value",
    "problem_response",
    "responses",
]

PROBLEM_JSON = "application/problem+json"
#: Paths whose standards answer a bad parameter with 400 (the open-data feeds, SensorThings, NGSI-LD); elsewhere 422.
BAD_REQUEST_PATHS = ("/api/public/", "/sta/", "/ngsi-ld/")
log = get_logger("stadtpuls.api")


class ProblemDetail(BaseModel):
    """An error (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[dict[str, Any]] | None = None


class Problem(HTTPException):
    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.title = title or HTTPStatus(status_code).phrase
        self.errors = errors


def invalid_value(where: str, name: str, detail: str, msg: str) -> Problem:
    """422 for a value the checks after validation refuse, a parameter or a field ``name`` of ``where`` (``query``,
    ``body``), shaped like a validation error: ``detail`` says why, ``msg`` in a word or two."""
    return Problem(
        422,
        f"{name}: {detail}",
        title="Invalid request",
        errors=[{"loc": [where, name], "msg": msg, "type": "value_error"}],
    )


def invalid_body(field: str, detail: str, msg: str) -> Problem:
    """422 for a body field the checks after validation refuse (:func:`invalid_value`)."""
    return invalid_value("body", field, detail, msg)


def integrity_problem(e: psycopg.IntegrityError) -> Problem:
    """409 for a duplicate, 422 for a missing reference or a value the schema refuses."""
    detail = e.diag.message_detail or e.diag.message_primary or "constraint violated"
    column = e.diag.column_name or ""
    if isinstance(e, psycopg.errors.UniqueViolation):
        return Problem(409, detail, title="Conflict")
    loc = ["body", column] if column else ["body"]
    return Problem(422, detail, title="Invalid request", errors=[{"loc": loc, "msg": detail, "type": "value_error"}])


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str = "",
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = ProblemDetail(
        title=title or HTTPStatus(status).phrase, status=status, detail=detail, instance=instance, errors=errors
    )
    return Response(
        body.model_dump_json(exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not even text (bad UTF-8): invalid like any other bad JSON body
        msg = "the body is not valid JSON text"
        return problem_response(
            422,
            f"body: {msg}",
            instance=request.url.path,
            title="Invalid request",
            errors=[{"loc": ["body"], "msg": msg, "type": "json_invalid"}],
        )
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        exc.status_code,
        detail,
        instance=request.url.path,
        title=getattr(exc, "title", None),
        errors=getattr(exc, "errors", None),
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_errors(exc.errors())
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] or first["loc"]) or "request"
    status = 400 if request.url.path.startswith(BAD_REQUEST_PATHS) else 422
    return problem_response(
        status, f"{where}: {first['msg']}", instance=request.url.path, title="Invalid request", errors=errors
    )


async def _database_down(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
    return problem_response(
        503,
        "the database is not reachable, try again shortly",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


async def _bad_value(request: Request, exc: Exception) -> Response:
    # A value the database refused (out of range, bad text): the request's fault, not the server's.
    log.info("database refused a value", extra={"path": request.url.path, "error": type(exc).__name__})
    # 422 like every other invalid value (documented on each operation that takes input)
    msg = "a parameter has a value the database cannot use"
    return problem_response(
        422,
        msg,
        instance=request.url.path,
        title="Invalid request",
        errors=[{"loc": [], "msg": msg, "type": "value_error"}],
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return problem_response(500, "internal error; it has been logged", instance=request.url.path)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    app.add_exception_handler(psycopg.errors.DataError, _bad_value)
    app.add_exception_handler(Exception, _unexpected)


_SCHEMA = ProblemDetail.model_json_schema()


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json answers."""
    return {
        s: {
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_JSON: {"schema": _SCHEMA}},
        }
        for s in statuses
    }
