"""Writes about mailings before and around a send: save a draft (templates and recipients checked), preview
it for one customer, start it (recipients fixed, capacity checked, the send queued), resume it, delete it.

The send itself is in ``sending.py``.
"""

from __future__ import annotations

import csv
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Case, CharField, F, IntegerField, QuerySet, Value, When
from django.db.models.functions import Cast

from patronage.core import clock
from patronage.core.audit import audit
from patronage.core.bulk import insert_rows
from patronage.core.errors import ErrorCollector, ErrorDetail, InvalidStateTransition, ValidationFailed
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.promocodes.models import PromoCode
from patronage.promocodes.selectors import groups_by_name, last_issued_codes
from patronage.segments.models import Segment
from patronage.workspace.models import Environment

from . import addresses, clients, selectors, templating, unsubscribe
from .models import CUSTOMER_GONE, Mailing, MailingDelivery, MailingListEmail
from .tasks import send_mailing

Status = MailingDelivery.Status
NO_CONSENT = "No marketing consent"
NO_CUSTOMER = "No customer with this email in {environment}"
# More than this many bad lines in an email list are counted, not listed.
MAX_REPORTED = 50


@dataclass
class MailingInput:
    name: str
    sender: str
    subject: str
    html_body: str
    text_body: str
    audience: str
    customer_group: CustomerGroup | None = None
    segment: Segment | None = None
    # A new list replaces the stored one: (file name, its lines).
    email_list: tuple[str, Iterable[str]] | None = None


def template_problems(
    *, environment: Environment, templates: dict[str, str]
) -> list[templating.TemplateProblem]:
    groups = groups_by_name(environment)
    return templating.check(templates, group_names=[group.name for group in groups.values()]).problems


def parse_email_list(lines: Iterable[str]) -> list[tuple[int, str]]:
    """(line, lower-case email) of a list: one address per line, or a CSV whose header has an ``email``
    column. Blank lines are ignored; repeats are kept once. Any bad line fails the whole list, with every
    bad line reported (the first ``MAX_REPORTED``)."""
    errors = ErrorCollector()
    seen: dict[str, int] = {}
    column = 0
    for line_number, cells in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if line_number == 1 and "email" in (folded := [cell.casefold() for cell in cells]):
            column = folded.index("email")
            continue
        email = cells[column] if column < len(cells) else ""
        try:
            validate_email(email)
        except DjangoValidationError:
            if len(errors.problems) < MAX_REPORTED:
                errors.problems.append(
                    ErrorDetail(
                        "Invalid email",
                        f"Line {line_number}: {email!r} is not an email address",
                        pointer="email_list",
                        line=line_number,
                    )
                )
            continue
        seen.setdefault(email.lower(), line_number)  # as the database's LOWER() folds it
    if errors.problems:
        raise ValidationFailed(
            f"The email list has invalid lines; nothing was saved ({errors.problems[0].details})",
            details=errors.problems,
        )
    if not seen:
        raise ValidationFailed(
            "The email list holds no address",
            details=[ErrorDetail("Invalid value", "The email list holds no address", pointer="email_list")],
        )
    return [(line, email) for email, line in seen.items()]


def mailing_check(environment: Environment, data: MailingInput) -> None:
    """Every problem of a draft (name, sender, subject, bodies, group, templates), reported at once."""
    problems = ErrorCollector()
    if not data.name.strip():
        problems.add("A mailing needs a name", pointer="name")
    if (sender_problem := addresses.sender_problem(data.sender)) is not None:
        problems.add(sender_problem, pointer="sender")
    if not data.subject.strip():
        problems.add("A mailing needs a subject", pointer="subject")
    if not data.html_body.strip() and not data.text_body.strip():
        problems.add("Write an HTML body, a text body or both", pointer="html_body")
    if data.audience == Mailing.Audience.GROUP:
        if data.customer_group is None:
            problems.add("Choose the customer group to mail", pointer="customer_group")
        elif data.customer_group.environment_id != environment.pk:
            problems.add(f"Group {data.customer_group} is not in {environment}", pointer="customer_group")
    if data.audience == Mailing.Audience.SEGMENT:
        if data.segment is None:
            problems.add("Choose the segment to mail", pointer="segment")
        elif data.segment.environment_id != environment.pk:
            problems.add(f"Segment {data.segment} is not in {environment}", pointer="segment")
    templates = {"subject": data.subject, "html_body": data.html_body, "text_body": data.text_body}
    for problem in template_problems(environment=environment, templates=templates):
        problems.add(str(problem), pointer=problem.part, title="Template error")
    problems.raise_if_any("The mailing has problems")


@transaction.atomic
def mailing_save(
    *, environment: Environment, data: MailingInput, mailing: Mailing | None = None, actor: Any = None
) -> Mailing:
    """Create a draft or change one; templates, sender and recipients are checked first (all or nothing)."""
    if mailing is not None and mailing.status != Mailing.Status.DRAFT:
        raise InvalidStateTransition(
            f"Mailing “{mailing}” is {mailing.get_status_display().lower()}: only drafts change"
        )
    mailing_check(environment, data)
    emails = parse_email_list(data.email_list[1]) if data.email_list else None
    if (
        data.audience == Mailing.Audience.EMAIL_LIST
        and emails is None
        and not (mailing and mailing.email_list_name)
    ):
        raise ValidationFailed(
            "Upload the list of emails to mail",
            details=[ErrorDetail("Invalid value", "Upload the list of emails to mail", pointer="email_list")],
        )
    created = mailing is None
    mailing = mailing or Mailing(
        environment=environment, created_by=actor if getattr(actor, "pk", None) else None
    )
    mailing.name = data.name.strip()
    mailing.sender = data.sender.strip()
    mailing.subject = data.subject
    mailing.html_body = data.html_body
    mailing.text_body = data.text_body
    mailing.audience = data.audience
    mailing.customer_group = data.customer_group if data.audience == Mailing.Audience.GROUP else None
    mailing.customer_group_name = mailing.customer_group.name if mailing.customer_group else ""
    mailing.segment = data.segment if data.audience == Mailing.Audience.SEGMENT else None
    if emails is not None and data.email_list:
        mailing.email_list_name = data.email_list[0][:255]
    mailing.save()
    if emails is not None:
        MailingListEmail.objects.filter(mailing=mailing).delete()
        insert_rows(
            MailingListEmail, ["mailing", "email", "line"], [(mailing.pk, e, line) for line, e in emails]
        )
    audit(actor, mailing, ADDITION if created else CHANGE, "Created" if created else "Changed")
    return mailing


@transaction.atomic
def mailing_delete(*, mailing: Mailing, actor: Any = None) -> None:
    """Delete a mailing that is not sending. Codes it issued stay issued and in the customers' history."""
    if mailing.status == Mailing.Status.SENDING:
        raise InvalidStateTransition(
            f"Mailing “{mailing}” is sending; it can be deleted once it has finished"
        )
    audit(actor, mailing, DELETION, "Deleted")
    mailing.delete()


# --- preview ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str
    notes: list[str]


# What ``promocode`` shows in a test message: clearly no code (a test issues and records nothing).
TEST_CODE = "TEST-CODE-NOT-VALID"


def mailing_preview(*, mailing: Mailing, profile: CustomerProfile, test: bool = False) -> Preview:
    """The message as ``profile`` would get it, issuing nothing: ``promocode`` shows the group's next active
    code without taking it (in a ``test`` message: the placeholder ``TEST_CODE``), ``last_promocode`` the
    customer's real last code."""
    analysis = templating.analyse(mailing.templates)
    if analysis.problems:
        raise ValidationFailed(str(analysis.problems[0]))
    groups = groups_by_name(mailing.environment)
    client = clients.client_from_snapshot(clients.profile_snapshots([profile.pk])[profile.pk])
    client.unsubscribe_url = unsubscribe.preview_url()
    notes = []
    next_codes = {}
    for name in analysis.groups(templating.INITIAL):
        group = groups.get(name)
        if test:
            next_codes[name] = TEST_CODE
            continue
        code = (
            PromoCode.objects.filter(group=group, issued_at__isnull=True)
            .order_by("id")
            .values_list("code", flat=True)
            .first()
            if group
            else None
        )
        if code:
            next_codes[name] = code
        else:
            notes.append(f"Group “{name}” has no active code: the send would skip this customer")
    client.codes = next_codes
    client.last_codes = {
        name: code
        for name in analysis.groups(templating.REPEAT)
        if (group := groups.get(name)) is not None
        if (code := last_issued_codes(group_id=group.pk, profile_ids=[profile.pk]).get(profile.pk))
    }
    if not profile.accepts_marketing:
        notes.append("This customer has no marketing consent: the send would skip them")
    try:
        rendered = templating.renderer(mailing.templates)(client)
    except templating.RenderFailed as exc:
        raise ValidationFailed(str(exc.problem)) from exc
    if test and next_codes:
        notes.append(f"Promo codes show as {TEST_CODE}: a test issues no code and records nothing")
    elif next_codes:
        notes.append("Codes shown are the groups' next active codes; the preview does not issue them")
    html, text = unsubscribe.with_footer(
        rendered.get("html_body", ""), rendered.get("text_body", ""), client.unsubscribe_url
    )
    return Preview(rendered.get("subject", ""), html, text, notes)


def mailing_send_test(*, mailing: Mailing, profile: CustomerProfile, actor: Any) -> Preview:
    """Send ``actor`` (a staff user) the message as ``profile`` would get it, through the mail backend the
    sends use. No code is issued or recorded: ``promocode`` shows ``TEST_CODE``."""
    to = (getattr(actor, "email", "") or "").strip()
    if not to:
        raise ValidationFailed(
            "Your staff account has no email address: add one to your profile to receive test messages"
        )
    preview = mailing_preview(mailing=mailing, profile=profile, test=True)
    message = EmailMultiAlternatives(
        subject=f"[Test] {preview.subject}".replace("\r", " ").replace("\n", " "),
        body=preview.text or " ",
        from_email=mailing.sender,
        to=[to],
        # As the send has them, pointing at the preview's stand-in link (following it unsubscribes nobody).
        headers=unsubscribe.headers(unsubscribe.preview_url()),
    )
    if preview.html:
        message.attach_alternative(preview.html, "text/html")
    try:
        message.send()
    except (OSError, smtplib.SMTPException) as exc:
        raise ValidationFailed(f"The test message could not be sent: {exc}") from exc
    audit(actor, mailing, CHANGE, f"Sent a test for {profile.email} to {to}")
    return preview


# --- start --------------------------------------------------------------------------------------------
def _materialize(mailing: Mailing) -> int:
    """Fix the recipients: one delivery per address, pending, or skipped with the reason. Set-based:
    ``INSERT ... SELECT`` whatever the audience's size. Returns how many will be mailed."""
    _insert_deliveries(
        selectors.audience_profiles(mailing),
        mailing=Value(mailing.pk, output_field=IntegerField()),
        profile=F("id"),
        status=Case(When(accepts_marketing=True, then=Value(Status.PENDING)), default=Value(Status.SKIPPED)),
        reason=Case(When(accepts_marketing=True, then=Value("")), default=Value(NO_CONSENT)),
    )
    if mailing.audience == Mailing.Audience.EMAIL_LIST:
        _insert_deliveries(
            selectors.unmatched_list_emails(mailing),
            mailing=F("mailing_id"),
            profile=Cast(Value(None), IntegerField()),
            status=Value(Status.SKIPPED, output_field=CharField()),
            reason=Value(NO_CUSTOMER.format(environment=mailing.environment), output_field=CharField()),
        )
    return MailingDelivery.objects.filter(mailing=mailing, status=Status.PENDING).count()


def _insert_deliveries(source: QuerySet[Any], **columns: Any) -> None:
    """``INSERT INTO deliveries SELECT ...`` of ``source`` (rows with an ``email``), the other columns given
    as expressions; the message columns start empty."""
    # Every output column an annotation: the SELECT then lists them in exactly this order.
    columns = {**columns, "email": F("email"), "empty": Value("", output_field=CharField())}
    order = ["mailing", "profile", "email", "status", "reason", "empty", "empty", "empty"]
    select = (
        source.order_by()
        .annotate(**{f"d_{name}": expression for name, expression in columns.items()})
        .values_list(*(f"d_{name}" for name in order))
    )
    sql, params = select.query.sql_with_params()
    table = connection.ops.quote_name(MailingDelivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (mailing_id, profile_id, email, status, reason, subject, html, text) {sql}",
            params,
        )


@transaction.atomic
def mailing_start(*, mailing: Mailing, actor: Any = None, enqueue: bool = True) -> Mailing:
    """Fix the recipients, check every group has enough active codes, and queue the send.

    Refused (and nothing kept) when a template has a problem, nobody would be mailed, or a group's active
    balance is below what the mailing needs: one initial issue per recipient per group.
    """
    mailing = Mailing.objects.select_for_update(of=("self",)).select_related("environment").get(pk=mailing.pk)
    if mailing.status != Mailing.Status.DRAFT:
        raise InvalidStateTransition(f"Mailing “{mailing}” was already started")
    problems = template_problems(environment=mailing.environment, templates=mailing.templates)
    if problems:
        raise ValidationFailed("Fix the templates first: " + "; ".join(map(str, problems)))
    if mailing.audience == Mailing.Audience.SEGMENT and mailing.segment_id is None:
        raise ValidationFailed("The segment this mailing was for was deleted: choose its recipients again")
    if mailing.audience == Mailing.Audience.GROUP and mailing.customer_group_id is None:
        raise ValidationFailed(
            f"The group {mailing.customer_group_name or ''} this mailing was for was deleted: "
            "choose its recipients again"
        )
    recipients = _materialize(mailing)
    if not recipients:
        raise ValidationFailed(
            "Nobody would get this mailing: no recipient has an email and marketing consent"
        )
    short = [need for need in selectors.group_needs(mailing, recipients) if not need.enough]
    if short:
        message = "; ".join(need.refusal() for need in short)
        raise ValidationFailed(
            message,
            details=[
                ErrorDetail("Not enough promo codes", need.refusal(), pointer="promo_codes") for need in short
            ],
        )
    mailing.status = Mailing.Status.SENDING
    mailing.started_at = clock.now()
    mailing.recipient_count = recipients
    mailing.last_error = ""
    mailing.save(update_fields=["status", "started_at", "recipient_count", "last_error"])
    audit(actor, mailing, CHANGE, f"Started sending to {recipients:,} recipients")
    if enqueue:
        transaction.on_commit(lambda: _enqueue(mailing.pk))
    return mailing


def _enqueue(mailing_id: int) -> None:
    send_mailing.enqueue(mailing_id)


def mailing_resume(*, mailing: Mailing, actor: Any = None) -> None:
    """Queue the send again (after a crash or an SMTP outage). Safe however often it is called: a sender
    works only while it holds the mailing's lease, and deliveries already sent are never sent again."""
    if mailing.status != Mailing.Status.SENDING:
        raise InvalidStateTransition(f"Mailing “{mailing}” is not sending")
    with transaction.atomic():
        Mailing.objects.filter(pk=mailing.pk).update(last_error="")
        audit(actor, mailing, CHANGE, "Resumed sending")
        transaction.on_commit(lambda: _enqueue(mailing.pk))


def deliveries_forget_customers(profiles: QuerySet[CustomerProfile]) -> None:
    """Customers being deleted (or erased) get no message that was not handed over yet, and no snapshot of
    them stays on a delivery. Registered in ``customers.services.BEFORE_PROFILES_DELETE``."""
    deliveries = MailingDelivery.objects.filter(profile__in=profiles)
    deliveries.filter(status__in=[Status.PENDING, Status.READY]).update(
        status=Status.SKIPPED, reason=CUSTOMER_GONE, client=None
    )
    deliveries.filter(client__isnull=False).update(client=None)
