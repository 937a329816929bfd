"""``Idempotency-Key`` handling for mutating Integration API calls.

A key is reserved (committed at once, so a concurrent twin sees it and gets 409), the work runs in one
transaction that also stores the response, and a replay within 24 hours gets the stored response back.
The same key with another payload is refused. A reservation whose request died is taken over after
``PATRONAGE_IDEMPOTENCY_STALE_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from patronage.core import clock
from patronage.core.errors import (
    DomainError,
    ErrorDetail,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    ValidationFailed,
)
from patronage.workspace.models import Application

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Expired records are swept now and then by the requests themselves: no scheduler needed.
PURGE_CHANCE = 0.001


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.META.get("QUERY_STRING", "")):
        digest.update(part.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _header_error(exc_class: type[DomainError], message: str) -> DomainError:
    return exc_class(message, details=[ErrorDetail(exc_class.title, message, pointer=f"header:{HEADER}")])


def reserve(application: Application, key: str, fingerprint: str) -> IdempotencyRecord:
    """Claim ``key`` for this request, or raise with the stored/ongoing twin's verdict.

    Returns an unfinished record (ours) or a finished one (a replay). The common case is one INSERT;
    only a clash looks at the existing record, which is replaced when expired or abandoned.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _header_error(ValidationFailed, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters long")
    now = clock.now()
    expired_before = now - dt.timedelta(seconds=settings.PATRONAGE_IDEMPOTENCY_TTL_SECONDS)
    stale_before = now - dt.timedelta(seconds=settings.PATRONAGE_IDEMPOTENCY_STALE_SECONDS)
    if random.random() < PURGE_CHANCE:
        IdempotencyRecord.objects.filter(created__lt=expired_before).delete()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    application=application, key=key, fingerprint=fingerprint, created=now
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(application=application, key=key).first()
        if existing is None:
            continue
        if existing.created < expired_before or (not existing.completed and existing.created < stale_before):
            IdempotencyRecord.objects.filter(pk=existing.pk, created=existing.created).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise _header_error(
                IdempotencyKeyReused,
                f"{HEADER} {key!r} was already used for a different request; use a new key for a new request",
            )
        if not existing.completed:
            break
        return existing
    raise _header_error(
        IdempotencyInProgress, f"A request with {HEADER} {key!r} is still being processed; retry later"
    )


def _store(record: IdempotencyRecord, response: HttpResponse) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        completed=True, status_code=response.status_code, body=bytes(response.content)
    )


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.body), status=record.status_code or 200, content_type="application/json"
    )
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(
    render_error: Callable[[HttpRequest, DomainError], HttpResponse],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorate a mutating view to honour ``Idempotency-Key``: work and stored response commit together.

    Domain errors are rendered here (not by the API's handler) so that their response is stored too.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            key = request.headers.get(HEADER)
            if key is None:
                return view(request, *args, **kwargs)  # services are atomic themselves
            application = request.auth.application  # type: ignore[attr-defined]
            record = reserve(application, key, fingerprint(request))
            if record.completed:
                return _replay(record)
            try:
                with transaction.atomic():
                    response = view(request, *args, **kwargs)
                    _store(record, response)
                return response
            except DomainError as exc:
                response = render_error(request, exc)
                _store(record, response)
                return response
            except BaseException:
                IdempotencyRecord.objects.filter(pk=record.pk).delete()
                raise

        return wrapper

    return decorator


def dry_or_idempotent(
    render_error: Callable[[HttpRequest, DomainError], HttpResponse],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """``idempotent``, except for a dry run (a ``query`` parameter whose ``dry`` is true): that one runs
    in full, answers what the real request would, and is rolled back. Nothing it wrote stays (profile,
    session, cart, return, last activity, audit rows), it leaves no idempotency record and replays none,
    and what it queued ``on_commit`` never runs."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        remembered = idempotent(render_error)(view)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not getattr(kwargs.get("query"), "dry", False):
                return remembered(request, *args, **kwargs)
            with transaction.atomic():
                try:
                    return view(request, *args, **kwargs)
                finally:
                    transaction.set_rollback(True)

        return wrapper

    return decorator
