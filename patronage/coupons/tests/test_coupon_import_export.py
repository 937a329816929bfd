"""Importing coupons from Talon.One's CSV (bad lines by number, all or nothing unless skipped) and exporting
them (Talon.One's columns, safe in a spreadsheet, re-importable)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.core.errors import ValidationFailed
from patronage.coupons.exports import EXPORT_COLUMNS, coupons_export_rows
from patronage.coupons.imports import import_coupons_csv
from patronage.coupons.models import Coupon
from patronage.coupons.services import coupons_create
from patronage.dataio.models import ImportJob
from patronage.dataio.running import import_job_run
from patronage.promocodes.services import promo_code_group_create, promo_codes_upload
from patronage.testing.imports import stored_import
from patronage.workspace.models import Application, CodeCase

pytestmark = pytest.mark.django_db

HEADER = "value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n"


@pytest.fixture
def campaign(live_app: Application) -> Campaign:
    return running_campaign(live_app, "Imported coupons")


def run(campaign: Campaign, text: str, **kwargs: object) -> tuple[object, list[tuple[int | None, str]]]:
    found: list[tuple[int | None, str]] = []
    outcome = import_coupons_csv(
        campaign=campaign,
        source=io.BytesIO(text.encode()),
        problems=lambda problems: found.extend((p.line, p.details) for p in problems),
        **kwargs,  # type: ignore[arg-type]
    )
    return outcome, found


def test_a_good_file_imports_every_column(campaign: Campaign) -> None:
    text = HEADER + (
        "SPRING-0001,2026-12-31T23:59:59Z,2026-01-01T00:00:00+02:00,,1,,\n"
        'GIFT-00002,,,cust-42,0,50.5,"{""channel"": ""print""}"\n'
        "plain-0003,,,,,,\n"
    )
    outcome, problems = run(campaign, text)
    assert problems == [] and outcome.applied and outcome.created == 3  # type: ignore[attr-defined]
    spring = Coupon.objects.get(value="SPRING-0001")
    assert spring.expiry_date == dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert spring.start_date == dt.datetime(2025, 12, 31, 22, 0, tzinfo=dt.UTC)
    gift = Coupon.objects.get(value="GIFT-00002")
    assert (gift.usage_limit, gift.discount_limit, gift.recipient_integration_id) == (
        0,
        Decimal("50.5"),
        "cust-42",
    )
    assert gift.attributes == {"channel": "print"} and gift.reservation is False
    plain = Coupon.objects.get(value="PLAIN-0003")  # the default case: upper
    assert (plain.usage_limit, plain.attributes, plain.expiry_date) == (1, {}, None)
    assert len({c.batch_id for c in Coupon.objects.all()}) == 1


def test_bad_lines_are_reported_by_number_and_nothing_is_imported(campaign: Campaign) -> None:
    # given: a coupon and a promo code the application already has
    coupons_create(campaign=campaign, count=1, pattern="TAKEN-#####")
    taken = Coupon.objects.get().value
    group, _ = promo_code_group_create(environment=campaign.application.environment, name="Mail")
    promo_codes_upload(group=group, lines=["PROMO-0001"])
    text = HEADER + (
        "GOOD-0001,,,,,,\n"  # line 2
        "ABC,,,,,,\n"  # 3: too short
        "GOOD-0001,,,,,,\n"  # 4: duplicate of line 2
        f"{taken},,,,,,\n"  # 5: already a coupon
        "PROMO-0001,,,,,,\n"  # 6: already a promo code
        "DATE-0001,31/12/2026,,,,,\n"  # 7: bad date
        "LIMIT-0001,,,,lots,,\n"  # 8: bad number
        "JSON-0001,,,,,,{nope\n"  # 9: bad JSON
        "GOOD-0002,,,,,,\n"  # 10
    )
    outcome, problems = run(campaign, text)
    lines = {line: reason for line, reason in problems}
    assert sorted(lines, key=lambda n: n or 0) == [3, 4, 5, 6, 7, 8, 9]
    assert "too short" in lines[3] and "duplicate of line 2" in lines[4]
    assert "already a coupon" in lines[5] and "already a promo code" in lines[6]
    assert "not a date" in lines[7] and "not a usage limit" in lines[8] and "not valid JSON" in lines[9]
    assert not outcome.applied  # type: ignore[attr-defined]
    assert Coupon.objects.count() == 1


def test_skipping_bad_lines_imports_the_good_ones(campaign: Campaign) -> None:
    text = HEADER + "GOOD-0001,,,,,,\nABC,,,,,,\nGOOD-0001,,,,,,\nGOOD-0002,,,,2,,\n"
    outcome, problems = run(campaign, text, skip_bad_rows=True)
    assert outcome.applied and outcome.created == 2 and outcome.skipped == 2  # type: ignore[attr-defined]
    assert [line for line, _ in problems] == [3, 4]
    assert sorted(Coupon.objects.values_list("value", flat=True)) == ["GOOD-0001", "GOOD-0002"]


def test_skip_duplicates_leaves_out_used_codes_but_not_bad_ones(campaign: Campaign) -> None:
    text = HEADER + "DUP-0001,,,,,,\nDUP-0001,,,,,,\nNEW-0002,,,,,,\n"
    outcome, _ = run(campaign, text, skip_duplicates=True)
    assert outcome.applied and outcome.created == 2  # type: ignore[attr-defined]
    outcome, _ = run(campaign, HEADER + "NEW-0003,,,,,,\nX,,,,,,\n", skip_duplicates=True)
    assert not outcome.applied  # type: ignore[attr-defined]


def test_codes_are_stored_in_the_applications_case(live_app: Application) -> None:
    live_app.coupon_code_case = CodeCase.UPPER
    live_app.save()
    campaign = running_campaign(live_app, "Upper")
    _outcome, problems = run(campaign, HEADER + "summer-0001,,,,,,\nSUMMER-0001,,,,,,\n")
    assert problems == [(3, "SUMMER-0001 is a duplicate of line 2")]


def test_an_unknown_column_or_empty_file_is_refused_whole(campaign: Campaign) -> None:
    with pytest.raises(ValidationFailed, match="unknown column 'colour'"):
        run(campaign, "value,colour\nABCD-1,red\n")
    with pytest.raises(ValidationFailed, match="empty"):
        run(campaign, "")


def test_the_import_job_of_kind_coupons_shows_problems_by_line(campaign: Campaign) -> None:
    # given: a file uploaded for the campaign as the back office stores it
    job = stored_import(
        (HEADER + "GOOD-0001,,,,,,\nABC,,,,,,\n").encode(),
        kind="coupons",
        options={"campaign": str(campaign.pk)},
    )
    # when: the worker runs it
    import_job_run(job=job)
    job.refresh_from_db()
    # then: it failed, naming the line, and nothing was imported
    assert job.status == ImportJob.Status.FAILED and job.problem_count == 1
    assert job.problems.get().line == 3
    assert not Coupon.objects.exists()
    # when: the same file is imported skipping bad rows
    job = stored_import(
        (HEADER + "GOOD-0001,,,,,,\nABC,,,,,,\n").encode(),
        kind="coupons",
        options={"campaign": campaign.name},
        skip_bad_rows=True,
    )
    import_job_run(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED and (job.created_count, job.skipped_count) == (1, 1)
    assert Coupon.objects.get().import_id == job.pk


def test_export_has_talon_ones_columns_is_safe_in_spreadsheets_and_imports_again(
    campaign: Campaign, live_app: Application
) -> None:
    text = HEADER + '=HYPERLINK(1),2026-12-31T23:59:59Z,,cust-1,3,10,"{""a"": 1}"\nPLAIN-001,,,,,,\n'
    outcome, _ = run(campaign, text)
    assert outcome.applied  # type: ignore[attr-defined]
    exported = "".join(coupons_export_rows(queryset=Coupon.objects.order_by("id")))
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    first = rows[0]
    assert first["value"] == "'=HYPERLINK(1)"  # a spreadsheet shows it as text
    assert (first["limitval"], first["discount_limitval"], first["recipientintegrationid"]) == (
        "3",
        "10",
        "cust-1",
    )
    assert first["expirydate"] == "2026-12-31T23:59:59Z" and first["attributes"] == '{"a":1}'
    # when: the export is imported into another campaign of another application
    other = running_campaign(
        __import__("patronage.testing.factories", fromlist=["make_application"]).make_application(), "Copy"
    )
    outcome, problems = run(other, exported)
    assert problems == [] and outcome.created == 2  # type: ignore[attr-defined]
    copied = Coupon.objects.get(campaign=other, value="=HYPERLINK(1)")
    assert (copied.usage_limit, copied.discount_limit, copied.attributes) == (3, Decimal("10"), {"a": 1})
