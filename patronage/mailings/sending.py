"""The send: prepare every recipient in batches, then hand the messages to the SMTP server.

Preparing a batch is one transaction: claim the batch's pending deliveries, taking a snapshot of each
customer as they are now (one ``UPDATE ... FROM ... RETURNING``), issue one code per recipient from each
group the templates issue from and record the issues (``promocodes.services.promo_codes_issue``, one
statement per group), render every message once to learn which codes it shows, and take back the codes a
message does not show (a ``{% if %}`` skipped the macro, a template failed for this customer). A crash in
between undoes all of it; after the commit the codes are the recipients' and never issued again. On
PostgreSQL two batches are prepared at once (``_Preparer``): one renders while the other's statements run.

Delivering renders each message again from its snapshot and codes (rendering is deterministic, so it is the
message preparation saw) and is at most once per recipient: a delivery is claimed (``ready -> sending``,
with the message stored, committed) before its SMTP conversation and marked ``sent``/``failed`` in the same
transaction that claims the next one. A sender that dies leaves at most the one message it was handing over
in ``sending``; the next sender marks it failed ("interrupted") instead of sending a second copy. That is
one commit per message: a fraction of the SMTP conversation, which is per message anyway.

Preparation does not store the rendered messages: at a hundred thousand recipients writing them was most of
the database's work, and rendering twice costs less than that.

One sender per mailing at a time: a lease on the mailing row, renewed as it works. A sender that stops
renewing (a crash, a kill) loses it after ``LEASE``; ``resume_stalled`` (run by every worker) and the back
office's Resume button start a new sender then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import re
import smtplib
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import connection, transaction

from patronage.core import clock
from patronage.core.bulk import db_value, table_name, update_rows
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.promocodes.models import IssueKind, PromoCodeGroup
from patronage.promocodes.selectors import groups_by_name, last_issued_codes
from patronage.promocodes.services import (
    IssueRow,
    Reserved,
    promo_code_issues_record,
    promo_codes_issue,
    promo_codes_unissue,
)

from . import clients, templating, unsubscribe
from .models import CUSTOMER_GONE, Mailing, MailingDelivery

logger = logging.getLogger(__name__)
Status = MailingDelivery.Status

LEASE = dt.timedelta(seconds=60)
RENEW_EVERY = dt.timedelta(seconds=10)
BATCH = 2000
INTERRUPTED = (
    "Interrupted while being handed to the SMTP server; not sent again so that nobody gets two copies "
    "(it may have arrived)"
)
# A failure before the message's content went to the SMTP server: nothing can have arrived.
NOT_HANDED_OVER = "Not sent: nothing was handed to the SMTP server"
OUT_OF_CODES = "Group “{group}” ran out of active codes"
BUSY = "Another sender is working on this mailing"
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


def _when(moment: dt.datetime) -> Any:
    return db_value(Mailing, "lease_expires", moment)


def lease_take(mailing_id: int, owner: str) -> bool:
    now = clock.now()
    return bool(
        _execute(
            f"UPDATE {table_name(Mailing)} SET lease_owner = %s, lease_expires = %s "
            "WHERE id = %s AND status = %s AND (lease_expires IS NULL OR lease_expires < %s)",
            [owner, _when(now + LEASE), mailing_id, Mailing.Status.SENDING, _when(now)],
        )
    )


def _lease_renew(mailing_id: int, owner: str) -> None:
    if not _execute(
        f"UPDATE {table_name(Mailing)} SET lease_expires = %s WHERE id = %s AND lease_owner = %s",
        [_when(clock.now() + LEASE), mailing_id, owner],
    ):
        raise LeaseLost


@contextmanager
def _threads(name: str, count: int, work: Callable[[], None], stopped: threading.Event) -> Iterator[None]:
    """Run ``work`` in ``count`` threads, each with its own database connection, while the block runs, and
    wait for them at its end. The first error sets ``stopped`` (the others finish what they hold) and is
    raised here, in the sender's thread."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
            stopped.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=f"{name}-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


class _Lease:
    """A sender's hold on its mailing, renewed from any of its threads at most every ``RENEW_EVERY``.

    Renewing is not needed for safety (claims lock their deliveries and codes, so two senders never prepare
    or send the same one), only to keep a working sender from being taken over; it is kept out of the batch
    transactions so that those do not queue behind one another on the mailing's row.
    """

    def __init__(self, mailing_id: int, owner: str) -> None:
        self.mailing_id = mailing_id
        self.owner = owner
        self.renewed = clock.now()
        self.lock = threading.Lock()

    def renew(self) -> None:
        with self.lock:
            if clock.now() - self.renewed < RENEW_EVERY:
                return
            self.renewed = clock.now()
        _lease_renew(self.mailing_id, self.owner)


def _lease_release(mailing_id: int, owner: str) -> None:
    _execute(
        f"UPDATE {table_name(Mailing)} SET lease_owner = '', lease_expires = NULL "
        "WHERE id = %s AND lease_owner = %s",
        [mailing_id, owner],
    )


# --- preparing ----------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """What the templates need, resolved once per send."""

    render: Callable[[templating.Client], dict[str, str]]
    initial: list[PromoCodeGroup]
    repeat: list[PromoCodeGroup]
    claim_sql: str  # keeps only the customer fields the templates read
    # Preparation renders only to learn which codes a message shows: it needs the (costly, one per
    # recipient) unsubscribe link only when a template prints it. Delivery always makes it (the headers).
    shows_link: bool = False
    missing: list[str] = field(default_factory=list)  # groups deleted since the draft was checked
    # Per group, the highest code id this send issued so far: where the next batch's codes start.
    after: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _plan(mailing: Mailing) -> _Plan:
    analysis = templating.analyse(mailing.templates)
    groups = groups_by_name(mailing.environment)
    plan = _Plan(
        templating.renderer(mailing.templates),
        [],
        [],
        _claim_sql(analysis.client_fields()),
        shows_link=analysis.shows_unsubscribe_url,
    )
    for macro, target in ((templating.INITIAL, plan.initial), (templating.REPEAT, plan.repeat)):
        for name in analysis.groups(macro):
            if name in groups:
                target.append(groups[name])
            else:
                plan.missing.append(name)
    return plan


def _claim_sql(fields: Sequence[str]) -> str:
    """Take the next pending deliveries: ready with the customer's snapshot, or skipped when the customer
    was deleted or withdrew consent since the start. Returns (id, profile_id, snapshot or NULL)."""
    batch = (
        f"SELECT id, profile_id FROM {table_name(MailingDelivery)} WHERE mailing_id = %s AND status = %s "
        "ORDER BY id LIMIT %s"
    )
    # SQLite's RETURNING names the updated table's columns only, unqualified; PostgreSQL's needs them
    # qualified (the joined tables have an id too).
    returning = "id, profile_id, client"
    if connection.vendor == "postgresql":
        # Two senders (one whose lease lapsed) never prepare the same deliveries.
        batch += " FOR UPDATE SKIP LOCKED"
        returning = "d.id, d.profile_id, d.client"
    snapshot = clients.snapshot_sql(email="d.email", fields=fields)
    return f"""WITH batch AS ({batch})
        UPDATE {table_name(MailingDelivery)} AS d SET
            status = CASE WHEN p.accepts_marketing THEN %s ELSE %s END,
            reason = CASE WHEN p.id IS NULL THEN %s WHEN p.accepts_marketing THEN '' ELSE %s END,
            client = CASE WHEN p.accepts_marketing THEN {snapshot} END,
            prepared_at = %s
        FROM batch AS b
            LEFT JOIN {table_name(CustomerProfile)} AS p ON p.id = b.profile_id
            LEFT JOIN {table_name(CustomerGroup)} AS g ON g.id = p.group_id
        WHERE d.id = b.id
        RETURNING {returning}"""


def _claim_batch(mailing: Mailing, plan: _Plan, now: dt.datetime) -> list[tuple[int, int | None, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            plan.claim_sql,
            [
                mailing.pk,
                Status.PENDING,
                BATCH,
                Status.READY,
                Status.SKIPPED,
                CUSTOMER_GONE,
                CONSENT_WITHDRAWN,
                db_value(MailingDelivery, "prepared_at", now),
            ],
        )
        return cursor.fetchall()


def _prepare_batch(mailing: Mailing, plan: _Plan) -> tuple[int, int]:
    """Prepare the next batch of pending deliveries; returns (ready, skipped), (0, 0) when none is left."""
    now = clock.now()
    with transaction.atomic():
        claimed = _claim_batch(mailing, plan, now)
        if not claimed:
            return 0, 0
        # delivery id -> (profile id, snapshot); the rest (no snapshot: no customer or no consent) were
        # skipped by the claim itself.
        ready = {
            d: (profile_id, snapshot)
            for d, profile_id, snapshot in claimed
            if snapshot is not None and profile_id is not None
        }
        skipped: dict[int, str] = {}  # ready deliveries that end skipped after all -> why
        for name in plan.missing:
            skipped.update(dict.fromkeys(ready, f"Group “{name}” no longer exists"))
        # Issue group by group; a recipient missing a code of any group is skipped.
        issued: dict[str, dict[int, Reserved]] = {}
        for group in plan.initial:
            wanting = [profile_id for d, (profile_id, _) in ready.items() if d not in skipped]
            got = _issue(mailing, plan, group, wanting, now)
            issued[group.name.casefold()] = got
            for delivery_id, (profile_id, _) in ready.items():
                if delivery_id not in skipped and profile_id not in got:
                    skipped[delivery_id] = OUT_OF_CODES.format(group=group.name)
        profile_ids = [profile_id for profile_id, _ in ready.values()]
        last = {
            group.name.casefold(): last_issued_codes(group_id=group.pk, profile_ids=profile_ids)
            for group in plan.repeat
        }
        by_name = {group.name.casefold(): group for group in plan.repeat}
        unissue: list[int] = []
        repeats: list[IssueRow] = []
        # (Making links loads the URLconf once per process: not for templates that never print one.)
        link = unsubscribe.mailing_links(mailing) if plan.shows_link else None
        for delivery_id, (profile_id, snapshot) in ready.items():
            codes = {name: got[profile_id] for name, got in issued.items() if profile_id in got}
            if delivery_id in skipped:
                unissue.extend(code.code_id for code in codes.values())
                continue
            client = clients.client_from_snapshot(snapshot)
            if link is not None:
                client.unsubscribe_url = link(profile_id)
            client.codes = {name: code.code for name, code in codes.items()}
            client.last_codes = {
                name: found[profile_id] for name, found in last.items() if profile_id in found
            }
            try:
                plan.render(client)
            except templating.RenderFailed as exc:
                skipped[delivery_id] = f"Template error for this customer: {exc.problem}"
                unissue.extend(code.code_id for code in codes.values())
                continue
            unissue.extend(code.code_id for name, code in codes.items() if name not in client.used_initial)
            repeats.extend(
                IssueRow(
                    profile_id,
                    None,
                    client.last_codes[name],
                    by_name[name].pk,
                    by_name[name].name,
                    IssueKind.REPEAT,
                    mailing.pk,
                )
                for name in client.used_repeat
            )
        promo_codes_unissue(code_ids=unissue, mailing_id=mailing.pk)
        promo_code_issues_record(issues=repeats, now=now)
        update_rows(
            MailingDelivery,
            ["status", "reason", "client"],
            [(d, Status.SKIPPED, why, None) for d, why in skipped.items()],
        )
        return len(ready) - len(skipped), len(claimed) - len(ready) + len(skipped)


def _issue(
    mailing: Mailing, plan: _Plan, group: PromoCodeGroup, profile_ids: list[int], now: dt.datetime
) -> dict[int, Reserved]:
    with plan.lock:
        after = plan.after.get(group.pk, 0)
    got = promo_codes_issue(
        group=group, profile_ids=profile_ids, mailing_id=mailing.pk, now=now, after_id=after
    )
    if len(got) < len(profile_ids) and after:
        # Codes below the cursor (given back by a message that did not show its code, or left by a batch of
        # another lane that rolled back) still count.
        rest = [profile_id for profile_id in profile_ids if profile_id not in got]
        got.update(promo_codes_issue(group=group, profile_ids=rest, mailing_id=mailing.pk, now=now))
    if got:
        with plan.lock:
            plan.after[group.pk] = max(plan.after.get(group.pk, 0), *(code.code_id for code in got.values()))
    return got


class _Preparer:
    """Prepares every pending delivery, batch after batch.

    On PostgreSQL ``PATRONAGE_MAILING_PREPARE_LANES`` batches (default 2) are prepared at once, each in its
    own transaction on its own connection: while one lane renders (Python), the other's statements run in
    the database, so both cores work. Lanes never take the same deliveries or codes (``SKIP LOCKED``).
    SQLite has one writer at a time: one lane.
    """

    def __init__(
        self,
        mailing: Mailing,
        plan: _Plan,
        lease: _Lease,
        outcome: SendOutcome,
        progress: ProgressCallback | None,
    ) -> None:
        self.mailing = mailing
        self.plan = plan
        self.lease = lease
        self.outcome = outcome
        self.progress = progress
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        lanes = int(getattr(settings, "PATRONAGE_MAILING_PREPARE_LANES", 2))
        self.lanes = max(1, lanes) if connection.vendor == "postgresql" else 1

    def run(self) -> None:
        if self.lanes == 1:
            self._lane()
            return
        with _threads(f"mailing-{self.mailing.pk}-prepare", self.lanes, self._lane, self.stopped):
            pass

    def _lane(self) -> None:
        while not self.stopped.is_set():
            self.lease.renew()
            ready, skipped = _prepare_batch(self.mailing, self.plan)
            if not ready and not skipped:
                return
            with self.lock:
                self.outcome.prepared += ready
                self.outcome.skipped += skipped
                if self.progress:
                    self.progress("prepare", ready + skipped)


# --- delivering ---------------------------------------------------------------------------------------
def _message(
    mailing: Mailing, subject: str, html: str, text: str, to: str, unsubscribe_url: str
) -> EmailMultiAlternatives:
    headers = {"X-Patronage-Mailing": str(mailing.pk), **unsubscribe.headers(unsubscribe_url)}
    if text:
        message = EmailMultiAlternatives(subject, text, mailing.sender, [to], headers=headers)
        if html:
            message.attach_alternative(html, "text/html")
    else:
        message = EmailMultiAlternatives(subject, html, mailing.sender, [to], headers=headers)
        message.content_subtype = "html"
    return message


@dataclass(frozen=True)
class _Envelope:
    """A message as it goes over the wire."""

    sender: str
    recipients: list[str]
    data: bytes


def _envelope(message: EmailMultiAlternatives) -> _Envelope:
    """Build the message before its SMTP conversation (as Django's SMTP backend would): an address or a
    header that cannot be sent (a line break in the sender) fails here, before anything is handed over."""
    encoding = message.encoding or settings.DEFAULT_CHARSET
    return _Envelope(
        sanitize_address(message.from_email, encoding),
        [sanitize_address(address, encoding) for address in message.recipients()],
        message.message().as_bytes(linesep="\r\n"),
    )


class _NotHandedOver(Exception):
    """The SMTP conversation failed before the message's content went out: nothing can have arrived."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """End a refused transaction (``RSET``), or the connection when the server is closing it (421)."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        smtp.rset()


def _smtp_hand_over(smtp: smtplib.SMTP, envelope: _Envelope) -> None:
    """``smtplib.SMTP.sendmail`` step by step, so that a failure tells whether the content went out: until
    the server answers ``DATA`` with 354 nothing can arrive (``_NotHandedOver``). Refusals raise smtplib's
    own exceptions, as ``sendmail`` does."""
    try:
        smtp.ehlo_or_helo_if_needed()
        options = [f"size={len(envelope.data)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
        code, reply = smtp.mail(envelope.sender, options)
        if code != 250:
            _abandon(smtp, code)
            raise smtplib.SMTPSenderRefused(code, reply, envelope.sender)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in envelope.recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
            if code == 421:
                smtp.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(envelope.recipients):
            _abandon(smtp, code)
            raise smtplib.SMTPRecipientsRefused(refused)
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        if code != 354:
            _abandon(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
    except (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError):
        raise
    except OSError as exc:  # a lost connection (smtplib's errors are OSErrors too)
        raise _NotHandedOver(exc) from exc
    # From here on the content is on its way: a failure may mean it arrived.
    data = _LEADING_DOT.sub(b"..", envelope.data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    smtp.send(data + b".\r\n")
    code, reply = smtp.getreply()
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


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
        table = table_name(MailingDelivery)
        # The claim stores the message as it is handed over.
        self.claim_sql = (
            f"UPDATE {table} SET status = %s, subject = %s, html = %s, text = %s "
            "WHERE id = %s AND status = %s"
        )
        self.finish_sql = f"UPDATE {table} SET status = %s, reason = %s, sent_at = %s WHERE id = %s"
        self.fail_sql = f"UPDATE {table} SET status = %s, reason = %s WHERE id = %s AND status = %s"
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
            for delivery_id, email, client in rows:
                deliverer.renew()
                try:
                    subject, html, text = templating.message(deliverer.render(client))
                except templating.RenderFailed as exc:
                    # Rendering is deterministic, so this needs the mailing's templates changed under a
                    # running send; the recipient gets nothing rather than a message unlike the prepared one.
                    self._unsendable(
                        delivery_id, f"Template error for this customer: {exc.problem}. {NOT_HANDED_OVER}"
                    )
                    continue
                url = client.unsubscribe_url
                html, text = unsubscribe.with_footer(html, text, url)
                message = _message(deliverer.mailing, subject, html, text, email, url)
                try:
                    envelope = _envelope(message)
                except (ValueError, TypeError, LookupError) as exc:  # BadHeaderError is a ValueError
                    self._unsendable(delivery_id, f"{NOT_HANDED_OVER}: the message cannot be sent ({exc})")
                    continue
                if not self._claim(delivery_id, subject, html, text):
                    continue  # another sender got it
                if not self._send_one(delivery_id, message, envelope):
                    return
        finally:
            self._write_outcome()
            self.backend.close()

    def _claim(self, delivery_id: int, subject: str, html: str, text: str) -> bool:
        with transaction.atomic():
            self._write_outcome()
            claimed = [Status.SENDING, subject, html, text, delivery_id, Status.READY]
            return bool(_execute(self.claim_sql, claimed))

    def _unsendable(self, delivery_id: int, why: str) -> None:
        with transaction.atomic():
            self._write_outcome()
            if _execute(self.fail_sql, [Status.FAILED, why, delivery_id, Status.READY]):
                self.deliverer.count(Status.FAILED)

    def _write_outcome(self) -> None:
        if self.outcome_row is not None:
            _execute(self.finish_sql, self.outcome_row)
            self.outcome_row = None

    def _hand_over(self, message: EmailMultiAlternatives, envelope: _Envelope) -> None:
        if not isinstance(self.backend, SmtpBackend):
            # Another backend (a file, the console, memory) hands over or fails as a whole.
            self.backend.send_messages([message])
            return
        if self.backend.connection is None:
            raise _NotHandedOver(smtplib.SMTPServerDisconnected("not connected to the SMTP server"))
        _smtp_hand_over(self.backend.connection, envelope)

    def _send_one(self, delivery_id: int, message: EmailMultiAlternatives, envelope: _Envelope) -> bool:
        """Hand one message over; False when the SMTP server is gone and the lane must stop."""
        status, reason, keep_going = Status.SENT, "", True
        try:
            self._hand_over(message, envelope)
        except _NotHandedOver as exc:
            status, reason = Status.FAILED, f"{NOT_HANDED_OVER}: {_smtp_reason(exc.error)}"
            keep_going = self._reconnect()
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


_Ready = tuple[int, str, templating.Client]  # delivery id, address, the client with its codes


class _Deliverer:
    """Hands every ready message over, through ``connections`` SMTP connections at once.

    Each extra connection is a thread with its own database connection: while one waits for the SMTP
    server or the database, another builds its next message. Rows are read here in pages and dealt out
    through a queue; a lane claims each row before sending it, so no row goes out twice.
    """

    def __init__(
        self,
        mailing: Mailing,
        render: Callable[[templating.Client], dict[str, str]],
        lease: _Lease,
        outcome: SendOutcome,
        progress: ProgressCallback | None,
    ) -> None:
        self.mailing = mailing
        self.render = render
        self.renew = lease.renew
        self.outcome = outcome
        self.progress = progress
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.connections = max(1, int(getattr(settings, "PATRONAGE_MAILING_CONNECTIONS", 1)))

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
        page = list(
            MailingDelivery.objects.filter(mailing_id=self.mailing.pk, status=Status.READY, id__gt=after)
            .order_by("id")
            .values_list("id", "email", "profile_id", "client")[:500]
        )
        # A snapshot is always there: deleting a customer skips their ready deliveries
        # (deliveries_forget_customers).
        page = [row for row in page if row[3] is not None]
        prepared = clients.prepared_clients(
            mailing_id=self.mailing.pk,
            prepared=[(profile_id, snapshot) for _, _, profile_id, snapshot in page],
        )
        link = unsubscribe.mailing_links(self.mailing)
        for row, client in zip(page, prepared, strict=True):
            if row[2] is not None:
                client.unsubscribe_url = link(row[2])
        return [(row[0], row[1], client) for row, client in zip(page, prepared, strict=True)]

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

        def drain() -> Iterator[_Ready]:
            while not self.stopped.is_set():
                try:
                    yield rows.get(timeout=0.2)
                except queue.Empty:
                    if fed.is_set():
                        return

        def lane() -> None:
            _Lane(self).run(drain())

        with _threads(f"mailing-{self.mailing.pk}-lane", self.connections, lane, self.stopped):
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
        lease = _Lease(mailing.pk, owner)
        _Preparer(mailing, plan, lease, outcome, progress).run()
        if deliver:
            _Deliverer(mailing, plan.render, lease, outcome, progress).run()
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
