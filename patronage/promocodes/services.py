"""Writes about promo codes: groups, uploads and redemption.

Uploads are set-based whatever their size: codes are checked in Python (``uploads.parse_codes``), the good
ones go into a TEMP staging table (COPY on PostgreSQL, ``executemany`` on SQLite), the codes already in the
environment are found by one join, and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` adds the rest in
upload order (a mailing hands out the active codes of a group in that order). It all happens in one
transaction: an upload is applied whole or not at all.

Redemption is single use: one conditional ``UPDATE ... WHERE redeemed_at IS NULL`` decides who wins, so it
holds on SQLite (no row locks) and under concurrent requests on PostgreSQL alike.
A code can be redeemed only by the customer it was issued to. A code nobody was issued yet cannot be
redeemed (it would leave the pool a mailing hands out, and the model requires an issue before a redemption):
that is a Conflict saying so, as is a code issued to someone else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.db import connection, transaction
from django.db.models import QuerySet

from patronage.core import clock
from patronage.core.audit import audit
from patronage.core.bulk import column_names, db_value, insert_rows, table_name
from patronage.core.errors import Conflict, ErrorDetail, NotFound, ValidationFailed
from patronage.core.naming import checked_name, save_named
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Environment

from .models import IssueKind, PromoCode, PromoCodeGroup, PromoCodeIssue
from .uploads import DUPLICATE, MAX_REPORTED, ParsedCodes, parse_codes


@dataclass
class UploadResult:
    added: int = 0
    duplicates: int = 0  # reported and skipped: repeated in the upload or already in the environment
    invalid: int = 0
    # Invalid lines and duplicates, by line number (at most ``uploads.MAX_REPORTED``; the counts are exact).
    problems: list[ErrorDetail] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.added} added, {self.duplicates} duplicate, {self.invalid} invalid"


# --- groups -------------------------------------------------------------------------------------------
def _checked_name(*, environment: Environment, name: str, pk: int | None = None) -> str:
    return checked_name(PromoCodeGroup, environment=environment, name=name, noun="group", pk=pk)


def _saved(group: PromoCodeGroup) -> None:
    save_named(group, noun="group")


@transaction.atomic
def promo_code_group_create(
    *,
    environment: Environment,
    name: str,
    description: str = "",
    codes: Iterable[str] = (),
    actor: Any = None,
) -> tuple[PromoCodeGroup, UploadResult]:
    """A new group, with the codes given uploaded into it (see ``promo_codes_upload``)."""
    group = PromoCodeGroup(
        environment=environment,
        name=_checked_name(environment=environment, name=name),
        description=description.strip(),
    )
    _saved(group)
    audit(actor, group, ADDITION, "Created")
    result = promo_codes_upload(group=group, lines=codes, actor=actor)
    return group, result


@transaction.atomic
def promo_code_group_update(
    *, group: PromoCodeGroup, name: str, description: str, actor: Any = None
) -> PromoCodeGroup:
    """Rename a group or change its description. Issues already made keep the name they were made under."""
    group.name = _checked_name(environment=group.environment, name=name, pk=group.pk)
    group.description = description.strip()
    _saved(group)
    audit(actor, group, CHANGE, "Changed name or description")
    return group


@transaction.atomic
def promo_code_group_delete(*, group: PromoCodeGroup, actor: Any = None) -> int:
    """Delete a group and its codes; the customers' issue history stays (it keeps copies of the code and
    the group's name). Returns how many issues stay."""
    # Issuing holds the group's row (FOR KEY SHARE) until it commits: once this lock is ours no issue of the
    # group is in flight, and none starts before the group is gone, so the unlinking below sees them all.
    PromoCodeGroup.objects.select_for_update().filter(pk=group.pk).first()
    kept = PromoCodeIssue.objects.filter(group=group).update(group=None, promo_code=None)
    # The issues of the group's codes were unlinked just above, so the codes go by one DELETE: Django's
    # cascade would load every code (a million) to set references that are already NULL.
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(PromoCode._meta.db_table)} WHERE group_id = %s",
            [group.pk],
        )
    audit(actor, group, DELETION, f"Deleted; the history of {kept} issued codes stays")
    group.delete()
    return kept


# --- uploads ------------------------------------------------------------------------------------------
class _Staging:
    """A TEMP table of this connection holding (line, code) of the good codes. It is created inside the
    upload's transaction and dropped at its end; a failed upload rolls its creation back with the rest."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.table = f"promo_upload_{uuid.uuid4().hex[:12]}"
        self.codes = connection.ops.quote_name(PromoCode._meta.db_table)
        self.groups = connection.ops.quote_name(PromoCodeGroup._meta.db_table)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def create(self, rows: list[tuple[int, str]]) -> None:
        self.execute(f"CREATE TEMP TABLE {self.table} (line bigint NOT NULL, code text NOT NULL)")
        if not rows:
            return
        with connection.cursor() as cursor:
            if self.postgres:
                # COPY's text format built in one string: checked codes hold no tab, newline or backslash,
                # and write_row per row would cost more than the rest of the upload.
                with cursor.cursor.copy(f"COPY {self.table} (line, code) FROM STDIN") as copy:
                    copy.write("".join([f"{line}\t{code}\n" for line, code in rows]).encode())
            else:
                cursor.executemany(f"INSERT INTO {self.table} (line, code) VALUES (%s, %s)", rows)

    def taken(self, environment_id: int) -> list[tuple[int, str, str]]:
        """(line, code, group name) of codes already in the environment, the first ``MAX_REPORTED``."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT s.line, s.code, g.name FROM {self.table} s
                JOIN {self.codes} p ON p.environment_id = %s AND p.code = s.code
                JOIN {self.groups} g ON g.id = p.group_id
                ORDER BY s.line LIMIT %s""",
                [environment_id, MAX_REPORTED],
            )
            return [(int(line), code, name) for line, code, name in cursor.fetchall()]

    def merge(self, group: PromoCodeGroup) -> int:
        now = PromoCode._meta.get_field("uploaded_at").get_db_prep_save(clock.now(), connection)
        # In line order, so the ids (and a mailing's "next active code") follow the upload. A code another
        # upload adds meanwhile is skipped by ON CONFLICT and counts as a duplicate.
        # (SQLite needs the WHERE to tell ON CONFLICT from a join's ON.)
        return self.execute(
            f"""INSERT INTO {self.codes} (environment_id, group_id, code, uploaded_at)
            SELECT %s, %s, code, %s FROM {self.table} WHERE true ORDER BY line
            ON CONFLICT (environment_id, code) DO NOTHING""",
            [group.environment_id, group.pk, now],
        )

    def drop(self) -> None:
        self.execute(f"DROP TABLE {self.table}")


@transaction.atomic
def promo_codes_upload(*, group: PromoCodeGroup, lines: Iterable[str], actor: Any = None) -> UploadResult:
    """Add codes to a group, one per line: trimmed, blank lines ignored, invalid lines and duplicates
    (within the upload or anywhere in the environment) reported by line and skipped. All or nothing."""
    return promo_codes_add(group=group, parsed=parse_codes(lines), actor=actor)


@transaction.atomic
def promo_codes_add(*, group: PromoCodeGroup, parsed: ParsedCodes, actor: Any = None) -> UploadResult:
    """``promo_codes_upload`` of lines already read by ``uploads.parse_codes`` (the file import checks
    the whole file before deciding whether to write)."""
    result = UploadResult(invalid=parsed.invalid, duplicates=parsed.duplicates, problems=parsed.problems)
    if parsed.codes:
        staging = _Staging()
        staging.create(parsed.codes)
        for line, code, group_name in staging.taken(group.environment_id):
            where = "this group" if group_name == group.name else f"group {group_name!r}"
            parsed.report(DUPLICATE, f"Line {line}: {code} is already in {where}; skipped", line)
        result.added = staging.merge(group)
        result.duplicates += len(parsed.codes) - result.added
        staging.drop()
        result.problems.sort(key=lambda problem: problem.line or 0)
    if parsed.unreported:
        result.problems.append(
            ErrorDetail(
                title="More problems",
                details=f"{parsed.unreported} more invalid or duplicate lines are not listed",
            )
        )
    if result.added and actor is not None:
        audit(actor, group, CHANGE, f"Uploaded codes: {result.summary}")
    return result


# --- redemption ---------------------------------------------------------------------------------------
def promo_code_redeem(*, environment: Environment, code: str, profile: CustomerProfile) -> PromoCode:
    """Mark the code used by the customer it was issued to; once only (see the module's docstring)."""
    code = code.strip()
    if profile.environment_id != environment.pk:
        raise ValidationFailed(f"Customer {profile.integration_id} is not in {environment}")
    now = clock.now()
    codes = PromoCode.objects.filter(environment=environment, code=code)
    won = promo_codes_mark_redeemed(codes, profile=profile, now=now)
    promo = codes.select_related("group").first()
    if promo is None:
        raise NotFound(f"No promo code {code!r} in {environment}")
    if won:
        return promo
    if promo.redeemed_at is not None:
        who = "by this customer" if promo.redeemed_by_id == profile.pk else "by another customer"
        raise Conflict(
            f"Promo code {code} was already used on {promo.redeemed_at:%Y-%m-%d %H:%M:%S} UTC {who}",
            redeemed_at=promo.redeemed_at,
        )
    if promo.issued_at is None:
        raise Conflict(f"Promo code {code} was not issued to anyone yet: only an issued code can be redeemed")
    raise Conflict(f"Promo code {code} was issued to another customer: only they can redeem it")


def promo_codes_mark_redeemed(
    codes: QuerySet[PromoCode], *, profile: CustomerProfile, now: dt.datetime
) -> int:
    """The one rule and statement that redeem a promo code, whichever way it comes in (this API, or a
    session closing with it through a campaign): issued to this customer and not redeemed yet. Of
    concurrent redeems exactly one finds ``redeemed_at`` still NULL; the row lock the UPDATE takes is the
    lock both paths share."""
    return codes.filter(redeemed_at__isnull=True, issued_at__isnull=False, issued_to=profile).update(
        redeemed_at=now, redeemed_by=profile
    )


def promo_codes_unredeem(codes: QuerySet[PromoCode], *, profile_id: int | None) -> int:
    """Give codes back (a session that redeemed them was cancelled): usable again by the customer they
    were issued to."""
    return codes.filter(redeemed_by_id=profile_id).update(redeemed_at=None, redeemed_by=None)


# --- issuing ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reserved:
    code_id: int
    code: str


ISSUE_FIELDS = ["profile", "promo_code", "code", "group", "group_name", "kind", "mailing_id", "created"]


def promo_codes_issue(
    *,
    group: PromoCodeGroup,
    profile_ids: Sequence[int],
    mailing_id: int,
    now: dt.datetime,
    after_id: int = 0,
) -> dict[int, Reserved]:
    """Issue the group's next active codes (upload order) to these customers, one each, in the order given,
    and record each as an initial issue of the mailing; fewer when the group runs out. Returns what each
    customer got. :func:`promo_codes_unissue` takes back the codes a message then does not show.

    Runs inside the caller's transaction. Concurrent calls never take the same code: on PostgreSQL each locks
    the codes it picks and skips codes another has locked (``FOR UPDATE SKIP LOCKED``), and the UPDATE
    re-checks that the code is still active; SQLite runs one writer at a time (IMMEDIATE transactions).
    On PostgreSQL picking, issuing and recording are one statement, whatever the number of customers.

    ``after_id`` skips codes up to that id: a caller issuing batch after batch passes the highest code it
    got so far, so each batch starts where the last ended instead of walking the index entries of every
    code issued since the last VACUUM (which made a long send quadratic).
    """
    if not profile_ids:
        return {}
    table = table_name(PromoCode)
    when = db_value(PromoCode, "issued_at", now)
    recorded = [group.pk, group.name, IssueKind.INITIAL, mailing_id, db_value(PromoCodeIssue, "created", now)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The group's row stays locked until the caller commits: a group being deleted is not issued
            # from (see promo_code_group_delete); one deleted meanwhile has no code left to pick.
            cursor.execute(
                f"""WITH held AS (SELECT id FROM {table_name(PromoCodeGroup)} WHERE id = %s FOR KEY SHARE),
                picked AS (
                    SELECT id FROM {table} WHERE group_id = (SELECT id FROM held) AND issued_at IS NULL
                    AND id > %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
                ), numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM picked),
                wanted AS (SELECT * FROM unnest(%s::bigint[]) WITH ORDINALITY AS w(profile_id, n)),
                issued AS (
                    UPDATE {table} AS c SET issued_to_id = wanted.profile_id, issued_at = %s
                    FROM numbered JOIN wanted USING (n)
                    WHERE c.id = numbered.id AND c.issued_at IS NULL
                    RETURNING c.issued_to_id, c.id, c.code
                ), recorded AS (
                    INSERT INTO {table_name(PromoCodeIssue)} ({column_names(PromoCodeIssue, ISSUE_FIELDS)})
                    SELECT issued_to_id, id, code, %s, %s, %s, %s, %s FROM issued
                )
                SELECT issued_to_id, id, code FROM issued""",
                [group.pk, after_id, len(profile_ids), list(profile_ids), when, *recorded],
            )
            return {profile_id: Reserved(code_id, code) for profile_id, code_id, code in cursor.fetchall()}
        cursor.execute(
            f"SELECT id, code FROM {table} WHERE group_id = %s AND issued_at IS NULL AND id > %s "
            "ORDER BY id LIMIT %s",
            [group.pk, after_id, len(profile_ids)],
        )
        got = {
            profile_id: Reserved(code_id, code)
            for profile_id, (code_id, code) in zip(profile_ids, cursor.fetchall(), strict=False)
        }
        cursor.executemany(
            f"UPDATE {table} SET issued_to_id = %s, issued_at = %s WHERE id = %s AND issued_at IS NULL",
            [(profile_id, when, r.code_id) for profile_id, r in got.items()],
        )
    insert_rows(
        PromoCodeIssue,
        ISSUE_FIELDS,
        [(profile_id, r.code_id, r.code, *recorded) for profile_id, r in got.items()],
    )
    return got


def promo_codes_unissue(*, code_ids: Sequence[int], mailing_id: int) -> None:
    """Take back codes :func:`promo_codes_issue` handed out in this transaction (the message that would show
    them is not sent): active again, and no longer in the customers' issue history. Codes that were
    redeemed meanwhile cannot be: they stay issued."""
    if code_ids:
        PromoCode.objects.filter(pk__in=code_ids, redeemed_at__isnull=True).update(
            issued_to=None, issued_at=None
        )
        PromoCodeIssue.objects.filter(
            promo_code_id__in=code_ids, mailing_id=mailing_id, kind=IssueKind.INITIAL
        ).delete()


@dataclass(frozen=True)
class IssueRow:
    profile_id: int
    code_id: int | None
    code: str
    group_id: int
    group_name: str
    kind: str
    mailing_id: int | None


def promo_code_issues_record(*, issues: Sequence[IssueRow], now: dt.datetime) -> None:
    """Record issues in one statement (a mailing's batch records thousands)."""
    created = db_value(PromoCodeIssue, "created", now)
    insert_rows(
        PromoCodeIssue,
        ISSUE_FIELDS,
        [
            (i.profile_id, i.code_id, i.code, i.group_id, i.group_name, i.kind, i.mailing_id, created)
            for i in issues
        ],
    )
