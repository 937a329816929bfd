from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.core.errors import ErrorCollector, ErrorDetail, ValidationFailed
from patronage.core.locking import get_or_create_locked, lock
from patronage.workspace.models import Environment

from .attributes import apply_changes, parse_attributes
from .models import CustomerProfile

MAX_INTEGRATION_ID = 1000  # as Talon.One


def validate_integration_id(integration_id: str, *, pointer: str, errors: ErrorCollector) -> None:
    if not integration_id or not integration_id.strip():
        errors.add("The integration ID must not be empty", pointer=pointer)
    elif len(integration_id) > MAX_INTEGRATION_ID:
        errors.add(f"The integration ID must be at most {MAX_INTEGRATION_ID} characters", pointer=pointer)


def _check_email_free(profile: CustomerProfile, *, pointer: str, errors: ErrorCollector) -> None:
    if not profile.email:
        return
    taken = (
        CustomerProfile.objects.annotate(email_ci=Lower("email"))
        .filter(environment_id=profile.environment_id, email_ci=profile.email.lower())
        .exclude(pk=profile.pk)
        .values_list("integration_id", flat=True)
        .first()
    )
    if taken is not None:
        errors.add(f"Email {profile.email} is already used by customer {taken}", pointer=pointer)


def _check_emails_free_bulk(
    environment: Environment, profiles: list[CustomerProfile], *, errors: ErrorCollector
) -> None:
    """One query for the whole batch: emails repeated inside it or owned by customers outside it."""
    owner: dict[str, int] = {}
    for index, profile in enumerate(profiles):
        if not profile.email:
            continue
        email = profile.email.lower()
        pointer = f"/customerProfiles/{index}/attributes/Email"
        if email in owner:
            errors.add(f"Email {profile.email} is also used at index {owner[email]}", pointer=pointer)
        owner.setdefault(email, index)
    if not owner:
        return
    taken = (
        CustomerProfile.objects.annotate(email_ci=Lower("email"))
        .filter(environment=environment, email_ci__in=list(owner))
        .exclude(pk__in=[p.pk for p in profiles])
        .values_list("email_ci", "integration_id")
    )
    for email, other in taken:
        errors.add(
            f"Email {email} is already used by customer {other}",
            pointer=f"/customerProfiles/{owner[email]}/attributes/Email",
        )


def profile_lock_or_create(*, environment: Environment, integration_id: str) -> tuple[CustomerProfile, bool]:
    """The profile locked for update (first in the lock order), created empty when missing.

    Must run inside ``transaction.atomic``.
    """
    now = clock.now()
    return get_or_create_locked(
        CustomerProfile.objects.all(),
        defaults=lambda: {"created": now, "last_activity": now},
        environment_id=environment.pk,
        integration_id=integration_id,
    )


def profile_apply_attributes(
    profile: CustomerProfile,
    attributes: dict[str, Any],
    *,
    pointer: str,
    errors: ErrorCollector,
    check_email: bool = True,
) -> None:
    changes = parse_attributes(attributes, pointer=pointer, errors=errors)
    apply_changes(profile, changes, errors=errors, pointer=pointer)
    if check_email and "email" in changes.columns:
        _check_email_free(profile, pointer=f"{pointer}/Email", errors=errors)


def profile_save(profile: CustomerProfile, *, email_pointer: str) -> None:
    profile.last_activity = clock.now()
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError as exc:
        # Lost a race for the same email against another writer: same message as the pre-check.
        message = f"Email {profile.email} is already used by another customer"
        raise ValidationFailed(
            message,
            details=[ErrorDetail(title=ValidationFailed.title, details=message, pointer=email_pointer)],
        ) from exc


@transaction.atomic
def profile_upsert(
    *, environment: Environment, integration_id: str, attributes: dict[str, Any]
) -> tuple[CustomerProfile, bool]:
    errors = ErrorCollector()
    validate_integration_id(integration_id, pointer="/integrationId", errors=errors)
    errors.raise_if_any()
    profile, created = profile_lock_or_create(environment=environment, integration_id=integration_id)
    profile_apply_attributes(profile, attributes, pointer="/attributes", errors=errors)
    errors.raise_if_any()
    profile_save(profile, email_pointer="/attributes/Email")
    return profile, created


@transaction.atomic
def profiles_bulk_upsert(
    *, environment: Environment, items: list[tuple[str, dict[str, Any]]]
) -> list[CustomerProfile]:
    """Upsert up to 1000 profiles all-or-nothing: any invalid item rejects the whole call.

    Profiles are locked in integration-ID order so two bulk calls over overlapping customers cannot deadlock.
    """
    errors = ErrorCollector()
    seen: dict[str, int] = {}
    for index, (integration_id, _) in enumerate(items):
        pointer = f"/customerProfiles/{index}/integrationId"
        validate_integration_id(integration_id, pointer=pointer, errors=errors)
        if integration_id in seen:
            errors.add(
                f"Integration ID {integration_id!r} also appears at index {seen[integration_id]}",
                pointer=pointer,
            )
        seen.setdefault(integration_id, index)
    errors.raise_if_any()

    now = clock.now()
    existing = {
        p.integration_id: p
        for p in lock(
            CustomerProfile.objects.filter(environment=environment, integration_id__in=list(seen))
        ).order_by("integration_id")
    }
    missing = [
        CustomerProfile(environment=environment, integration_id=i, created=now, last_activity=now)
        for i in sorted(seen)
        if i not in existing
    ]
    CustomerProfile.objects.bulk_create(missing, ignore_conflicts=True)
    if missing:
        existing = {
            p.integration_id: p
            for p in lock(
                CustomerProfile.objects.filter(environment=environment, integration_id__in=list(seen))
            ).order_by("integration_id")
        }

    profiles: list[CustomerProfile] = []
    for index, (integration_id, attributes) in enumerate(items):
        profile = existing[integration_id]
        profile_apply_attributes(
            profile,
            attributes,
            pointer=f"/customerProfiles/{index}/attributes",
            errors=errors,
            check_email=False,
        )
        profile.last_activity = now
        profiles.append(profile)
    _check_emails_free_bulk(environment, profiles, errors=errors)
    errors.raise_if_any()
    try:
        with transaction.atomic():
            CustomerProfile.objects.bulk_update(
                profiles,
                [
                    "name",
                    "email",
                    "phone",
                    "birth_date",
                    "birth_md",
                    "tax_exempt",
                    "accepts_marketing",
                    "attributes",
                    "last_activity",
                ],
                batch_size=500,
            )
    except IntegrityError as exc:
        raise ValidationFailed("An email in this request is already used by another customer") from exc
    return profiles
