"""Groups of promo codes in the back office through Django's test client: the list with its counts, the
form that uploads pasted or file codes and reports every problem by line, editing and deleting."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.customers.models import CustomerProfile
from patronage.promocodes import forms as promo_forms
from patronage.promocodes.models import PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.testing.promocodes import make_group, make_issue
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

LIST = "/admin/promocodes/promocodegroup/"


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def sandbox() -> Environment:
    return environment_get(Environment.SANDBOX)


def customer(environment: Environment, integration_id: str) -> CustomerProfile:
    return CustomerProfile.objects.create(environment=environment, integration_id=integration_id)


def issue_codes(group: PromoCodeGroup, count: int, *, redeemed: int = 0) -> None:
    codes = list(group.codes.order_by("id")[:count])
    for n, code in enumerate(codes):
        make_issue(customer(group.environment, f"c-{group.pk}-{n}"), code, redeemed=n < redeemed)


def rows(response: Any) -> list[tuple[str, int, int, int, int]]:
    return [(g.name, g.total, g.active, g.issued, g.redeemed) for g in response.context["cl"].result_list]


def said(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def group_post(**fields: Any) -> dict[str, Any]:
    return {"environment": "live", "name": "Spring", "description": "", "codes": "", **fields}


# --- the list ----------------------------------------------------------------------------------------------


def test_the_list_counts_total_active_issued_and_redeemed_per_group(
    admin_client: Client, live: Environment
) -> None:
    spring = make_group(live, "Spring", codes=[f"SPRING-{n}" for n in range(5)])
    make_group(live, "Autumn", codes=["AUT-1", "AUT-2"])
    issue_codes(spring, 3, redeemed=1)

    response = admin_client.get(LIST)

    assert rows(response) == [("Autumn", 2, 2, 0, 0), ("Spring", 5, 2, 3, 1)]
    page = response.content.decode()
    for header in ("Total", "Active", "Issued", "Redeemed"):
        assert f">{header}<" in page or header in page


def test_the_list_takes_the_same_queries_for_one_group_or_thirty(
    admin_client: Client, live: Environment
) -> None:
    make_group(live, "G0", codes=["A0"])
    with CaptureQueriesContext(connection) as one:
        admin_client.get(LIST)
    for n in range(1, 30):
        make_group(live, f"G{n}", codes=[f"A{n}", f"B{n}"])
    with CaptureQueriesContext(connection) as thirty:
        response = admin_client.get(LIST)

    assert len(rows(response)) == 30
    assert len(thirty.captured_queries) == len(one.captured_queries)


def test_the_list_sorts_by_a_count_searches_names_and_filters_by_environment(
    admin_client: Client, live: Environment, sandbox: Environment
) -> None:
    make_group(live, "Small", codes=["S1"])
    make_group(live, "Big", codes=["B1", "B2", "B3"])
    make_group(sandbox, "Test big", codes=["T1", "T2"])

    by_active = admin_client.get(LIST, {"o": "-3"})
    searched = admin_client.get(LIST, {"q": "big"})
    sandbox_only = admin_client.get(LIST, {"environment__id__exact": sandbox.pk})
    small_pages = admin_client.get(LIST, {"per_page": "10"})

    assert [r[0] for r in rows(by_active)] == ["Big", "Test big", "Small"]
    assert [r[0] for r in rows(searched)] == ["Big", "Test big"]
    assert [r[0] for r in rows(sandbox_only)] == ["Test big"]
    assert small_pages.context["cl"].list_per_page == 10


def test_the_list_offers_no_bulk_delete(admin_client: Client, live: Environment) -> None:
    make_group(live, "Spring", codes=["S1"])

    response = admin_client.get(LIST)

    assert "delete_selected" not in response.content.decode()


# --- create and upload -------------------------------------------------------------------------------------


def test_create_a_group_with_pasted_codes(admin_client: Client, live: Environment) -> None:
    response = admin_client.post(
        f"{LIST}add/",
        group_post(
            name="Spring", description="Spring mailing", codes="SPRING-1\r\nSPRING-2\r\n\r\nSPRING-3\r\n"
        ),
        follow=True,
    )

    group = PromoCodeGroup.objects.get()
    assert (group.name, group.description, group.environment.slug) == ("Spring", "Spring mailing", "live")
    assert list(group.codes.order_by("id").values_list("code", flat=True)) == [
        "SPRING-1",
        "SPRING-2",
        "SPRING-3",
    ]
    assert "Upload to “Spring”: 3 added, 0 duplicate, 0 invalid." in said(response)
    assert LogEntry.objects.filter(object_id=str(group.pk)).exists()


def test_an_empty_group_can_be_created_and_filled_later(admin_client: Client, live: Environment) -> None:
    response = admin_client.post(f"{LIST}add/", group_post(name="Later"), follow=True)

    assert PromoCodeGroup.objects.get().name == "Later"
    assert not any("Upload" in message for message in said(response))


def test_a_file_upload_reports_each_invalid_and_duplicate_line_and_adds_the_rest(
    admin_client: Client, live: Environment
) -> None:
    make_group(live, "Old", codes=["TAKEN-1"])
    content = b"GOOD-1\nbad code\nGOOD-2\nGOOD-1\nTAKEN-1\nGOOD-3\n"
    upload = SimpleUploadedFile("codes.csv", content, content_type="text/csv")

    response = admin_client.post(f"{LIST}add/", group_post(name="Spring", codes_file=upload), follow=True)

    group = PromoCodeGroup.objects.get(name="Spring")
    assert list(group.codes.order_by("id").values_list("code", flat=True)) == ["GOOD-1", "GOOD-2", "GOOD-3"]
    messages = said(response)
    assert "Upload to “Spring”: 3 added, 2 duplicate, 1 invalid." in messages
    problems = next(m for m in messages if "upload-problems" in m)
    assert "3 lines skipped" in problems
    assert "Line 2:" in problems and "Line 4: GOOD-1 repeats line 1" in problems
    assert "Line 5: TAKEN-1 is already in group &#x27;Old&#x27;" in problems or "Line 5: TAKEN-1" in problems
    assert "Showing the first" not in problems


def test_a_long_list_of_problems_shows_the_first_fifty_and_the_total(
    admin_client: Client, live: Environment
) -> None:
    pasted = "\n".join(["OK-1", *[f"bad code {n}" for n in range(120)]])

    response = admin_client.post(f"{LIST}add/", group_post(codes=pasted), follow=True)

    problems = next(m for m in said(response) if "upload-problems" in m)
    assert problems.count("<li>") == 50
    assert "Line 2:" in problems and "Line 51:" in problems and "Line 52:" not in problems
    assert "Showing the first 50 of 120 skipped lines." in problems
    assert PromoCode.objects.get().code == "OK-1"


def test_a_file_that_is_not_utf8_is_refused_with_its_line(admin_client: Client, live: Environment) -> None:
    upload = SimpleUploadedFile("codes.txt", "GOOD-1\nCAFÉ\n".encode("latin-1"), content_type="text/plain")

    response = admin_client.post(f"{LIST}add/", group_post(codes_file=upload))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["codes_file"] == [
        "The file is not UTF-8 text (line 2). Save it as UTF-8 (CSV UTF-8) and upload it again."
    ]
    assert not PromoCodeGroup.objects.exists()


def test_a_too_large_file_is_refused(admin_client: Client, live: Environment, monkeypatch: Any) -> None:
    monkeypatch.setattr(promo_forms, "FILE_MAX_BYTES", 10)
    upload = SimpleUploadedFile("codes.txt", b"CODE-1\nCODE-2\nCODE-3\n", content_type="text/plain")

    response = admin_client.post(f"{LIST}add/", group_post(codes_file=upload))

    assert "at most" in response.context["adminform"].form.errors["codes_file"][0]
    assert not PromoCodeGroup.objects.exists()


def test_pasting_and_a_file_at_once_is_refused(admin_client: Client, live: Environment) -> None:
    upload = SimpleUploadedFile("codes.txt", b"CODE-1\n", content_type="text/plain")

    response = admin_client.post(f"{LIST}add/", group_post(codes="CODE-2", codes_file=upload))

    assert response.context["adminform"].form.errors["codes_file"] == [
        "Paste codes or upload a file, not both."
    ]
    assert not PromoCodeGroup.objects.exists()


def test_a_group_name_is_unique_in_its_environment_ignoring_case(
    admin_client: Client, live: Environment, sandbox: Environment
) -> None:
    make_group(live, "Spring")

    taken = admin_client.post(f"{LIST}add/", group_post(name="SPRING", codes="S-1"))
    elsewhere = admin_client.post(f"{LIST}add/", group_post(environment="sandbox", name="spring"))

    assert taken.context["adminform"].form.errors["name"] == [
        "The Live environment already has a group named 'SPRING'."
    ]
    assert elsewhere.status_code == 302
    assert PromoCodeGroup.objects.count() == 2 and not PromoCode.objects.exists()


# --- edit ---------------------------------------------------------------------------------------------------


def test_edit_renames_and_uploads_more_codes(admin_client: Client, live: Environment) -> None:
    group = make_group(live, "Spring", codes=["S-1", "S-2"])
    issue_codes(group, 1)

    page = admin_client.get(f"{LIST}{group.pk}/change/").content.decode()
    response = admin_client.post(
        f"{LIST}{group.pk}/change/",
        {"name": "Spring 2025", "description": "Renamed", "codes": "S-2\nS-3\nS-4"},
        follow=True,
    )

    assert "2 in all: 1 active (not yet issued), 1 issued, 0 redeemed" in page
    assert "Upload more promo codes" in page
    group.refresh_from_db()
    assert (group.name, group.description) == ("Spring 2025", "Renamed")
    assert group.codes.count() == 4
    messages = said(response)
    assert "Upload to “Spring 2025”: 2 added, 1 duplicate, 0 invalid." in messages
    assert any("Line 1: S-2 is already in this group" in m for m in messages)
    # The customer keeps the name the code was issued under.
    assert PromoCodeIssue.objects.get().group_name == "Spring"


def test_edit_cannot_move_a_group_to_another_environment(admin_client: Client, live: Environment) -> None:
    group = make_group(live, "Spring", codes=["S-1"])

    admin_client.post(f"{LIST}{group.pk}/change/", {"environment": "sandbox", "name": "Spring", "codes": ""})

    group.refresh_from_db()
    assert group.environment.slug == "live"


# --- delete -------------------------------------------------------------------------------------------------


def test_delete_says_what_happens_to_issued_codes_then_keeps_the_history(
    admin_client: Client, live: Environment
) -> None:
    group = make_group(live, "Spring", codes=["S-1", "S-2", "S-3"])
    issue_codes(group, 2, redeemed=1)

    question = admin_client.get(f"{LIST}{group.pk}/delete/").content.decode()

    assert "Delete the group “Spring”?" in question
    assert "all its 3 codes will be deleted" in question
    assert "1 active code (not yet issued) will never be issued." in question
    assert "2 codes already issued to customers (1 redeemed) can no longer be redeemed." in question
    assert "The customers' issue history is kept: 2 issues stay" in question
    assert "S-1" not in question  # not Django's list of every related row

    response = admin_client.post(f"{LIST}{group.pk}/delete/", {"post": "yes"}, follow=True)

    assert not PromoCodeGroup.objects.exists() and not PromoCode.objects.exists()
    assert sorted(PromoCodeIssue.objects.values_list("code", "group_name")) == [
        ("S-1", "Spring"),
        ("S-2", "Spring"),
    ]
    assert (
        "Deleted the group “Spring” and its 3 codes. The customers' history of 2 issued codes is kept."
        in said(response)
    )
