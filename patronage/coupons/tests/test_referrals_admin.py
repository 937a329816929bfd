"""Referral codes in the back office through Django's test client: the list with its filters, search and
pages, adding a code, editing, deleting after a confirmation, importing CSV (bad lines by number, nothing
imported) and exporting what the list shows."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.coupons.models import Referral
from patronage.testing.factories import make_application
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

LIST = "/admin/coupons/referral/"
NOW = dt.datetime.now(dt.UTC)


def said(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def codes(response: Any) -> list[str]:
    return [r.code for r in response.context["cl"].result_list]


@pytest.fixture
def shop() -> Application:
    return make_application(environment="live", name="Coffee shop")


@pytest.fixture
def campaign(shop: Application) -> Campaign:
    return running_campaign(shop, "Bring a friend", features=["referrals"])


def referral(campaign: Campaign, code: str, advocate: str = "ann", **fields: Any) -> Referral:
    return Referral.objects.create(
        application=campaign.application,
        campaign=campaign,
        code=code,
        advocate_integration_id=advocate,
        **fields,
    )


def test_the_list_filters_by_campaign_advocate_uses_and_expiry_and_searches(
    admin_client: Client, shop: Application, campaign: Campaign
) -> None:
    other = running_campaign(shop, "Spring friends", features=["referrals"])
    referral(campaign, "ANN-0001", usage_counter=1)
    referral(campaign, "ANN-0002", expiry_date=NOW - dt.timedelta(days=1))
    referral(campaign, "BOB-0001", "bob", usage_limit=0, usage_counter=7)
    referral(other, "CARL-0001", "carl")

    everything = admin_client.get(LIST)
    assert everything.status_code == 200
    assert sorted(codes(everything)) == ["ANN-0001", "ANN-0002", "BOB-0001", "CARL-0001"]
    page = everything.content.decode()
    assert "7 of unlimited" in page and "1 of 1" in page and "Used up" in page and "Expired" in page
    assert "Bring a friend (Coffee shop)" in page

    assert sorted(codes(admin_client.get(LIST, {"campaign": other.pk}))) == ["CARL-0001"]
    assert sorted(codes(admin_client.get(LIST, {"advocate": "ann"}))) == ["ANN-0001", "ANN-0002"]
    assert sorted(codes(admin_client.get(LIST, {"usable": "no"}))) == ["ANN-0001"]
    assert sorted(codes(admin_client.get(LIST, {"usable": "yes"}))) == ["ANN-0002", "BOB-0001", "CARL-0001"]
    assert codes(admin_client.get(LIST, {"expired": "yes"})) == ["ANN-0002"]
    assert codes(admin_client.get(LIST, {"q": "carl"})) == ["CARL-0001"]
    paged = admin_client.get(LIST, {"per_page": 10})
    assert paged.context["cl"].list_per_page == 10


def test_staff_add_a_code_typed_or_made(admin_client: Client, shop: Application, campaign: Campaign) -> None:
    running_campaign(shop, "No referrals here")
    form = admin_client.get(LIST + "add/")
    # only campaigns with the Referrals feature are offered
    offered = [label for _, label in form.context["adminform"].form.fields["campaign"].choices]
    assert offered == ["---------", "Bring a friend (Coffee shop)"]

    base = {
        "campaign": campaign.pk,
        "advocate_integration_id": "ann",
        "usage_limit": 2,
        "attributes": '{"channel": "print"}',
        "start_date_0": "",
        "start_date_1": "",
        "expiry_date_0": "2030-12-31",
        "expiry_date_1": "23:59:00",
    }
    made = admin_client.post(LIST + "add/", {**base, "code": ""})
    assert made.status_code == 302
    (generated,) = Referral.objects.all()
    assert generated.code.startswith("REF-") and generated.usage_limit == 2
    assert generated.attributes == {"channel": "print"}
    assert generated.expiry_date == dt.datetime(2030, 12, 31, 23, 59, tzinfo=dt.UTC)

    typed = admin_client.post(LIST + "add/", {**base, "code": "ann-friends"}, follow=True)
    assert Referral.objects.filter(code="ANN-FRIENDS").exists()  # the shop's upper case
    assert typed.status_code == 200

    # the same code again is refused with the reason, nothing saved
    again = admin_client.post(LIST + "add/", {**base, "code": "ANN-FRIENDS"}, follow=True)
    assert any("already used by another referral" in m for m in said(again))
    assert Referral.objects.count() == 2


def test_staff_edit_a_code(admin_client: Client, campaign: Campaign) -> None:
    code = referral(campaign, "ANN-0001", usage_counter=2, usage_limit=5)
    change = LIST + f"{code.pk}/change/"
    page = admin_client.get(change)
    assert page.status_code == 200 and "2 of 5" in page.content.decode()

    post = {
        "friend_integration_id": "bob",
        "usage_limit": 10,
        "start_date_0": "",
        "start_date_1": "",
        "expiry_date_0": "",
        "expiry_date_1": "",
        "attributes": "{}",
    }
    assert admin_client.post(change, post).status_code == 302
    code.refresh_from_db()
    assert (code.friend_integration_id, code.usage_limit) == ("bob", 10)

    # a limit below the uses made is refused in the user's words
    refused = admin_client.post(change, {**post, "usage_limit": 1}, follow=True)
    assert any("used 2 times already" in m for m in said(refused))
    code.refresh_from_db()
    assert code.usage_limit == 10


def test_deleting_asks_first(admin_client: Client, campaign: Campaign) -> None:
    code = referral(campaign, "ANN-0001")
    confirm = admin_client.get(LIST + f"{code.pk}/delete/")
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Delete the referral code ANN-0001?" in text and "No order has used it yet" in text
    assert Referral.objects.exists()

    done = admin_client.post(LIST + f"{code.pk}/delete/", {"post": "yes"}, follow=True)
    assert "Deleted the referral code ANN-0001." in said(done)
    assert not Referral.objects.exists()


def test_import_names_bad_lines_and_imports_nothing_then_imports_a_good_file(
    admin_client: Client, campaign: Campaign
) -> None:
    referral(campaign, "TAKEN-01", "x")
    bad = (
        b"code,advocateprofileintegrationid,expirydate,limitval\n"
        b"GOOD-0001,ann,,\n"
        b"GOOD-0002,,,\n"
        b"TAKEN-01,bob,,\n"
        b"GOOD-0003,carl,someday,-1\n"
    )
    page = admin_client.post(
        LIST + "import/", {"campaign": campaign.pk, "file": SimpleUploadedFile("r.csv", bad, "text/csv")}
    )
    assert page.status_code == 200
    problems = page.context["problems"]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 5"]
    assert "Nothing was imported: the file has 4 problems." in said(page)[0]
    assert "Line 3: the advocate&#x27;s ID is empty" in page.content.decode()
    assert Referral.objects.count() == 1

    good = b"code,advocateprofileintegrationid,limitval\nFRIEND-0001,ann,5\nFRIEND-0002,bob,\n"
    done = admin_client.post(
        LIST + "import/",
        {"campaign": campaign.pk, "file": SimpleUploadedFile("r.csv", good, "text/csv")},
        follow=True,
    )
    assert "Imported 2 referral codes into “Bring a friend”." in said(done)
    assert Referral.objects.get(code="FRIEND-0001").usage_limit == 5
    assert LogEntry.objects.filter(change_message__startswith="Imported 2 referral codes").count() == 1


def test_export_gives_what_the_list_shows(admin_client: Client, campaign: Campaign) -> None:
    referral(campaign, "ANN-0001")
    referral(campaign, "+SUM(1)", "bob")
    answer = admin_client.get(LIST + "export/", {"advocate": "bob"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    content = b"".join(answer.streaming_content)  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert [(r["code"], r["advocateprofileintegrationid"]) for r in rows] == [("'+SUM(1)", "bob")]


def test_staff_need_the_referral_permissions(client: Client, campaign: Campaign) -> None:
    code = referral(campaign, "ANN-0001")
    viewer = get_user_model().objects.create_user("viewer", password="pw-123456", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_referral"))
    client.force_login(viewer)

    listed = client.get(LIST)
    assert listed.status_code == 200 and codes(listed) == ["ANN-0001"]
    assert "Add referral code" not in listed.content.decode()
    assert client.get(LIST + "import/").status_code == 302
    assert client.post(LIST + f"{code.pk}/delete/", {"post": "yes"}).status_code in (302, 403)
    assert Referral.objects.exists()


# --- in a real browser --------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_import_fix_and_delete_in_a_browser(
    staff_page: Any, live_server: Any, settings: Any, tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    from patronage.testing.browser import screenshot

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    shop = make_application(environment="live", name="Coffee shop")
    campaign = running_campaign(shop, "Bring a friend", features=["referrals"])
    referral(campaign, "ANN-0001", usage_counter=1)
    page = staff_page

    # the list, from the sidebar
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Referral codes").first.click()
    expect(page.locator("#result_list")).to_contain_text("ANN-0001")
    expect(page.locator("#result_list")).to_contain_text("Used up")
    screenshot(page, "referrals-list")

    # a file with a bad line is refused, the line named
    bad = tmp_path / "bad.csv"
    bad.write_text("code,advocateprofileintegrationid\nFRIEND-0001,bob\nFRIEND-0002,\n")
    page.get_by_role("link", name="Import CSV").click()
    page.select_option("#id_campaign", str(campaign.pk))
    page.set_input_files("#id_file", str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-problems")).to_contain_text("Line 3: the advocate's ID is empty")
    screenshot(page, "referrals-import-problems")
    assert Referral.objects.count() == 1

    # the fixed file imports
    bad.write_text("code,advocateprofileintegrationid\nFRIEND-0001,bob\nFRIEND-0002,carl\n")
    page.select_option("#id_campaign", str(campaign.pk))
    page.set_input_files("#id_file", str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 2 referral codes into “Bring a friend”.")).to_be_visible()

    # deleting asks first
    row = page.locator("#result_list tbody tr", has=page.get_by_text("FRIEND-0001"))
    row.get_by_role("link", name="FRIEND-0001").click()
    page.get_by_role("link", name="Delete").first.click()
    expect(page.get_by_text("Delete the referral code FRIEND-0001?")).to_be_visible()
    screenshot(page, "referrals-delete-confirm")
    page.get_by_role("button", name="Yes, delete the code").click()
    expect(page.get_by_text("Deleted the referral code FRIEND-0001.")).to_be_visible()
    assert not Referral.objects.filter(code="FRIEND-0001").exists()
