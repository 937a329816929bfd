"""Names unique (ignoring case) within an environment: customer groups, groups of promo codes, segments.

``checked_name`` says what is wrong before saving; ``save_named`` turns the unique constraint's error into
the same message when another request took the name between the check and the save.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, models, transaction

from .errors import ErrorDetail, ValidationFailed


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[ErrorDetail(ValidationFailed.title, message, pointer="name")])


def checked_name(
    model: type[models.Model], *, environment: Any, name: str, noun: str, pk: int | None = None
) -> str:
    """The stripped name, or ValidationFailed pointing at ``name`` (empty, too long, taken)."""
    name = name.strip()
    limit = getattr(model._meta.get_field("name"), "max_length", None) or 100
    if not name:
        raise _invalid(f"A {noun} needs a name")
    if len(name) > limit:
        raise _invalid(f"A {noun}'s name is at most {limit} characters")
    taken = model._default_manager.filter(environment=environment, name__iexact=name).exclude(pk=pk or 0)
    if taken.exists():
        raise _invalid(f"There is already a {noun} named {name!r} in {environment}")
    return name


def save_named(obj: Any, *, noun: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise _invalid(f"There is already a {noun} named {obj.name!r} in {obj.environment}") from exc
