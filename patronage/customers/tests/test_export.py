"""Exporting customers to CSV: the columns, the filters, formula safety, and exact round trips."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from patronage.core.csvio import format_row, neutralize
from patronage.core.errors import ErrorCollector
from patronage.core.money import money_text
from patronage.customers import exports
from patronage.customers.exports import export_chunks
from patronage.customers.imports import encode_attribute
from patronage.customers.models import CustomerGroup, CustomerProfile, birth_md_of
from patronage.customers.selectors import CustomerFilters, customers_filtered
from patronage.customers.services import profile_upsert
from patronage.dataio.models import ImportJob
from patronage.dataio.running import import_job_run
from patronage.testing.factories import make_application
from patronage.testing.imports import stored_import
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

HEADER = "integration_id,name,email,password,phone,birthday,group,tax_exempt,accepts_marketing"
READ_ONLY = "orders,total_sales,currency,created,last_activity"


def export(queryset: Any) -> str:
    return b"".join(export_chunks(queryset)).decode()


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def everyone(slug: str = Environment.LIVE) -> Any:
    return CustomerProfile.objects.filter(environment__slug=slug)


def add(environment: Environment, integration_id: str, **attributes: Any) -> CustomerProfile:
    profile, _ = profile_upsert(environment=environment, integration_id=integration_id, attributes=attributes)
    return profile


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


def test_export_has_the_import_columns_and_every_customer(live: Environment) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    ada = add(
        live,
        "ada",
        Name="Ada Lovelace",
        Email="ada@example.com",
        PhoneNumber="+12015550123",
        BirthDate="1815-12-10",
        AcceptsMarketing=True,
        tier="gold",
    )
    ada.group = vip
    ada.set_password("never exported")
    ada.save()
    add(live, "bob", Name="Bob", TaxExempt=True, visits=3)
    CustomerProfile.objects.filter(pk=ada.pk).update(
        closed_sessions=3,
        total_sales=Decimal("154.5550"),
        created=dt.datetime(2026, 5, 17, 9, 30, 15, 123456, tzinfo=dt.UTC),
        last_activity=dt.datetime(2026, 6, 1, 23, 59, 59, tzinfo=dt.UTC),
    )
    make_application(environment=Environment.LIVE, slug="shop-eu", currency="EUR")
    text = b"".join(export_chunks(everyone(), live)).decode()
    lines = text.splitlines()
    # The importable columns first, then the read-only ones; the phone as it is (no quote)
    assert lines[0] == HEADER + ",attr.tier,attr.visits," + READ_ONLY
    assert lines[1] == (
        "ada,Ada Lovelace,ada@example.com,,+12015550123,1815-12-10,VIP,no,yes,gold,,"
        "3,154.56,EUR,2026-05-17T09:30:15Z,2026-06-01T23:59:59Z"
    )
    assert lines[2].startswith("bob,Bob,,,,,,yes,no,,3,0,0.00,EUR,")
    assert "never exported" not in text and "md5$" not in text and "pbkdf2" not in text


def test_export_of_a_filtered_list_has_exactly_those_customers(live: Environment) -> None:
    add(live, "yes-1", Email="a@example.com", AcceptsMarketing=True)
    add(live, "no-1", Email="b@example.com", AcceptsMarketing=False)
    add(live, "yes-2", Email="c@example.com", AcceptsMarketing=True)
    add(environment_get(Environment.SANDBOX), "sandbox", Email="d@example.com", AcceptsMarketing=True)
    filters = CustomerFilters.from_params({"accepts_marketing": ["yes"]}, errors=ErrorCollector())
    exported = rows(export(customers_filtered(live, filters)))
    assert [row["integration_id"] for row in exported] == ["yes-1", "yes-2"]
    assert {row["accepts_marketing"] for row in exported} == {"yes"}


def test_cells_that_spreadsheets_would_run_as_formulas_are_neutralized(live: Environment) -> None:
    add(
        live,
        '=HYPERLINK("http://evil")',
        Name="+SUM(A1)",
        Email="-x@example.com",
        formula="@cmd",
        tab="\tx",
        cr="\rx",
        quote="'x",
        negative=-5,
        fraction=-12.5,
        phone="+48601234567",
        sums="+1+1",
        sum2="-2+3",
        at="@SUM(A1)",
        fine="a=b",
    )
    text = export(everyone())
    [row] = rows(text)
    assert row["integration_id"] == '\'=HYPERLINK("http://evil")'
    assert row["name"] == "'+SUM(A1)"
    assert row["email"] == "'-x@example.com"
    assert row["attr.formula"] == "'@cmd"
    assert row["attr.tab"] == "'\tx"
    assert row["attr.cr"] == "'\rx"
    assert row["attr.quote"] == "''x"
    assert row["attr.sums"] == "'+1+1"
    assert row["attr.sum2"] == "'-2+3"
    assert row["attr.at"] == "'@SUM(A1)"
    assert row["attr.fine"] == "a=b"
    # A spreadsheet reads these only as values: written as they are, for SMS and email tools
    assert row["attr.negative"] == "-5"
    assert row["attr.fraction"] == "-12.5"
    assert row["attr.phone"] == "+48601234567"
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    plain = {"-5", "-12.5", "+48601234567"}
    for line in csv.reader(io.StringIO(text, newline="")):
        assert not any(cell.startswith(dangerous) and cell not in plain for cell in line), line


def make_varied_customers(environment: Environment) -> None:
    """Customers with every kind of value an export must carry back unchanged."""
    for name in ("VIP", "Wholesale"):
        CustomerGroup.objects.get_or_create(environment=environment, name=name)
    groups = {g.name: g for g in CustomerGroup.objects.filter(environment=environment)}
    specs: list[dict[str, Any]] = [
        {"Name": "=cmd|' /C calc'!A0", "Email": "Formula@Example.com", "PhoneNumber": "+48601234567"},
        {
            "Name": 'Ada, "the" Countess',
            "Email": "ada@example.com",
            "BirthDate": "1815-12-10",
            "tier": "gold",
        },
        {"Name": "Multi\nline", "Email": "ml@example.com", "n": 42, "f": 2.5, "b": True, "big": 10**20},
        {"Name": "'quoted", "Email": "q@example.com", "s42": "42", "strue": "true", "empty": ""},
        {"Name": "Zoë Ünïcode", "Email": "zoe@example.com", "obj": {"b": [1, "x"], "a": None}, "arr": [1, 2]},
        {"Name": "Minus", "Email": "minus@example.com", "neg": -3, "dash": "-x", "plus": "+1", "at": "@me"},
        {
            "Name": "-12.5",
            "Email": "num@example.com",
            "PhoneNumber": "+12015550123",
            "sms": "+1+1",
            "q": "'+1",
        },
        {"Name": "", "Email": "noname@example.com", "TaxExempt": True, "AcceptsMarketing": True},
    ]
    for i, spec in enumerate(specs):
        profile = add(environment, f"cust-{i}", **spec)
        profile.group = groups["VIP"] if i % 3 == 0 else groups["Wholesale"] if i % 3 == 1 else None
        profile.birth_md = birth_md_of(profile.birth_date)
        profile.save()


def test_export_import_export_round_trips_to_the_same_bytes(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Given varied customers in live, and the same groups (no customers) in sandbox
    make_varied_customers(environment_get(Environment.LIVE))
    sandbox = environment_get(Environment.SANDBOX)
    for name in ("VIP", "Wholesale"):
        CustomerGroup.objects.create(environment=sandbox, name=name)
    # When live is exported and the file imported into sandbox
    first = b"".join(export_chunks(everyone(Environment.LIVE)))
    job = stored_import(first, environment=sandbox, filename="live.csv")
    import_job_run(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED, (job.message, list(job.problems.values_list("message")))
    assert job.created_count == everyone(Environment.LIVE).count()
    # Then exporting sandbox gives the very same bytes in the importable columns (the read-only ones,
    # such as the created time, are the new customers')
    second = b"".join(export_chunks(everyone(Environment.SANDBOX)))
    assert importable(second) == importable(first)
    assert importable(first) != first.decode()
    # And the values themselves came through with their types
    ml = CustomerProfile.objects.get(environment=sandbox, email="ml@example.com")
    assert ml.attributes == {"n": 42, "f": 2.5, "b": True, "big": 10**20}
    q = CustomerProfile.objects.get(environment=sandbox, email="q@example.com")
    assert q.name == "'quoted" and q.attributes == {"s42": "42", "strue": "true", "empty": ""}


def importable(data: bytes) -> str:
    """The file without its five read-only columns (the last ones)."""
    records = list(csv.reader(io.StringIO(data.decode(), newline="")))
    return "".join(format_row(record[:-5]) for record in records)


def reference_csv(queryset: Any, currency: str | None = None) -> str:
    """The export format spelled out in Python, cell by cell, from the documented rules."""
    profiles = list(queryset.order_by("pk").select_related("group"))
    names = sorted({name for p in profiles for name in p.attributes})
    lines = [format_row([*HEADER.split(","), *(f"attr.{n}" for n in names), *READ_ONLY.split(",")])]
    for p in profiles:
        cells = [
            p.integration_id,
            p.name,
            p.email or "",
            "",
            p.phone,
            p.birth_date.isoformat() if p.birth_date else "",
            p.group.name if p.group else "",
            "yes" if p.tax_exempt else "no",
            "yes" if p.accepts_marketing else "no",
            *(encode_attribute(p.attributes[n]) if n in p.attributes else "" for n in names),
            str(p.closed_sessions),
            money_text(p.total_sales, currency),
            currency or "",
            f"{p.created:%Y-%m-%dT%H:%M:%SZ}",
            f"{p.last_activity:%Y-%m-%dT%H:%M:%SZ}",
        ]
        lines.append(format_row([neutralize(cell) for cell in cells]))
    return "".join(lines)


def test_the_database_writes_exactly_what_the_rules_say() -> None:
    # PostgreSQL's COPY and SQLite's SQL-built lines against the rules written out in Python
    make_varied_customers(environment_get(Environment.LIVE))
    add(environment_get(Environment.LIVE), "plain", Email="plain@example.com", weird="tab\tin", t="nice")
    add(environment_get(Environment.LIVE), "cr", Name="carriage\rreturn", Email="cr@example.com")
    # Totals on and around the half of the minor unit, in two- and three-decimal currencies
    totals = ["0.1450", "0.1449", "-0.0010", "-5.0050", "1234567.8951", "0.0050", "0"]
    profiles = list(everyone().order_by("pk"))
    for i, profile in enumerate(profiles):
        CustomerProfile.objects.filter(pk=profile.pk).update(
            total_sales=Decimal(totals[i % len(totals)]), closed_sessions=i
        )
    assert export(everyone()) == reference_csv(everyone())
    live = environment_get(Environment.LIVE)
    make_application(environment=Environment.LIVE, slug="kw", currency="KWD")
    assert b"".join(export_chunks(everyone(), live)).decode() == reference_csv(everyone(), "KWD")
    make_application(
        environment=Environment.LIVE, slug="us", currency="USD"
    )  # shops of two currencies: no currency
    assert b"".join(export_chunks(everyone(), live)).decode() == reference_csv(everyone())


def peak_memory(queryset: Any) -> tuple[int, int, int]:
    """(bytes written, biggest chunk, peak Python memory) of one export."""
    tracemalloc.start()
    try:
        total = biggest = 0
        for chunk in export_chunks(queryset):
            total += len(chunk)
            biggest = max(biggest, len(chunk))
        return total, biggest, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_streams_in_small_chunks_with_flat_memory(live: Environment) -> None:
    now = dt.datetime.now(dt.UTC)
    CustomerProfile.objects.bulk_create(
        [
            CustomerProfile(
                environment=live,
                integration_id=f"c{i:05d}",
                name=f"Customer {i}",
                email=f"c{i}@example.com",
                attributes={"tier": "gold", "visits": i},
                created=now,
                last_activity=now,
            )
            for i in range(25_000)
        ],
        batch_size=2500,
    )
    small_size, _, small_peak = peak_memory(everyone().filter(integration_id__lt="c05000"))
    size, biggest, peak = peak_memory(everyone())
    assert size > 4 * small_size > 0
    assert biggest < 512 * 1024
    # Five times the rows, about the same memory: rows are never all held at once
    assert peak < 1.5 * small_peak + 256 * 1024, (peak, small_peak)


# --- the CLI ------------------------------------------------------------------------------------------
def test_cli_exports_with_the_list_filters_to_a_file(live: Environment, tmp_path: Path) -> None:
    vip = CustomerGroup.objects.create(environment=live, name="VIP")
    for i, (marketing, group) in enumerate([(True, vip), (True, None), (False, vip)]):
        profile = add(live, f"c{i}", Email=f"c{i}@example.com", AcceptsMarketing=marketing)
        profile.group = group
        profile.save()
    out = tmp_path / "list.csv"
    call_command("export", "customers", "--accepts-marketing", "yes", "--group", "vip", "-o", str(out))
    assert [row["integration_id"] for row in rows(out.read_text())] == ["c0"]
    call_command("export", "customers", "--no-group", "-o", str(out))
    assert [row["integration_id"] for row in rows(out.read_text())] == ["c1"]
    assert not (tmp_path / "list.csv.part").exists()


def test_cli_exports_to_standard_output(live: Environment, capsysbinary: Any) -> None:
    add(live, "ada", Email="ada@example.com")
    call_command("export", "customers")
    assert capsysbinary.readouterr().out.decode().splitlines()[1].startswith("ada,,ada@example.com")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tax-exempt", "maybe"], "--tax-exempt: 'maybe' is not yes or no"),
        (["--group", "Nope"], "--group: no group named 'Nope' in live"),
        (
            ["--birthday-window-from", "02-30", "--birthday-window-to", "03-01"],
            "--birthday-window-from: '02-30'",
        ),
        (["--created-from", "yesterday"], "--created-from: 'yesterday' is not a date such as"),
        (["--birthday-window-from", "02-01"], "a birthday window needs both a first and a last day"),
    ],
)
def test_cli_refuses_bad_filters_with_status_2(live: Environment, args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("export", "customers", *args)
    assert caught.value.returncode == 2
    assert message in str(caught.value)


def test_connection_is_usable_after_an_export_is_abandoned_midway(
    live: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, so the reader really leaves while PostgreSQL is still sending (the COPY is cancelled).
    monkeypatch.setattr(exports, "BUFFER_BYTES", 4096)
    now = dt.datetime.now(dt.UTC)
    CustomerProfile.objects.bulk_create(
        [
            CustomerProfile(
                environment=live, integration_id=f"c{i}", name="x" * 200, created=now, last_activity=now
            )
            for i in range(3000)
        ]
    )
    chunks: Any = export_chunks(everyone())
    next(chunks)
    next(chunks)
    chunks.close()  # e.g. the browser went away
    assert CustomerProfile.objects.count() == 3000
    assert connection.is_usable()


def test_import_ignores_the_read_only_columns_and_reads_older_exports(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    live = environment_get(Environment.LIVE)
    ada = add(live, "ada", Email="ada@example.com")
    CustomerProfile.objects.filter(pk=ada.pk).update(closed_sessions=2, total_sales=Decimal("10"))
    # A file with the read-only columns changed by hand, and a phone as older exports wrote it ('+...)
    data = (
        f"{HEADER},{READ_ONLY}\n"
        "ada,Ada,ada@example.com,,'+12015550123,,,no,no,99,5000.00,EUR,2020-01-01T00:00:00Z,2020-01-01T00:00:00Z\n"
        "new,New,new@example.com,,+48601234567,,,no,no,7,1.00,EUR,2020-01-01T00:00:00Z,2020-01-01T00:00:00Z\n"
    ).encode()
    job = stored_import(data, environment=live, filename="edited.csv")
    import_job_run(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED, (job.message, list(job.problems.values_list("message")))
    ada.refresh_from_db()
    assert (ada.phone, ada.closed_sessions, ada.total_sales) == ("+12015550123", 2, Decimal("10"))
    new = CustomerProfile.objects.get(email="new@example.com")
    assert (new.phone, new.closed_sessions, new.total_sales) == ("+48601234567", 0, Decimal("0"))
    assert new.created.year > 2020
