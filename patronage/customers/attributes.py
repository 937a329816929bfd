"""Talon.One-style profile attributes <-> our columns.

Shops send ``{"Name": ..., "Email": ..., "PhoneNumber": ..., "BirthDate": ..., "anything": ...}``. The
well-known ones are validated and stored in columns; unknown ones are kept as custom attributes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from dateutil import parser as date_parser
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from patronage.core.errors import ErrorCollector

from .models import CustomerProfile, birth_md_of

# Talon.One attribute name -> column
BUILTIN = {
    "Name": "name",
    "Email": "email",
    "PhoneNumber": "phone",
    "BirthDate": "birth_date",
    "TaxExempt": "tax_exempt",
    "AcceptsMarketing": "accepts_marketing",
}
MAX_CUSTOM_ATTRIBUTES = 200


@dataclass
class ProfileChanges:
    columns: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)


def normalize_phone(raw: str) -> str:
    """E.164 form of a number typed in any common format; ValueError when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, settings.PATRONAGE_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(stored: str) -> str:
    """A stored (E.164) number as people read it, in the international format: ``+1 201-555-0123``.

    Anything that does not parse is shown as it is."""
    if not stored:
        return ""
    try:
        number = phonenumbers.parse(stored, None)
    except phonenumbers.NumberParseException:
        return stored
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def parse_birth_date(raw: Any) -> dt.date:
    if not isinstance(raw, str):
        raise ValueError("must be a date string such as 1990-05-17")
    try:
        parsed = date_parser.isoparse(raw)
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not an ISO 8601 date such as 1990-05-17") from exc
    return parsed.date() if isinstance(parsed, dt.datetime) else parsed


def _clean_builtin(column: str, value: Any) -> Any:
    if value is None:
        return {"email": None, "birth_date": None, "tax_exempt": False, "accepts_marketing": False}.get(
            column, ""
        )
    if column in {"tax_exempt", "accepts_marketing"}:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if column == "birth_date":
        return parse_birth_date(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    value = value.strip()
    if column == "email":
        if not value:
            return None
        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValueError(f"{value!r} is not a valid email address") from exc
        return value
    if column == "phone":
        return normalize_phone(value) if value else ""
    if len(value) > 255:
        raise ValueError("must be at most 255 characters")
    return value


def parse_attributes(attributes: dict[str, Any], *, pointer: str, errors: ErrorCollector) -> ProfileChanges:
    changes = ProfileChanges()
    for name, value in attributes.items():
        column = BUILTIN.get(name)
        if column is None:
            changes.custom[name] = value
            continue
        try:
            changes.columns[column] = _clean_builtin(column, value)
        except ValueError as exc:
            errors.add(f"{name} {exc}", pointer=f"{pointer}/{name}")
    return changes


def apply_changes(
    profile: CustomerProfile, changes: ProfileChanges, *, errors: ErrorCollector, pointer: str
) -> None:
    for column, value in changes.columns.items():
        setattr(profile, column, value)
    profile.birth_md = birth_md_of(profile.birth_date)
    if changes.custom:
        merged = {**profile.attributes, **changes.custom}
        # null removes a custom attribute, as in Talon.One
        profile.attributes = {k: v for k, v in merged.items() if v is not None}
        if len(profile.attributes) > MAX_CUSTOM_ATTRIBUTES:
            errors.add(f"at most {MAX_CUSTOM_ATTRIBUTES} custom attributes per customer", pointer=pointer)


def profile_attributes(profile: CustomerProfile) -> dict[str, Any]:
    """Attributes as the Integration API shows them: custom ones plus the well-known columns that are set."""
    shown: dict[str, Any] = dict(profile.attributes)
    for name, column in BUILTIN.items():
        value = getattr(profile, column)
        if value in (None, ""):
            continue
        shown[name] = value.isoformat() + "T00:00:00Z" if isinstance(value, dt.date) else value
    return shown
