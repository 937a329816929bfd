"""The edge of both APIs (Integration ``/v1`` ``/v2``, Management ``/api/``): what every request must pass
before a view sees it, and what every answer must look like, in one place.

- A body over ``PATRONAGE_MAX_BODY_BYTES`` is refused (413) before anything reads it; a chunked body
  (``Transfer-Encoding: chunked``, no ``Content-Length``) is read under the same limit.
- Text the database cannot store, a NUL character or an unpaired UTF-16 surrogate, is refused (400) wherever
  it comes: the path, the query, a JSON string or key at any depth, a form field, a line of a text body.
  The error names the parameter or points into the body.
- A ``multipart/form-data`` body without a usable boundary, or one that cannot be parsed, is a 400.
- Every error answer is JSON in Talon.One's error shape (a 405 keeps its ``Allow`` header).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.urls import Resolver404, resolve
from django.utils.http import parse_header_parameters

from patronage.core.errors import ErrorDetail, PayloadTooLarge, ValidationFailed

API_PREFIXES = ("/v1/", "/v2/", "/api/")
# A NUL (PostgreSQL text and jsonb cannot hold it) or a lone surrogate (not encodable as UTF-8).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
READ_CHUNK = 64 * 1024


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _visible(text: str) -> str:
    """``text`` with every unstorable character written as its escape, so the answer itself is storable."""
    return UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _what(text: str) -> str:
    found = UNSTORABLE.search(text)
    assert found is not None
    char = found.group()
    kind = "a NUL character" if char == "\x00" else "an unpaired surrogate"
    return f"{kind} ({_visible(char)}), which cannot be stored"


def _pointer_part(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def find_unstorable(value: Any, pointer: str = "") -> tuple[str, str] | None:
    """(JSON pointer, text) of the first string or key in a parsed JSON value that holds an unstorable
    character, or None. Iterative: a document nested as deep as the JSON parser allows is fine."""
    stack: list[tuple[str, Any]] = [(pointer, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return where or "/", item
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                child_where = f"{where}/{_pointer_part(key)}"
                if UNSTORABLE.search(key):
                    return child_where, key
                children.append((child_where, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{where}/{index}", child) for index, child in reversed(list(enumerate(item))))
    return None


def _refusal(message: str, detail: ErrorDetail, status: int = 400) -> HttpResponse:
    from .errors import error_response  # errors imports presenters, which import the domain apps

    return error_response(message, [detail], status)


def _unstorable_parameter(name: str, value: str) -> HttpResponse:
    message = f"Parameter {_visible(name)} holds {_what(value)}"
    return _refusal(message, ErrorDetail(ValidationFailed.title, message, pointer=f"query:{_visible(name)}"))


def _unstorable_in_body(pointer: str, text: str) -> HttpResponse:
    message = f"The value at {_visible(pointer)} holds {_what(text)}"
    return _refusal(message, ErrorDetail(ValidationFailed.title, message, pointer=_visible(pointer)))


def _too_large(size: str, limit: int) -> HttpResponse:
    message = f"The request body is {size} bytes; the limit is {limit} bytes"
    return _refusal(message, ErrorDetail(PayloadTooLarge.title, message), 413)


def _read_chunked(request: HttpRequest, limit: int) -> bool:
    """Read a chunked body (the server has de-chunked it) into the request; False when over ``limit``.

    Django reads ``CONTENT_LENGTH`` bytes of ``wsgi.input``, none when a chunked request has no length.
    """
    stream = request.META.get("wsgi.input")
    if stream is None:
        return True
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return False
    body = b"".join(parts)
    request.META["CONTENT_LENGTH"] = str(len(body))
    request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[attr-defined,assignment]
    return True


def _path_parameter_holding(request: HttpRequest) -> tuple[str, str]:
    """(name, value) of the path parameter holding the unstorable character the path holds; the URL is
    resolved only then, never for a clean path (the common case pays one regex search)."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return "path", request.path_info
    for name, value in match.kwargs.items():
        if UNSTORABLE.search(str(value)):
            return str(name), str(value)
    return "path", request.path_info  # a part of the path no parameter took


def _check_text_body(body: bytes) -> HttpResponse | None:
    if b"\x00" not in body:
        return None
    line = body[: body.index(b"\x00")].count(b"\n") + 1
    message = f"Line {line} of the request body holds {_what(chr(0))}"
    return _refusal(message, ErrorDetail(ValidationFailed.title, message, line=line))


def _check_json_body(body: bytes) -> HttpResponse | None:
    if b"\\u" not in body:  # raw NULs are invalid JSON and raw surrogates invalid UTF-8: escapes only
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None  # the view says what is wrong with it
    found = find_unstorable(parsed)
    return _unstorable_in_body(*found) if found else None


def _check_form(request: HttpRequest) -> HttpResponse | None:
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        _, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
        boundary = params.get("boundary")
        if not boundary or not MultiPartParser.boundary_re.match(boundary):
            message = "A multipart/form-data body needs a boundary in its Content-Type header"
            return _refusal(message, ErrorDetail("Malformed body", message, pointer="header:Content-Type"))
    try:
        fields = request.POST
    except MultiPartParserError as exc:
        message = f"The multipart/form-data body cannot be read: {exc}"
        return _refusal(message, ErrorDetail("Malformed body", message))
    for name, values in fields.lists():
        for value in [name, *values]:
            if UNSTORABLE.search(value):
                message = f"Form field {_visible(name)} holds {_what(value)}"
                return _refusal(message, ErrorDetail(ValidationFailed.title, message, pointer=f"/{name}"))
    return None


def check_request(request: HttpRequest) -> HttpResponse | None:
    """The refusal for an API request the views must never see, or None."""
    limit = settings.PATRONAGE_MAX_BODY_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not length:
        if not _read_chunked(request, limit):
            return _too_large(f"over {limit}", limit)
    else:
        try:
            size = int(length or 0)
        except ValueError:
            size = 0
        if size > limit:
            return _too_large(str(size), limit)
    if UNSTORABLE.search(request.path_info):
        name, value = _path_parameter_holding(request)
        message = f"Path parameter {name} holds {_what(value)}"
        return _refusal(message, ErrorDetail(ValidationFailed.title, message, pointer=f"query:{name}"))
    for name, values in request.GET.lists():
        for value in [name, *values]:
            if UNSTORABLE.search(value):
                return _unstorable_parameter(name, value)
    try:
        body = request.body  # read first: form parsing then reads this copy, and views can still read it
    except RequestDataTooBig:
        return _too_large(length, limit)
    content_type = request.content_type or ""
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return _check_form(request)
    if not body:
        return None
    if content_type.startswith("text/"):
        return _check_text_body(body)
    return _check_json_body(body)


def as_error_shape(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """A non-JSON error answer (Django's or ninja's plain 405, 403, 400...) in the documented error shape."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if status == 405:
        allowed = response.get("Allow", "")
        message = f"{request.method} is not allowed on {request.path}; allowed: {allowed or 'none'}"
    else:
        text = response.content.decode(errors="replace").strip() if not response.streaming else ""
        message = text if text and len(text) < 200 and "<" not in text else phrase
    shaped = _refusal(message, ErrorDetail(phrase, message), status)
    for header in ("Allow", "WWW-Authenticate", "Retry-After"):
        if header in response:
            shaped[header] = response[header]
    return shaped


class ApiEdgeMiddleware:
    """Apply the API edge rules (this module's docstring) to every request under an API prefix."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request.path):
            return self.get_response(request)
        refusal = check_request(request)
        if refusal is not None:
            return refusal
        return as_error_shape(request, self.get_response(request))


# The name settings.MIDDLEWARE lists (from when this only capped body sizes).
BodySizeLimitMiddleware = ApiEdgeMiddleware
