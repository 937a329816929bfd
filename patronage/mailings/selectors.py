"""Reads of mailings: who a mailing reaches, how far a send has got, and what it needs of each group."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCodeGroup, PromoCodeIssue
from patronage.promocodes.selectors import active_counts, groups_by_name
from patronage.segments.selectors import segment_q
from patronage.workspace.models import Application

from . import clients, templating, unsubscribe
from .models import Mailing, MailingDelivery, MailingListEmail

Status = MailingDelivery.Status


def audience_profiles(mailing: Mailing) -> QuerySet[CustomerProfile]:
    """The customers a mailing addresses, consenting or not (those without consent are recorded as
    skipped, except for the "all with consent" audience, where they are simply not part of it)."""
    profiles = CustomerProfile.objects.filter(environment_id=mailing.environment_id, email__isnull=False)
    profiles = profiles.exclude(email="")
    if mailing.audience == Mailing.Audience.CONSENTING:
        return profiles.filter(accepts_marketing=True)
    if mailing.audience == Mailing.Audience.GROUP:
        if mailing.customer_group_id is None:  # the group was deleted
            return profiles.none()
        return profiles.filter(group_id=mailing.customer_group_id)
    if mailing.audience == Mailing.Audience.SEGMENT:
        if mailing.segment is None:
            return profiles.none()
        return profiles.filter(segment_q(mailing.segment))
    listed = MailingListEmail.objects.filter(mailing_id=mailing.pk, email=Lower(OuterRef("email")))
    return profiles.filter(Exists(listed))


def unmatched_list_emails(mailing: Mailing) -> QuerySet[MailingListEmail]:
    """Addresses of an uploaded list that belong to no customer of the environment."""
    customers = CustomerProfile.objects.annotate(folded=Lower("email")).filter(
        environment_id=mailing.environment_id, folded=OuterRef("email")
    )
    return MailingListEmail.objects.filter(mailing_id=mailing.pk).exclude(Exists(customers))


@dataclass(frozen=True)
class AudienceCount:
    """Who a send would fix as recipients now: the same rows the start inserts (``audience_profiles`` and
    ``unmatched_list_emails``), so the send page's figures are the progress page's."""

    mailed: int  # consenting customers: they get it (the start's "pending", the mailing's recipient_count)
    no_consent: int  # addressed customers without consent: recorded as skipped
    no_customer: int  # addresses of an uploaded list that belong to no customer: recorded as skipped

    @property
    def skipped(self) -> int:
        return self.no_consent + self.no_customer

    @property
    def total(self) -> int:
        return self.mailed + self.skipped


def audience_count(mailing: Mailing) -> AudienceCount:
    counts = audience_profiles(mailing).aggregate(
        mailed=Count("id", filter=Q(accepts_marketing=True)),
        no_consent=Count("id", filter=Q(accepts_marketing=False)),
    )
    no_customer = (
        unmatched_list_emails(mailing).count() if mailing.audience == Mailing.Audience.EMAIL_LIST else 0
    )
    return AudienceCount(counts["mailed"] or 0, counts["no_consent"] or 0, no_customer)


def audience_size(mailing: Mailing) -> int:
    """How many customers would be mailed (consenting), before the send fixes the list."""
    return audience_count(mailing).mailed


@dataclass(frozen=True)
class EmptyRepeat:
    group: PromoCodeGroup
    recipients: int  # how many recipients would get an empty ``last_promocode`` from it


def empty_last_codes(mailing: Mailing) -> list[EmptyRepeat]:
    """Per group the templates repeat a code from (``last_promocode``) without issuing one from it in the
    same message: how many of the recipients were never issued a code from it (they get an empty text)."""
    analysis = templating.analyse(mailing.templates)
    groups = groups_by_name(mailing.environment)
    issued_here = set(analysis.groups(templating.INITIAL))
    recipients = audience_profiles(mailing).filter(accepts_marketing=True)
    empty = []
    for name in analysis.groups(templating.REPEAT):
        if name in issued_here or name not in groups:
            continue
        group = groups[name]
        ever = PromoCodeIssue.objects.filter(group_id=group.pk, profile_id=OuterRef("pk"))
        empty.append(EmptyRepeat(group, recipients.exclude(Exists(ever)).count()))
    return empty


@dataclass(frozen=True)
class Progress:
    status: str
    status_label: str
    total: int
    counts: dict[str, int]
    last_error: str
    # Who the start fixed as recipients to mail (what the send page announced); the rest of ``total``
    # were recorded as skipped at once (no consent, no customer with a listed address).
    recipients: int = 0

    @property
    def skipped_at_start(self) -> int:
        return max(self.total - self.recipients, 0)

    @property
    def prepared(self) -> int:
        return self.total - self.counts.get(Status.PENDING, 0)

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in (Status.SENT, Status.FAILED, Status.SKIPPED))

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "status_label": self.status_label,
            "finished": self.status == Mailing.Status.SENT,
            "total": self.total,
            "prepared": self.prepared,
            "done": self.done,
            "percent": self.percent,
            "last_error": self.last_error,
            "recipients": self.recipients,
            **{status.value: self.counts.get(status, 0) for status in Status},
        }


def mailing_progress(mailing: Mailing) -> Progress:
    rows = (
        MailingDelivery.objects.filter(mailing_id=mailing.pk)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts = dict(rows)
    return Progress(
        status=mailing.status,
        status_label=mailing.get_status_display(),
        total=sum(counts.values()),
        counts=counts,
        last_error=mailing.last_error,
        recipients=mailing.recipient_count,
    )


@dataclass(frozen=True)
class GroupNeed:
    group: PromoCodeGroup
    needed: int
    active: int

    @property
    def enough(self) -> bool:
        return self.active >= self.needed

    def refusal(self) -> str:
        return (
            f"Group “{self.group.name}” has {self.active:,} active codes, this mailing needs {self.needed:,}"
        )


def group_needs(mailing: Mailing, recipients: int) -> list[GroupNeed]:
    """Per group the templates issue from (``promocode``): the codes ``recipients`` messages need at
    most (one each) beside the group's active balance."""
    analysis = templating.analyse(mailing.templates)
    groups = groups_by_name(mailing.environment)
    used = [groups[name] for name in analysis.groups(templating.INITIAL) if name in groups]
    active = active_counts(group.pk for group in used)
    return [GroupNeed(group, recipients, active[group.pk]) for group in used]


# A started send nobody has taken up for this long is stalled (a queued task normally starts within seconds).
STALLED_AFTER = dt.timedelta(minutes=2)


def mailing_stalled(mailing: Mailing) -> bool:
    """Sending, yet no sender holds its lease, well after the start: the worker has likely stopped (each
    worker's sweep takes it over; staff may resume it at once)."""
    now = clock.now()
    return (
        mailing.status == Mailing.Status.SENDING
        and (mailing.lease_expires is None or mailing.lease_expires < now)
        and mailing.started_at is not None
        and now - mailing.started_at > STALLED_AFTER
    )


def first_recipient_email(mailing: Mailing) -> str | None:
    """The email of the first customer the mailing would reach (what the preview shows first)."""
    return (
        audience_profiles(mailing)
        .filter(accepts_marketing=True)
        .order_by("id")
        .values_list("email", flat=True)
        .first()
    )


def mailing_names(ids: set[int]) -> dict[int, str]:
    return dict(Mailing.objects.filter(pk__in=ids).values_list("id", "name"))


def delivery_message(delivery: MailingDelivery) -> tuple[str, str, str] | None:
    """(subject, HTML, text) of one recipient's message: as handed to the SMTP server once it was claimed
    for sending; for a prepared one, as it will be sent (rendered from its snapshot and codes, which is
    what sending does); None before preparation, for the skipped, and for one that failed to render."""
    if delivery.subject or delivery.html or delivery.text:
        return delivery.subject, delivery.html, delivery.text
    if delivery.status != Status.READY or delivery.client is None:
        return None
    (client,) = clients.prepared_clients(
        mailing_id=delivery.mailing_id, prepared=[(delivery.profile_id, delivery.client)]
    )
    client.unsubscribe_url = unsubscribe.mailing_url(delivery.mailing, delivery.profile_id or 0)
    try:
        subject, html, text = templating.message(templating.renderer(delivery.mailing.templates)(client))
    except templating.RenderFailed:
        return None
    return (subject, *unsubscribe.with_footer(html, text, client.unsubscribe_url))


@dataclass(frozen=True)
class UnsubscribeNames:
    brand: str  # whom the customer stops hearing from
    mailing: str  # the mailing as staff know it, for the consent history ("" without one)


def unsubscribe_names(found: unsubscribe.Unsubscribe) -> UnsubscribeNames:
    """The mailing's sender name, else the environment's only shop ("us" with several); one query for the
    mailing, one more for the shops only when the mailing names no sender."""
    sender, name = "", ""
    if found.mailing_id is not None:
        row = Mailing.objects.filter(pk=found.mailing_id).values_list("sender", "name").first()
        if row is not None:
            sender, name = row
    label = (
        ""
        if found.mailing_id is None
        else (f"“{name}” (#{found.mailing_id})" if name else f"#{found.mailing_id}")
    )
    if sender:
        return UnsubscribeNames(unsubscribe.sender_name(sender), label)
    shops = list(
        Application.objects.filter(environment_id=found.environment_id).values_list("name", flat=True)[:2]
    )
    return UnsubscribeNames(shops[0] if len(shops) == 1 else "us", label)
