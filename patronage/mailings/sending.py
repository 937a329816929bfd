"""The send: prepare every recipient in batches, then hand the messages to the SMTP server.

Preparing a batch is one transaction: take the batch's pending deliveries, reserve one code per recipient
from each group the templates issue from (``promocodes.services.promo_codes_reserve``), render, give back
the codes a message did not show (a ``{% if %}`` skipped the macro, a template failed for this customer),
record the issues and store each rendered message on its delivery. A crash in between undoes all of it;
after the commit the codes are the recipients' and never reserved again.

Delivering is at most once per recipient: a delivery is claimed (``ready -> sending``, committed) before its
SMTP conversation and marked ``sent``/``failed`` in the same transaction that claims the next one. A sender
that dies leaves at most the one message it was handing over in ``sending``; the next sender marks it failed
("interrupted") instead of sending a second copy. That is one commit per message: a fraction of the SMTP
conversation, which is per message anyway.

One sender per mailing at a time: a lease on the mailing row, renewed as it works. A sender that stops
renewing (a crash, a kill) loses it after ``LEASE``; ``resume_stalled`` (run by every worker) and the back
office's Resume button start a new sender then.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import smtplib
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction

from patronage.core import clock
from patronage.core.bulk import db_value, update_rows
from patronage.promocodes.models import IssueKind, PromoCodeGroup
from patronage.promocodes.selectors import groups_by_name, last_issued_codes
from patronage.promocodes.services import (
    IssueRow,
    promo_code_issues_record,
    promo_codes_release,
    promo_codes_reserve,
)

from . import templating
from .models import Mailing, MailingDelivery

logger = logging.getLogger(__name__)
Status = MailingDelivery.Status

LEASE = dt.timedelta(seconds=60)
RENEW_EVERY = dt.timedelta(seconds=10)
BATCH = 2000
INTERRUPTED = (
    "Interrupted while being handed to the SMTP server; not sent again so that nobody gets two copies "
    "(it may have arrived)"
)
OUT_OF_CODES = "Group “{group}” ran out of active codes"
BUSY = "Another sender is working on this mailing"
CUSTOMER_GONE = "The customer was deleted after the send started"
CONSENT_WITHDRAWN = "No marketing consent (withdrawn after the send started)"


class LeaseLost(Exception):
    """Another sender took over (ours expired): stop without touching anything more."""


@dataclass
class SendOutcome:
    prepared: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    finished: bool = False
    stopped: str = ""  # why the sender stopped before the end


ProgressCallback = Callable[[str, int], None]  # (phase, messages just done)


# --- the lease ----------------------------------------------------------------------------------------
def _execute(sql: str, params: Sequence[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _mailings() -> str:
    return connection.ops.quote_name(Mailing._meta.db_table)


def _deliveries() -> str:
    return connection.ops.quote_name(MailingDelivery._meta.db_table)


def _when(moment: dt.datetime) -> Any:
    return db_value(Mailing, "lease_expires", moment)


def lease_take(mailing_id: int, owner: str) -> bool:
    now = clock.now()
    return bool(
        _execute(
            f"UPDATE {_mailings()} SET lease_owner = %s, lease_expires = %s WHERE id = %s AND status = %s "
            "AND (lease_expires IS NULL OR lease_expires < %s)",
            [owner, _when(now + LEASE), mailing_id, Mailing.Status.SENDING, _when(now)],
        )
    )


def _lease_renew(mailing_id: int, owner: str) -> None:
    if not _execute(
        f"UPDATE {_mailings()} SET lease_expires = %s WHERE id = %s AND lease_owner = %s",
        [_when(clock.now() + LEASE), mailing_id, owner],
    ):
        raise LeaseLost


def _lease_release(mailing_id: int, owner: str) -> None:
    _execute(
        f"UPDATE {_mailings()} SET lease_owner = '', lease_expires = NULL WHERE id = %s AND lease_owner = %s",
        [mailing_id, owner],
    )


# --- preparing ----------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """What the templates need, resolved once per send."""

    render: Callable[[templating.Client], dict[str, str]]
    initial: list[PromoCodeGroup]
    repeat: list[PromoCodeGroup]
    missing: list[str] = field(default_factory=list)  # groups deleted since the draft was checked
    # Per group, the highest code id this send reserved: where the next batch's reservation starts.
    after: dict[int, int] = field(default_factory=dict)


def _plan(mailing: Mailing) -> _Plan:
    analysis = templating.analyse(mailing.templates)
    groups = groups_by_name(mailing.environment)
    plan = _Plan(templating.renderer(mailing.templates), [], [])
    for macro, target in ((templating.INITIAL, plan.initial), (templating.REPEAT, plan.repeat)):
        for name in analysis.groups(macro):
            if name in groups:
                target.append(groups[name])
            else:
                plan.missing.append(name)
    return plan


_RECIPIENT_FIELDS = (
    "id",
    "profile_id",
    "profile__integration_id",
    "profile__name",
    "email",
    "profile__phone",
    "profile__birth_date",
    "profile__group__name",
    "profile__tax_exempt",
    "profile__closed_sessions",
    "profile__total_sales",
    "profile__created",
    "profile__attributes",
    "profile__accepts_marketing",  # read again: consent withdrawn after the start is honoured
)


def _pending_batch(mailing: Mailing) -> list[tuple[Any, ...]]:
    pending = MailingDelivery.objects.filter(mailing_id=mailing.pk, status=Status.PENDING).order_by("id")
    if connection.vendor == "postgresql":
        # Two senders (one whose lease lapsed) never prepare the same deliveries.
        pending = pending.select_for_update(skip_locked=True, of=("self",))
    return list(pending.values_list(*_RECIPIENT_FIELDS)[:BATCH])


def _client(row: tuple[Any, ...]) -> templating.Client:
    (
        _,
        _,
        integration_id,
        name,
        email,
        phone,
        birth_date,
        group,
        tax_exempt,
        orders,
        sales,
        created,
        attributes,
        _,
    ) = row
    return templating.Client(
        integration_id=integration_id or "",
        name=name or "",
        email=email,
        phone=phone or "",
        birth_date=birth_date,
        group=group or "",
        tax_exempt=bool(tax_exempt),
        orders=orders or 0,
        total_sales=sales,
        created=created,
        attributes=attributes if isinstance(attributes, dict) else {},
    )


def _prepare_batch(mailing: Mailing, plan: _Plan, owner: str) -> tuple[int, int]:
    """Prepare the next batch of pending deliveries; returns (ready, skipped), (0, 0) when none is left."""
    now = clock.now()
    with transaction.atomic():
        _lease_renew(mailing.pk, owner)
        rows = _pending_batch(mailing)
        if not rows:
            return 0, 0
        skipped: dict[int, str] = {}  # delivery id -> why
        profile_of = {row[0]: row[1] for row in rows}
        # A customer deleted since the start leaves the delivery without a profile: no one to issue a code
        # to or to record it for (an issue needs its customer).
        skipped.update({d: CUSTOMER_GONE for d, profile_id in profile_of.items() if profile_id is None})
        skipped.update({row[0]: CONSENT_WITHDRAWN for row in rows if row[1] is not None and not row[-1]})
        for name in plan.missing:
            skipped.update(dict.fromkeys(profile_of, f"Group “{name}” no longer exists"))
        # Reserve group by group; a recipient missing a code of any group is skipped.
        reserved: dict[str, dict[int, Any]] = {}
        for group in plan.initial:
            wanting = [profile_of[d] for d in profile_of if d not in skipped]
            got = promo_codes_reserve(
                group_id=group.pk, profile_ids=wanting, now=now, after_id=plan.after.get(group.pk, 0)
            )
            if len(got) < len(wanting) and plan.after.get(group.pk):
                # Codes given back below the cursor (a message that did not show its code) still count.
                rest = [profile_id for profile_id in wanting if profile_id not in got]
                got.update(promo_codes_reserve(group_id=group.pk, profile_ids=rest, now=now))
            if got:
                plan.after[group.pk] = max(plan.after.get(group.pk, 0), *(r.code_id for r in got.values()))
            reserved[group.name.casefold()] = got
            for delivery_id, profile_id in profile_of.items():
                if delivery_id not in skipped and profile_id not in got:
                    skipped[delivery_id] = OUT_OF_CODES.format(group=group.name)
        last = {
            group.name.casefold(): last_issued_codes(group_id=group.pk, profile_ids=list(profile_of.values()))
            for group in plan.repeat
        }
        by_name = {group.name.casefold(): group for group in (*plan.initial, *plan.repeat)}
        ready: list[tuple[Any, ...]] = []
        issues: list[IssueRow] = []
        release: list[int] = []
        for row in rows:
            delivery_id, profile_id = row[0], row[1]
            codes = {name: got[profile_id] for name, got in reserved.items() if profile_id in got}
            if delivery_id in skipped:
                release.extend(code.code_id for code in codes.values())
                continue
            client = _client(row)
            client.codes = {name: code.code for name, code in codes.items()}
            client.last_codes = {
                name: found[profile_id] for name, found in last.items() if profile_id in found
            }
            try:
                message = plan.render(client)
            except templating.RenderFailed as exc:
                skipped[delivery_id] = f"Template error for this customer: {exc.problem}"
                release.extend(code.code_id for code in codes.values())
                continue
            for name, code in codes.items():
                if name in client.used_initial:
                    group = by_name[name]
                    issues.append(
                        IssueRow(
                            profile_id,
                            code.code_id,
                            code.code,
                            group.pk,
                            group.name,
                            IssueKind.INITIAL,
                            mailing.pk,
                        )
                    )
                else:
                    release.append(code.code_id)
            for name in client.used_repeat:
                group = by_name[name]
                issues.append(
                    IssueRow(
                        profile_id,
                        None,
                        client.last_codes[name],
                        group.pk,
                        group.name,
                        IssueKind.REPEAT,
                        mailing.pk,
                    )
                )
            ready.append(
                (
                    delivery_id,
                    Status.READY,
                    message.get("subject", "").replace("\r", " ").replace("\n", " "),
                    message.get("html_body", ""),
                    message.get("text_body", ""),
                    db_value(MailingDelivery, "prepared_at", now),
                )
            )
        promo_codes_release(code_ids=release)
        promo_code_issues_record(issues=issues, now=now)
        update_rows(MailingDelivery, ["status", "subject", "html", "text", "prepared_at"], ready)
        update_rows(
            MailingDelivery, ["status", "reason"], [(d, Status.SKIPPED, why) for d, why in skipped.items()]
        )
        return len(ready), len(skipped)


# --- delivering ---------------------------------------------------------------------------------------
def _message(mailing: Mailing, subject: str, html: str, text: str, to: str) -> EmailMultiAlternatives:
    headers = {"X-Patronage-Mailing": str(mailing.pk)}
    if text:
        message = EmailMultiAlternatives(subject, text, mailing.sender, [to], headers=headers)
        if html:
            message.attach_alternative(html, "text/html")
    else:
        message = EmailMultiAlternatives(subject, html, mailing.sender, [to], headers=headers)
        message.content_subtype = "html"
    return message


def _smtp_reason(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            for code, reply in error.recipients.values()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        return f"{error.smtp_code} {text}"
    return str(error) or type(error).__name__


class _Lane:
    """One SMTP connection handing messages over one at a time (see the module's docstring)."""

    def __init__(self, deliverer: _Deliverer) -> None:
        self.deliverer = deliverer
        self.backend = get_connection(fail_silently=False)
        table = _deliveries()
        self.claim_sql = f"UPDATE {table} SET status = %s WHERE id = %s AND status = %s"
        self.finish_sql = f"UPDATE {table} SET status = %s, reason = %s, sent_at = %s WHERE id = %s"
        # The outcome of the message just handed over, written with the next claim in one transaction:
        # one commit per message instead of two.
        self.outcome_row: list[Any] | None = None

    def run(self, rows: Iterator[_Ready]) -> None:
        deliverer = self.deliverer
        try:
            self.backend.open()
        except (OSError, smtplib.SMTPException) as exc:
            deliverer.stop(f"Cannot reach the SMTP server: {_smtp_reason(exc)}")
            return
        try:
            for delivery_id, email, subject, html, text in rows:
                deliverer.renew()
                if not self._claim(delivery_id):
                    continue  # another sender got it
                message = _message(deliverer.mailing, subject, html, text, email)
                if not self._send_one(delivery_id, message):
                    return
        finally:
            self._write_outcome()
            self.backend.close()

    def _claim(self, delivery_id: int) -> bool:
        with transaction.atomic():
            self._write_outcome()
            return bool(_execute(self.claim_sql, [Status.SENDING, delivery_id, Status.READY]))

    def _write_outcome(self) -> None:
        if self.outcome_row is not None:
            _execute(self.finish_sql, self.outcome_row)
            self.outcome_row = None

    def _send_one(self, delivery_id: int, message: EmailMultiAlternatives) -> bool:
        """Hand one message over; False when the SMTP server is gone and the lane must stop."""
        status, reason, keep_going = Status.SENT, "", True
        try:
            self.backend.send_messages([message])
        except smtplib.SMTPServerDisconnected as exc:
            status, reason = Status.FAILED, f"{INTERRUPTED}: {_smtp_reason(exc)}"
            keep_going = self._reconnect()
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            status, reason = Status.FAILED, _smtp_reason(exc)
        except (OSError, smtplib.SMTPException) as exc:
            status, reason = Status.FAILED, f"{INTERRUPTED}: {_smtp_reason(exc)}"
            keep_going = self._reconnect()
        sent_at = db_value(MailingDelivery, "sent_at", clock.now()) if status == Status.SENT else None
        self.outcome_row = [status, reason, sent_at, delivery_id]
        self.deliverer.count(status)
        return keep_going

    def _reconnect(self) -> bool:
        self.backend.close()
        try:
            self.backend.open()
        except (OSError, smtplib.SMTPException) as exc:
            self.deliverer.stop(f"Lost the SMTP server: {_smtp_reason(exc)}")
            return False
        return True


_Ready = tuple[int, str, str, str, str]


class _Deliverer:
    """Hands every ready message over, through ``connections`` SMTP connections at once.

    Each extra connection is a thread with its own database connection: while one waits for the SMTP
    server or the database, another builds its next message. Rows are read here in pages and dealt out
    through a queue; a lane claims each row before sending it, so no row goes out twice.
    """

    def __init__(
        self, mailing: Mailing, owner: str, outcome: SendOutcome, progress: ProgressCallback | None
    ) -> None:
        self.mailing = mailing
        self.owner = owner
        self.outcome = outcome
        self.progress = progress
        self.renewed = clock.now()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.connections = max(1, int(getattr(settings, "PATRONAGE_MAILING_CONNECTIONS", 1)))

    def renew(self) -> None:
        with self.lock:
            if clock.now() - self.renewed < RENEW_EVERY:
                return
            self.renewed = clock.now()
        _lease_renew(self.mailing.pk, self.owner)

    def count(self, status: str) -> None:
        with self.lock:
            if status == Status.SENT:
                self.outcome.sent += 1
            else:
                self.outcome.failed += 1
            if self.progress:
                self.progress("deliver", 1)

    def stop(self, why: str) -> None:
        self.outcome.stopped = self.outcome.stopped or why
        self.stopped.set()

    def _ready(self, after: int) -> list[_Ready]:
        return list(
            MailingDelivery.objects.filter(mailing_id=self.mailing.pk, status=Status.READY, id__gt=after)
            .order_by("id")
            .values_list("id", "email", "subject", "html", "text")[:500]
        )

    def _pages(self, first: list[_Ready]) -> Iterator[_Ready]:
        page = first
        while page and not self.stopped.is_set():
            yield from page
            page = self._ready(page[-1][0])

    def run(self) -> None:
        first = self._ready(0)
        if not first:
            # Everyone was skipped or already has an outcome: the SMTP server is not needed, and being
            # down must not leave an error on a mailing that is finished.
            return
        if self.connections == 1:
            _Lane(self).run(row for row in self._pages(first) if not self.stopped.is_set())
            return
        rows: queue.Queue[_Ready] = queue.Queue(maxsize=4 * self.connections)
        fed = threading.Event()
        errors: list[BaseException] = []

        def drain() -> Iterator[_Ready]:
            while not self.stopped.is_set():
                try:
                    yield rows.get(timeout=0.2)
                except queue.Empty:
                    if fed.is_set():
                        return

        def lane() -> None:
            try:
                _Lane(self).run(drain())
            except BaseException as exc:  # re-raised in the sender's thread below
                errors.append(exc)
                self.stopped.set()
            finally:
                connection.close()

        threads = [
            threading.Thread(target=lane, name=f"mailing-{self.mailing.pk}-lane-{n}")
            for n in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        try:
            for row in self._pages(first):
                while not self.stopped.is_set():
                    try:
                        rows.put(row, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        finally:
            fed.set()
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]


# --- the send -----------------------------------------------------------------------------------------
def _fail_orphans(mailing: Mailing) -> int:
    """Deliveries a dead sender left mid-handover: failed, never resent."""
    return MailingDelivery.objects.filter(mailing_id=mailing.pk, status=Status.SENDING).update(
        status=Status.FAILED, reason=INTERRUPTED
    )


def _finish_if_done(mailing: Mailing) -> bool:
    unfinished = MailingDelivery.objects.filter(
        mailing_id=mailing.pk, status__in=[Status.PENDING, Status.READY, Status.SENDING]
    )
    if unfinished.exists():
        return False
    Mailing.objects.filter(pk=mailing.pk, status=Mailing.Status.SENDING).update(
        status=Mailing.Status.SENT, finished_at=clock.now(), last_error=""
    )
    return True


def mailing_send_run(
    *, mailing_id: int, progress: ProgressCallback | None = None, deliver: bool = True
) -> SendOutcome:
    """Send (or go on sending) a started mailing until every recipient has an outcome.

    Does nothing when another sender holds the mailing. ``deliver=False`` stops after preparing (what the
    render benchmark measures).
    """
    outcome = SendOutcome()
    owner = uuid.uuid4().hex
    if not lease_take(mailing_id, owner):
        outcome.stopped = BUSY
        return outcome
    mailing = Mailing.objects.select_related("environment").get(pk=mailing_id)
    try:
        outcome.failed += _fail_orphans(mailing)
        plan = _plan(mailing)
        while True:
            ready, skipped = _prepare_batch(mailing, plan, owner)
            if not ready and not skipped:
                break
            outcome.prepared += ready
            outcome.skipped += skipped
            if progress:
                progress("prepare", ready + skipped)
        if deliver:
            _Deliverer(mailing, owner, outcome, progress).run()
            outcome.finished = _finish_if_done(mailing)
        if outcome.stopped:
            Mailing.objects.filter(pk=mailing.pk).update(last_error=outcome.stopped)
    except LeaseLost:
        outcome.stopped = "Another sender took over"
    finally:
        _lease_release(mailing_id, owner)
    return outcome


def resume_stalled() -> list[int]:
    """Go on with every sending mailing whose sender has gone (its lease ran out). Returns their ids."""
    now = clock.now()
    stalled = Mailing.objects.filter(status=Mailing.Status.SENDING).exclude(lease_expires__gte=now)
    resumed = []
    for mailing_id in stalled.values_list("id", flat=True):
        outcome = mailing_send_run(mailing_id=mailing_id)
        if outcome.stopped != BUSY:
            resumed.append(mailing_id)
    return resumed
