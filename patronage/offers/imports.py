"""Email assignments of private offers from a CSV file: ``patronage import offer-assignments FILE``, the
back office's Import/Export ("Customer private offer") and an offer's "Import emails" button.

The file
    Header required, names case-insensitive: ``Email`` and ``Offer ID`` (the offer's system name). When
    the import is for one offer (option ``offer``), ``Offer ID`` may be left out or left empty; a row
    naming another offer is then a bad row. Every cell first loses one leading ``'`` (see core.csvio).

Rules
    - Emails are trimmed, lowercased and checked as the customers import checks them; an email may be
      assigned before its customer exists (the offer shows once they register).
    - An unknown system name (in the import's environment), a public offer (public offers take no emails)
      and an invalid email are bad rows, reported by line. The same pair twice in the file, or a pair
      already assigned, is no error: it changes nothing and counts as unchanged.

How
    1. Rows are read and checked in Python. Offers are a hand-made list (thousands, not millions), so
       their system names are looked up in one dict loaded by one query, not joined per row: the check
       costs a dict lookup, which is what lets a million rows load in a few seconds.
    2. Good pairs go into a TEMP staging table (COPY on PostgreSQL, ``executemany`` on SQLite) in
       autocommit: until the last line is read nothing is written, so a bad row can still stop it all.
    3. One ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` in one transaction: created = rows it
       inserted, unchanged = the other good rows.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.db import DatabaseError, connection, transaction

from patronage.core import clock
from patronage.core.csvio import Columns, CountingReader, CsvReader, check_header, restore
from patronage.core.errors import ErrorCollector, ErrorDetail, NotFound, ValidationFailed
from patronage.customers.imports import MAX_EMAIL, email_valid
from patronage.dataio.registry import (
    Importer,
    ImportOption,
    ImportOutcome,
    ProblemSink,
    Progress,
    register_importer,
)
from patronage.workspace.models import Environment

from .models import Offer, OfferAssignment

KIND = "offer-assignments"
EMAIL, OFFER_ID = "email", "offer id"
COLUMNS = Columns(required=(EMAIL,), optional=(OFFER_ID,))
SHOWN = {EMAIL: "Email", OFFER_ID: "Offer ID"}  # column names as the file and the problems say them
CHUNK_ROWS = 5000
# ``IN (...)`` lists stay under SQLite's bound-parameter limit.
EMAIL_BATCH = 5000


def check_assignment_header(header: Sequence[str]) -> list[str]:
    return check_header(header, COLUMNS)


def _offer_by_id_or_name(value: str) -> Offer:
    """An offer named by its system name (the CLI's ``--offer``) or its id (the back office's button);
    a system name wins over an id that looks the same."""
    offers = Offer.objects.select_related("environment")
    offer = offers.filter(system_name=value).first()
    if offer is None and value.isdigit():
        offer = offers.filter(pk=int(value)).first()
    if offer is None:
        raise NotFound(f"No offer with system name or id {value!r}")
    return offer


def _clean_offer_option(value: str, environment: Environment | None) -> int:
    offer = _offer_by_id_or_name(str(value))
    if environment is not None and offer.environment_id != environment.pk:
        raise ValidationFailed(
            f"Offer {offer.system_name} is in {offer.environment}, not {environment}: "
            "import into the offer's environment"
        )
    if offer.is_public:
        raise ValidationFailed(f"Offer {offer.system_name} is public: public offers take no emails")
    return offer.pk


def _describe_offer_option(value: Any) -> str:
    offer = Offer.objects.filter(pk=value).first()
    return f"{offer.system_name} ({offer.name})" if offer else f"offer #{value} (deleted)"


def _offer_environment(value: Any) -> str | None:
    return Offer.objects.filter(pk=value).values_list("environment__slug", flat=True).first()


OFFER_OPTION = ImportOption(
    name="offer",
    label="Offer",
    help="the system name of the one offer these emails are for (the Offer ID column may then be left out)",
    clean=_clean_offer_option,
    describe=_describe_offer_option,
    environment_of=_offer_environment,
)


# --- reading ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    offer_id: int
    is_public: bool


class _RowChecker:
    """Turns records into good (offer id, email) pairs and problems (line, column, reason)."""

    def __init__(self, header: Sequence[str], environment: Environment, fixed: Offer | None) -> None:
        self.width = len(header)
        self.i_email = header.index(EMAIL)
        self.i_offer = header.index(OFFER_ID) if OFFER_ID in header else None
        self.fixed = fixed
        self.environment = environment
        # The environment's offers by system name, once (see the module's docstring).
        self.targets = {
            name: _Target(pk, public)
            for pk, name, public in Offer.objects.filter(environment=environment).values_list(
                "pk", "system_name", "is_public"
            )
        }

    def check(
        self, records: Iterable[tuple[int, list[str]]]
    ) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]], int]:
        """(good pairs, problems, bad lines) of a batch of records."""
        pairs: list[tuple[int, str]] = []
        problems: list[tuple[int, str, str]] = []
        bad_lines = 0
        i_email, i_offer, fixed, targets = self.i_email, self.i_offer, self.fixed, self.targets
        for line, cells in records:
            if len(cells) != self.width:
                problems.append(
                    (line, "", f"expected {self.width} columns (as in the header), found {len(cells)}")
                )
                bad_lines += 1
                continue
            found = len(problems)
            email = cells[i_email]
            if email.startswith("'"):
                email = restore(email)
            email = email.strip().lower()
            if not email:
                problems.append((line, "Email", "Email: required"))
            elif len(email) > MAX_EMAIL:
                problems.append((line, "Email", f"Email: longer than {MAX_EMAIL} characters"))
            elif not email_valid(email):
                problems.append((line, "Email", f"Email: {email!r} is not a valid email address"))
            name = restore(cells[i_offer]).strip() if i_offer is not None else ""
            offer_id = 0
            if fixed is not None and (not name or name == fixed.system_name):
                offer_id = fixed.pk
            elif fixed is not None:
                problems.append(
                    (
                        line,
                        "Offer ID",
                        f"Offer ID: {name!r}, but this import is for offer {fixed.system_name} only",
                    )
                )
            elif not name:
                problems.append((line, "Offer ID", "Offer ID: required"))
            elif (target := targets.get(name)) is None:
                problems.append(
                    (line, "Offer ID", f"Offer ID: no offer with system name {name!r} in {self.environment}")
                )
            elif target.is_public:
                problems.append(
                    (line, "Offer ID", f"Offer ID: {name} is a public offer; public offers take no emails")
                )
            else:
                offer_id = target.offer_id
            if len(problems) > found:
                bad_lines += 1
            else:
                pairs.append((offer_id, email))
        return pairs, problems, bad_lines


def _batches(records: Iterable[tuple[int, list[str]]], size: int) -> Iterable[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the staging table and the merge ------------------------------------------------------------------
class _Staging:
    """A TEMP table of this connection (gone with it, whatever happens) holding the good pairs."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.table = f"import_assignments_{uuid.uuid4().hex[:12]}"
        self.assignments = connection.ops.quote_name(OfferAssignment._meta.db_table)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def create(self) -> None:
        self.execute(f"CREATE TEMP TABLE {self.table} (offer_id bigint NOT NULL, email text NOT NULL)")

    def write(self, pairs: list[tuple[int, str]]) -> None:
        if not pairs:
            return
        if self.postgres:
            # COPY's text format, built here: write_row per row costs more than the rest of the import.
            # Checked emails hold no tab, newline or backslash but a quoted local part might: escape then.
            lines = []
            for offer_id, email in pairs:
                if "\\" in email or "\t" in email:
                    email = email.replace("\\", "\\\\").replace("\t", "\\t")
                lines.append(f"{offer_id}\t{email}\n")
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {self.table} (offer_id, email) FROM STDIN") as copy,
            ):
                copy.write("".join(lines).encode())
            return
        # A transaction per batch: far faster than a commit per row, for a few ms of write lock.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.table} (offer_id, email) VALUES (%s, %s)", pairs)

    def merge(self) -> int:
        """Insert the pairs not assigned yet, in one statement; the number inserted."""
        now = OfferAssignment._meta.get_field("created").get_db_prep_save(clock.now(), connection)
        # Sorted like the unique index: its pages are then touched in order, not at random.
        # (SQLite needs the WHERE to tell ON CONFLICT from a join's ON.)
        insert = f"""INSERT INTO {self.assignments} (offer_id, email, created)
            SELECT offer_id, email, %s FROM {self.table} WHERE true ORDER BY offer_id, email
            ON CONFLICT (offer_id, email) DO NOTHING"""
        with transaction.atomic():
            return self.execute(insert, [now])

    def drop(self) -> None:
        # When the connection is unusable the table is gone with it.
        with contextlib.suppress(DatabaseError):
            self.execute(f"DROP TABLE IF EXISTS {self.table}")


def _details(problems: Iterable[tuple[int, str, str]]) -> list[ErrorDetail]:
    return [
        ErrorDetail(title="Bad row", details=reason, pointer=column, line=line)
        for line, column, reason in problems
    ]


def _fixed_offer(options: dict[str, Any], environment: Environment) -> Offer | None:
    if not options.get("offer"):
        return None
    offer = Offer.objects.filter(pk=options["offer"]).first()
    errors = ErrorCollector()
    if offer is None:
        errors.add(f"The offer this import is for (#{options['offer']}) was deleted")
    elif offer.environment_id != environment.pk:
        errors.add(f"Offer {offer.system_name} is not in {environment}: import into its own environment")
    elif offer.is_public:
        errors.add(f"Offer {offer.system_name} is public: public offers take no emails")
    errors.raise_if_any()
    return offer


def import_offer_assignments(
    *,
    source: IO[bytes],
    size: int,
    environment: Environment,
    skip_bad_rows: bool,
    progress: Progress,
    problems: ProblemSink,
    options: dict[str, Any] | None = None,
) -> ImportOutcome:
    counter = CountingReader(source)
    reader = CsvReader(io.BufferedReader(counter, buffer_size=256 * 1024))
    header = check_assignment_header(reader.header)
    fixed = _fixed_offer(options or {}, environment)
    if fixed is None and OFFER_ID not in header:
        raise ValidationFailed(
            "The header must have the columns Email and Offer ID (Offer ID may be left out only when "
            "importing emails from an offer's “Import emails”)",
            details=[ErrorDetail("Invalid value", "missing column: Offer ID", pointer="Offer ID", line=1)],
        )
    checker = _RowChecker(header, environment, fixed)
    staging = _Staging()
    outcome = ImportOutcome()
    good = 0
    try:
        staging.create()
        for batch in _batches(reader, CHUNK_ROWS):
            pairs, found, bad_lines = checker.check(batch)
            outcome.total_rows += len(batch)
            outcome.bad_rows += bad_lines
            if found:
                problems(_details(found))
            if outcome.bad_rows and not skip_bad_rows:
                # Nothing will be written: keep reading for the problems only.
                pairs = []
            staging.write(pairs)
            good += len(pairs)
            fraction = min(1.0, counter.count / size) if size else 1.0
            progress(phase="Reading and checking rows", rows=outcome.total_rows, fraction=0.9 * fraction)
        if outcome.bad_rows and not skip_bad_rows:
            return outcome
        progress(phase="Saving", rows=outcome.total_rows, fraction=0.92)
        outcome.created = staging.merge()
        outcome.unchanged = good - outcome.created
        outcome.skipped = outcome.bad_rows
        outcome.applied = True
        return outcome
    finally:
        staging.drop()


# --- assignments through the Management API ----------------------------------------------------------
def _checked_emails(emails: Sequence[str]) -> list[str]:
    """The emails normalized, or ValidationFailed pointing at each bad one (``/emails/<index>``)."""
    errors = ErrorCollector()
    normalized = []
    for index, raw in enumerate(emails):
        email = raw.strip().lower()
        if len(email) > MAX_EMAIL or not email_valid(email):
            errors.add(f"{raw!r} is not a valid email address", pointer=f"/emails/{index}")
        normalized.append(email)
    errors.raise_if_any("Some emails are not valid")
    return list(dict.fromkeys(normalized))


@dataclass(frozen=True)
class AssignmentCounts:
    changed: int  # assigned (add) or removed (remove)
    unchanged: int  # already assigned (add) or not assigned (remove)


@transaction.atomic
def offer_assignments_add(*, offer: Offer, emails: Sequence[str]) -> AssignmentCounts:
    """Assign emails to a private offer, all or none; emails already assigned change nothing."""
    if offer.is_public:
        raise ValidationFailed(f"Offer {offer.system_name} is public: public offers take no emails")
    wanted = _checked_emails(emails)
    existing: set[str] = set()
    for start in range(0, len(wanted), EMAIL_BATCH):
        batch = wanted[start : start + EMAIL_BATCH]
        existing.update(
            OfferAssignment.objects.filter(offer=offer, email__in=batch).values_list("email", flat=True)
        )
    now = clock.now()
    new = [
        OfferAssignment(offer=offer, email=email, created=now) for email in wanted if email not in existing
    ]
    # A concurrent add of the same email is no error: it is assigned either way.
    OfferAssignment.objects.bulk_create(new, batch_size=EMAIL_BATCH, ignore_conflicts=True)
    return AssignmentCounts(changed=len(new), unchanged=len(emails) - len(new))


@transaction.atomic
def offer_assignments_remove(*, offer: Offer, emails: Sequence[str]) -> AssignmentCounts:
    """Unassign emails from an offer; emails that were not assigned change nothing."""
    wanted = [email.strip().lower() for email in emails]
    removed = 0
    unique = list(dict.fromkeys(wanted))
    for start in range(0, len(unique), EMAIL_BATCH):
        batch = unique[start : start + EMAIL_BATCH]
        removed += OfferAssignment.objects.filter(offer=offer, email__in=batch).delete()[0]
    return AssignmentCounts(changed=removed, unchanged=len(emails) - removed)


SAMPLE = (
    "Email,Offer ID\nada@example.com,spring-sale\ngrace@example.com,spring-sale\nalan@example.com,vip-night\n"
)

IMPORTER = Importer(
    kind=KIND,
    label="Customer private offer",
    run=import_offer_assignments,
    check_header=check_assignment_header,
    sample=lambda: SAMPLE,
    help=(
        "Header Email,Offer ID (the offer's system name). Each row assigns the offer to the email, "
        "whether or not a customer has it yet; a pair already assigned changes nothing."
    ),
    permissions=("offers.add_offerassignment",),
    options=(OFFER_OPTION,),
    counts=("created", "unchanged", "skipped"),
)


def register() -> None:
    """Called from ``OffersConfig.ready()``."""
    register_importer(IMPORTER)
