from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.core.errors import ErrorCollector, ErrorDetail, NotFound, ValidationFailed
from patronage.core.locking import get_or_create_locked, lock
from patronage.core.naming import checked_name, save_named
from patronage.workspace.models import Environment

from .attributes import BUILTIN, MAX_CUSTOM_ATTRIBUTES, apply_changes, normalize_phone, parse_attributes
from .consent import ConsentActor, consent_record, consent_record_many
from .models import CustomerGroup, CustomerProfile

MAX_INTEGRATION_ID = 1000  # as Talon.One
MAX_NAME_LENGTH = 255
# Profiles deleted per round of a bulk delete: bounded memory and statement size whatever the selection.
DELETE_BATCH = 1000

# Run inside the deleting transaction with each batch of profiles about to go. Apps that keep rows about a
# customer beyond the customer's life (orders stay, anonymized) register here from their AppConfig.ready():
# customers must not import them, dependencies point the other way.
ProfilesHook = Callable[[QuerySet[CustomerProfile]], None]
BEFORE_PROFILES_DELETE: list[ProfilesHook] = []


# A customer's last activity is kept to the minute. It is indexed (the customer list sorts and filters by
# it), so each move rewrites every index of the profile (twelve on PostgreSQL, four of them trigram
# indexes): a shop updating a cart several times a minute would otherwise pay that on every request.
ACTIVITY_RESOLUTION = dt.timedelta(minutes=1)


def activity_touch(profile: CustomerProfile, now: dt.datetime | None = None) -> bool:
    """Record activity of the customer now; False when the last activity recorded is less than
    ``ACTIVITY_RESOLUTION`` old and stays as it is."""
    now = now or clock.now()
    if profile.last_activity is not None and now - profile.last_activity < ACTIVITY_RESOLUTION:
        return False
    profile.last_activity = now
    return True


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
    activity_touch(profile)
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
    *,
    environment: Environment,
    integration_id: str,
    attributes: dict[str, Any],
    consent_by: ConsentActor | None = None,
) -> tuple[CustomerProfile, bool]:
    errors = ErrorCollector()
    validate_integration_id(integration_id, pointer="/integrationId", errors=errors)
    errors.raise_if_any()
    profile, created = profile_lock_or_create(environment=environment, integration_id=integration_id)
    consent_before = None if created else profile.accepts_marketing
    profile_apply_attributes(profile, attributes, pointer="/attributes", errors=errors)
    errors.raise_if_any()
    profile_save(profile, email_pointer="/attributes/Email")
    consent_record(
        profile_id=profile.pk,
        old=consent_before,
        new=profile.accepts_marketing,
        actor=consent_by or ConsentActor.api_key(None),
    )
    return profile, created


@transaction.atomic
def profiles_bulk_upsert(
    *,
    environment: Environment,
    items: list[tuple[str, dict[str, Any]]],
    consent_by: ConsentActor | None = None,
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
    # Consent before the call; None for customers this call creates (a rival creating one meanwhile
    # counts as created here too: it started without consent either way).
    consent_before: dict[str, bool | None] = {i: p.accepts_marketing for i, p in existing.items()}
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
        activity_touch(profile, now)
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
    consent_record_many(
        changes=[(p.pk, consent_before.get(p.integration_id), p.accepts_marketing) for p in profiles],
        actor=consent_by or ConsentActor.api_key(None),
        now=now,
    )
    return profiles


# --- staff edits (back office) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileInput:
    """A customer as staff type it in; ``profile_check`` validates and normalizes it."""

    name: str = ""
    email: str | None = None
    phone: str = ""
    birth_date: dt.date | None = None
    group: CustomerGroup | None = None
    tax_exempt: bool = False
    accepts_marketing: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


def _audit_bulk(actor: Any, flag: int, message: str) -> None:
    """One summary row in the admin's history for a bulk write (a row per customer would be the slow path)."""
    if actor is None or actor.pk is None:
        return
    LogEntry.objects.create(
        user_id=actor.pk,
        content_type=ContentType.objects.get_for_model(CustomerProfile),
        object_id=None,
        object_repr=message[:200],
        action_flag=flag,
        change_message=message,
    )


def profile_check(
    *, environment: Environment, data: ProfileInput, integration_id: str | None = None, pk: int | None = None
) -> ProfileInput:
    """The input normalized (E.164 phone, trimmed email), or ValidationFailed pointing at each bad field.

    ``integration_id`` is checked when given (a new customer); ``pk`` is the customer being edited, so its
    own email does not count as taken.
    """
    errors = ErrorCollector()
    if integration_id is not None:
        validate_integration_id(integration_id, pointer="integration_id", errors=errors)
        if CustomerProfile.objects.filter(environment=environment, integration_id=integration_id).exists():
            errors.add(
                f"Integration ID {integration_id} is already used by another customer",
                pointer="integration_id",
            )
    name = data.name.strip()
    if len(name) > MAX_NAME_LENGTH:
        errors.add(f"The name must be at most {MAX_NAME_LENGTH} characters", pointer="name")
    email = (data.email or "").strip() or None
    if email is not None:
        try:
            validate_email(email)
        except ValidationError:
            errors.add(f"{email} is not a valid email address", pointer="email")
        else:
            _check_email_free(
                CustomerProfile(pk=pk, environment_id=environment.pk, email=email),
                pointer="email",
                errors=errors,
            )
    phone = data.phone.strip()
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError as exc:
            errors.add(f"{exc}: type it with its country code, e.g. +1 201 555 0123", pointer="phone")
    if data.birth_date is not None and data.birth_date > clock.now().date():
        errors.add("A birthday cannot be in the future", pointer="birth_date")
    if data.group is not None and data.group.environment_id != environment.pk:
        errors.add(f"The group {data.group} belongs to the other environment", pointer="group")
    if not isinstance(data.attributes, dict):
        errors.add('Custom attributes must be a JSON object such as {"tier": "gold"}', pointer="attributes")
    else:
        builtin = sorted(set(data.attributes) & set(BUILTIN))
        if builtin:
            errors.add(f"{', '.join(builtin)}: use the fields above for these", pointer="attributes")
        if len(data.attributes) > MAX_CUSTOM_ATTRIBUTES:
            errors.add(
                f"At most {MAX_CUSTOM_ATTRIBUTES} custom attributes per customer", pointer="attributes"
            )
    errors.raise_if_any()
    return replace(data, name=name, email=email, phone=phone)


def _apply_input(profile: CustomerProfile, data: ProfileInput) -> None:
    profile.name = data.name
    profile.email = data.email
    profile.phone = data.phone
    profile.birth_date = data.birth_date
    profile.group = data.group
    profile.tax_exempt = data.tax_exempt
    profile.accepts_marketing = data.accepts_marketing
    profile.attributes = data.attributes


def _save_checked(profile: CustomerProfile, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            profile.save(**kwargs)
    except IntegrityError as exc:
        # Lost a race against another writer between the check and the write: same words as the check.
        message = "This email or integration ID was just taken by another customer"
        raise ValidationFailed(
            message, details=[ErrorDetail(title=ValidationFailed.title, details=message, pointer="email")]
        ) from exc


@transaction.atomic
def profile_create(
    *, environment: Environment, data: ProfileInput, integration_id: str = "", actor: Any = None
) -> CustomerProfile:
    """A customer added by hand; without an integration ID one is made up (shops use their own IDs)."""
    integration_id = integration_id.strip() or f"manual-{secrets.token_hex(6)}"
    data = profile_check(environment=environment, data=data, integration_id=integration_id)
    now = clock.now()
    profile = CustomerProfile(
        environment=environment, integration_id=integration_id, created=now, last_activity=now
    )
    _apply_input(profile, data)
    _save_checked(profile)
    consent_record(
        profile_id=profile.pk, old=None, new=profile.accepts_marketing, actor=ConsentActor.staff(actor)
    )
    return profile


@transaction.atomic
def profile_update(*, profile: CustomerProfile, data: ProfileInput, actor: Any = None) -> CustomerProfile:
    """Staff edits of a customer's own fields; the counters and the panel password are not theirs to set."""
    locked = lock(CustomerProfile.objects.filter(pk=profile.pk)).select_related("environment").first()
    if locked is None:
        raise NotFound(f"Customer profile {profile.integration_id} not found")
    data = profile_check(environment=locked.environment, data=data, pk=locked.pk)
    consent_before = locked.accepts_marketing
    _apply_input(locked, data)
    _save_checked(
        locked,
        update_fields=[
            "name",
            "email",
            "phone",
            "birth_date",
            "group",
            "tax_exempt",
            "accepts_marketing",
            "attributes",
        ],
    )
    consent_record(
        profile_id=locked.pk,
        old=consent_before,
        new=locked.accepts_marketing,
        actor=ConsentActor.staff(actor),
    )
    return locked


@transaction.atomic
def profiles_delete(*, queryset: QuerySet[CustomerProfile], actor: Any = None) -> int:
    """Delete every customer of ``queryset`` (a selection or a million); their orders stay, anonymized.

    Batches walk the primary key upwards, so each round starts where the last stopped instead of
    stepping again over the rows just deleted. Returns how many customers went.
    """
    deleted, last_pk = 0, 0
    pks = queryset.order_by("pk").values_list("pk", flat=True)
    while batch := list(pks.filter(pk__gt=last_pk)[:DELETE_BATCH]):
        profiles = CustomerProfile.objects.filter(pk__in=batch)
        for hook in BEFORE_PROFILES_DELETE:
            hook(profiles)
        # only("pk"): the collector needs no other column to cascade and delete.
        profiles.only("pk").delete()
        deleted, last_pk = deleted + len(batch), batch[-1]
    if deleted:
        _audit_bulk(actor, DELETION, f"Deleted {deleted} customer{'s' if deleted != 1 else ''}")
    return deleted


@transaction.atomic
def profiles_assign_group(
    *, queryset: QuerySet[CustomerProfile], group: CustomerGroup | None, actor: Any = None
) -> int:
    """Put every customer of ``queryset`` in ``group`` (None: in no group) with one UPDATE.

    Customers of the other environment are left alone: a group belongs to one environment.
    """
    targets = queryset.order_by()
    if group is not None:
        targets = targets.filter(environment_id=group.environment_id)
    # Rows already in the group are not rewritten: at this scale every rewritten row costs index updates.
    moved = (
        CustomerProfile.objects.filter(pk__in=targets.values("pk"))
        .exclude(group_id=group.pk if group else None)
        .update(group=group)
    )
    if moved:
        where = f"group {group.name}" if group is not None else "no group"
        _audit_bulk(actor, CHANGE, f"Moved {moved} customer{'s' if moved != 1 else ''} to {where}")
    return moved


def group_check_name(*, environment: Environment, name: str, pk: int | None = None) -> str:
    """The name trimmed, or ValidationFailed: group names are unique per environment, whatever the case."""
    return checked_name(CustomerGroup, environment=environment, name=name, noun="group", pk=pk)


def _save_group(group: CustomerGroup) -> CustomerGroup:
    save_named(group, noun="group")
    return group


@transaction.atomic
def group_create(*, environment: Environment, name: str) -> CustomerGroup:
    name = group_check_name(environment=environment, name=name)
    return _save_group(CustomerGroup(environment=environment, name=name))


@transaction.atomic
def group_rename(*, group: CustomerGroup, name: str) -> CustomerGroup:
    group.name = group_check_name(environment=group.environment, name=name, pk=group.pk)
    return _save_group(group)


@transaction.atomic
def groups_delete(*, queryset: QuerySet[CustomerGroup]) -> int:
    """Delete groups; their customers stay, in no group. Returns how many customers were in them."""
    groups = list(queryset.order_by().values_list("pk", flat=True))
    released = CustomerProfile.objects.filter(group_id__in=groups).update(group=None)
    CustomerGroup.objects.filter(pk__in=groups).delete()
    return released


def group_delete(*, group: CustomerGroup) -> int:
    return groups_delete(queryset=CustomerGroup.objects.filter(pk=group.pk))
