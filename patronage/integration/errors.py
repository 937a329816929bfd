"""Every Integration/Management API failure as Talon.One's error body, never a stack trace."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from patronage.core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    ErrorDetail,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidStateTransition,
    NotFound,
    PayloadTooLarge,
    UnprocessableInput,
    ValidationFailed,
)

from .presenters import json_response

log = logging.getLogger(__name__)

# The first class an error is an instance of wins: subclasses come before their bases.
STATUS_BY_ERROR: dict[type[DomainError], int] = {
    UnprocessableInput: 422,
    ValidationFailed: 400,
    InvalidStateTransition: 400,
    AuthenticationFailed: 401,
    NotFound: 404,
    Conflict: 409,
    IdempotencyInProgress: 409,
    IdempotencyKeyReused: 422,
    PayloadTooLarge: 413,
}


def error_body(message: str, details: list[ErrorDetail], status: int) -> dict[str, Any]:
    errors = []
    for detail in details:
        source: dict[str, str] = {}
        if detail.pointer:
            if detail.pointer.startswith("header:") or detail.pointer.startswith("query:"):
                source["parameter"] = detail.pointer.split(":", 1)[1]
            else:
                source["pointer"] = detail.pointer
        if detail.line is not None:
            source["line"] = str(detail.line)
        errors.append(
            {"title": detail.title, "details": detail.details, **({"source": source} if source else {})}
        )
    return {"message": message, "errors": errors, "StatusCode": status}


def error_response(message: str, details: list[ErrorDetail], status: int) -> HttpResponse:
    return json_response(error_body(message, details, status), status=status)


def domain_error_response(request: HttpRequest, exc: DomainError) -> HttpResponse:
    status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    response = error_response(exc.message, exc.details, status)
    if status == 401:
        response["WWW-Authenticate"] = "ApiKey-v1"
    return response


def _pointer(loc: tuple[Any, ...]) -> tuple[str, str]:
    """(kind, where) for a pydantic location such as ('body', 'body', 'customerSession', 'cartItems', 0)."""
    kind, rest = loc[0], list(loc[1:])
    if kind == "body" and rest[:1] == ["body"]:
        rest = rest[1:]
    if kind == "body":
        return "pointer", "/" + "/".join(str(part) for part in rest)
    return "parameter", ".".join(str(part) for part in rest) or str(kind)


def validation_error_response(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    details = []
    for error in exc.errors:
        loc = tuple(error.get("loc", ("body",)))
        kind, where = _pointer(loc)
        text = f"{where}: {error.get('msg', 'invalid value')}"
        details.append(
            ErrorDetail("Invalid value", text, pointer=where if kind == "pointer" else f"query:{where}")
        )
    message = (
        details[0].details
        if len(details) == 1
        else f"{len(details)} invalid values: {details[0].details}, ..."
    )
    return error_response(message, details, 400)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"the number {text[:40]} is too large")
    return number


class StrictJsonParser(Parser):
    """JSON as RFC 8259 has it: no NaN/Infinity, no number beyond a float's range. Neither can be stored
    (PostgreSQL's jsonb refuses them) nor computed with."""

    def parse_body(self, request: HttpRequest) -> Any:
        return json.loads(request.body, parse_constant=_refuse_constant, parse_float=_finite_float)


def install(api: NinjaAPI, *, missing_auth: str) -> None:
    api.parser = StrictJsonParser()

    @api.exception_handler(DomainError)
    def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        return domain_error_response(request, exc)

    @api.exception_handler(NinjaValidationError)
    def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return validation_error_response(request, exc)

    @api.exception_handler(AuthenticationError)
    def on_missing_auth(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return domain_error_response(
            request,
            AuthenticationFailed(
                missing_auth,
                details=[ErrorDetail("Unauthorized", missing_auth, pointer="header:Authorization")],
            ),
        )

    @api.exception_handler(Http404)
    def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response("Not found", [ErrorDetail("Not found", str(exc) or request.path)], 404)

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, DomainError):  # raised while ninja parsed the request
            return domain_error_response(request, exc.__cause__)
        if isinstance(exc.__cause__, ValueError):  # ninja's parser failed: say where the JSON breaks
            message = f"The request body is not valid JSON: {exc.__cause__}"
            return error_response(message, [ErrorDetail("Malformed JSON", message, pointer="/")], 400)
        return error_response(str(exc), [ErrorDetail("Error", str(exc))], exc.status_code)

    @api.exception_handler(RequestDataTooBig)
    def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return error_response(str(exc), [ErrorDetail(PayloadTooLarge.title, str(exc))], 413)

    @api.exception_handler(MultiPartParserError)
    @api.exception_handler(BadRequest)
    @api.exception_handler(SuspiciousOperation)
    def on_bad_request(request: HttpRequest, exc: Exception) -> HttpResponse:
        message = f"The request cannot be read: {exc}"
        return error_response(message, [ErrorDetail("Malformed request", message)], 400)

    @api.exception_handler(Exception)
    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        log.exception("Unhandled error on %s %s", request.method, request.path)
        message = "Internal server error; the request was not applied"
        return error_response(message, [ErrorDetail("Internal error", message)], 500)
