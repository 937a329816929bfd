"""The coupon pages of the back office, through Django's test client."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.core import clock
from patronage.coupons.models import CampaignCodeSource, Coupon, CouponGeneration
from patronage.dataio.models import ImportJob
from patronage.dataio.running import import_job_run
from patronage.dataio.testing import run_queued_jobs
from patronage.testing.factories import make_application
from patronage.testing.promocodes import make_group
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

LIST = "/admin/coupons/coupon/"
GENERATE = "/admin/coupons/coupon/generate/"
RECIPIENTS = "/admin/coupons/coupon/recipients/"
IMPORT = "/admin/coupons/coupon/import/"
EXPORT = "/admin/coupons/coupon/export/"
DELETE_MATCHING = "/admin/coupons/coupon/delete-matching/"
SOURCES = "/admin/coupons/coupon/code-sources/"


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    return client


@pytest.fixture
def shop() -> Application:
    return make_application(name="Coffee shop", currency="EUR")


@pytest.fixture
def summer(shop: Application) -> Campaign:
    return running_campaign(shop, "Summer")


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def words(response: Any) -> str:
    """The page as a reader sees it: no tags, entities as characters, one space between words."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def coupon(campaign: Campaign, value: str, **fields: Any) -> Coupon:
    return Coupon.objects.create(application=campaign.application, campaign=campaign, value=value, **fields)


def generate_data(campaign: Campaign, **overrides: Any) -> dict[str, Any]:
    data = {
        "campaign": campaign.pk,
        "count": 5,
        "pattern": "SUM-####-####",
        "alphabet": "ABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        "usage_limit": 1,
        "discount_limit": "",
        "reservation_limit": "",
        "start_date_0": "",
        "start_date_1": "",
        "expiry_date_0": "",
        "expiry_date_1": "",
        "recipient_integration_id": "",
        "attributes": "",
    }
    data.update(overrides)
    return data


def rows(response: Any) -> list[str]:
    """The coupon values of the list page, in its order."""
    cells = re.findall(r'<th class="field-code[^"]*"[^>]*>(.*?)</th>', response.content.decode(), re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


# --- the list ----------------------------------------------------------------------------------------------


def test_the_list_shows_status_usage_and_recipient_of_each_coupon(
    admin_client: Client, summer: Campaign
) -> None:
    now = clock.now()
    coupon(summer, "FRESH-1", usage_limit=1)
    coupon(summer, "SPENT-1", usage_limit=2, usage_counter=2)
    coupon(summer, "OLD-1", expiry_date=now - dt.timedelta(days=1))
    coupon(summer, "LATER-1", start_date=now + dt.timedelta(days=3))
    coupon(summer, "FOREVER-1", usage_limit=0, usage_counter=7, recipient_integration_id="ada")

    page = text(admin_client.get(LIST))

    def row_of(value: str) -> str:
        return re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{value}(?:(?!</tr>).)*</tr>", page).group(0)  # type: ignore[union-attr]

    assert 'data-status="usable"' in row_of("FRESH-1") and "0 / 1" in row_of("FRESH-1")
    assert "Used up" in row_of("SPENT-1") and "2 / 2" in row_of("SPENT-1")
    assert "Expired" in row_of("OLD-1")
    assert "Not started" in row_of("LATER-1")
    assert "7 / ∞" in row_of("FOREVER-1") and "ada" in row_of("FOREVER-1")
    assert "Summer" in row_of("FRESH-1")


def test_the_list_filters_by_campaign_batch_usability_redemption_recipient_and_search(
    admin_client: Client, shop: Application, summer: Campaign
) -> None:
    winter = running_campaign(shop, "Winter")
    coupon(summer, "SUM-A", batch_id="b1")
    coupon(summer, "SUM-B", batch_id="b1", usage_counter=1)
    coupon(summer, "SUM-C", batch_id="b2", recipient_integration_id="ada")
    coupon(winter, "WIN-A")

    assert sorted(rows(admin_client.get(LIST, {"campaign": str(summer.pk)}))) == ["SUM-A", "SUM-B", "SUM-C"]
    assert sorted(rows(admin_client.get(LIST, {"campaign": str(summer.pk), "batch": "b1"}))) == [
        "SUM-A",
        "SUM-B",
    ]
    assert rows(admin_client.get(LIST, {"redeemed": "yes"})) == ["SUM-B"]
    assert sorted(rows(admin_client.get(LIST, {"usable": "no"}))) == ["SUM-B"]
    assert rows(admin_client.get(LIST, {"recipient": "ada"})) == ["SUM-C"]
    assert rows(admin_client.get(LIST, {"q": "win"})) == ["WIN-A"]


def test_the_list_paginates_and_sorts(admin_client: Client, summer: Campaign) -> None:
    for n in range(12):
        coupon(summer, f"CODE-{n:02d}", usage_counter=n % 2)

    first = rows(admin_client.get(LIST, {"per_page": "10", "o": "1"}))
    second = rows(admin_client.get(LIST, {"per_page": "10", "o": "1", "p": "2"}))

    assert first == [f"CODE-{n:02d}" for n in range(10)]
    assert second == ["CODE-10", "CODE-11"]


# --- generating --------------------------------------------------------------------------------------------


def test_a_small_batch_is_generated_at_once_and_the_list_shows_it(
    admin_client: Client, summer: Campaign
) -> None:
    response = admin_client.post(
        GENERATE,
        generate_data(
            summer, count=5, usage_limit=3, discount_limit="25.50", attributes='{"channel": "print"}'
        ),
        follow=True,
    )

    made = list(Coupon.objects.filter(campaign=summer))
    assert len(made) == 5
    assert all(re.fullmatch(r"SUM-[A-Z2-9]{4}-[A-Z2-9]{4}", c.value) for c in made)
    assert {c.usage_limit for c in made} == {3}
    assert {c.discount_limit for c in made} == {Decimal("25.50")}
    assert {c.batch_id for c in made} != {""} and len({c.batch_id for c in made}) == 1
    assert made[0].attributes == {"channel": "print"}
    assert "Generated 5 coupons for “Summer”" in text(response)
    assert sorted(rows(response)) == sorted(c.value for c in made)


def test_the_generate_form_says_what_is_wrong_with_the_pattern(
    admin_client: Client, summer: Campaign
) -> None:
    response = admin_client.post(GENERATE, generate_data(summer, count=1000, pattern="AB-##"))

    page = text(response)
    assert response.status_code == 200
    assert (
        "makes at most 1,024 different codes from 32 characters; 1,000 codes need at least 3 # in it" in page
    )
    assert not Coupon.objects.exists()

    no_hash = words(admin_client.post(GENERATE, generate_data(summer, pattern="SUMMER")))
    assert "has no # for a random character" in no_hash


def test_the_generate_form_shows_the_campaigns_currency(admin_client: Client, summer: Campaign) -> None:
    assert "Discount limit (EUR)" in text(admin_client.get(GENERATE, {"campaign": str(summer.pk)}))


def test_without_a_campaign_the_generate_page_asks_for_one(admin_client: Client, summer: Campaign) -> None:
    page = text(admin_client.get(GENERATE))

    assert "Which campaign are the coupons for?" in page
    assert "Summer (Coffee shop)" in page


@pytest.mark.django_db(transaction=True)  # the job runs in the worker's own connection
def test_a_batch_over_the_limit_runs_in_the_background_with_a_progress_page(
    admin_client: Client, summer: Campaign, settings: Any
) -> None:
    settings.PATRONAGE_COUPONS_SYNC_LIMIT = 10

    response = admin_client.post(GENERATE, generate_data(summer, count=11))

    generation = CouponGeneration.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/generation/{generation.pk}/")
    waiting = words(admin_client.get(response["Location"]))
    assert "0 of 11 made" in waiting
    assert "See the batch" not in waiting

    run_queued_jobs()

    done_page = admin_client.get(response["Location"])
    done = words(done_page)
    assert "Done: 11 coupons made." in done
    assert f"batch={generation.batch_id}" in text(done_page)
    assert Coupon.objects.filter(campaign=summer, batch_id=generation.batch_id).count() == 11
    status = admin_client.get(response["Location"] + "status/").json()
    assert status["percent"] == 100 and status["made"] == 11 and status["finished"] is True


# --- personal codes, import, export ------------------------------------------------------------------------


def test_personal_codes_make_one_code_for_each_pasted_customer(
    admin_client: Client, summer: Campaign
) -> None:
    response = admin_client.post(
        RECIPIENTS,
        {**generate_data(summer), "recipients": "ada\n\nbob\n  cy  \nada\n"},
        follow=True,
    )

    made = Coupon.objects.filter(campaign=summer)
    assert sorted(made.values_list("recipient_integration_id", flat=True)) == ["ada", "bob", "cy"]
    assert "Made 3 personal codes for “Summer”, one per customer." in text(response)


CSV_GOOD_AND_BAD = (
    b"value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n"
    b"IMP-0001,2030-01-01T00:00:00Z,,,2,,\n"
    b"X,,,,1,,\n"
    b'IMP-0002,,,ada,0,10.5,"{""channel"": ""print""}"\n'
)


def upload_coupons(client: Client, campaign: Campaign, *, skip: bool) -> Any:
    """The toolbar's Import CSV, then Import/Export's form as it opens for the campaign; the job is run."""
    start = client.get(IMPORT, {"campaign": campaign.pk})
    assert start.status_code == 302
    form_url = start["Location"]
    assert form_url == f"/admin/dataio/importjob/add/?kind=coupons&campaign={campaign.pk}"
    assert "Summer (Coffee shop)" in words(client.get(form_url))
    data = {
        "kind": "coupons",
        "environment": campaign.application.environment.slug,
        "option_campaign": str(campaign.pk),
        "file": SimpleUploadedFile("coupons.csv", CSV_GOOD_AND_BAD, content_type="text/csv"),
    }
    if skip:
        data["skip_bad_rows"] = "on"
    response = client.post(form_url, data)
    assert response.status_code == 302, text(response)[:2000]
    import_job_run(job=ImportJob.objects.latest("pk"))
    return client.get(response["Location"])


def test_an_import_with_a_bad_line_changes_nothing_and_names_the_line(
    admin_client: Client, summer: Campaign
) -> None:
    page = words(upload_coupons(admin_client, summer, skip=False))

    assert not Coupon.objects.exists()
    assert re.search(r"Line Column Problem 3 value the code 'X' is too short", page), page[-3000:]


def test_an_import_skipping_bad_lines_keeps_the_good_ones_and_lists_the_bad(
    admin_client: Client, summer: Campaign
) -> None:
    page = words(upload_coupons(admin_client, summer, skip=True))

    imported = {c.value: c for c in Coupon.objects.filter(campaign=summer)}
    assert sorted(imported) == ["IMP-0001", "IMP-0002"]
    assert imported["IMP-0001"].usage_limit == 2
    assert imported["IMP-0002"].recipient_integration_id == "ada"
    assert imported["IMP-0002"].discount_limit == Decimal("10.5")
    assert re.search(r"3 value the code 'X' is too short", page)


def test_the_export_is_the_filtered_list(admin_client: Client, shop: Application, summer: Campaign) -> None:
    coupon(summer, "SUM-A", batch_id="b1")
    coupon(summer, "SUM-B", batch_id="b2")
    coupon(running_campaign(shop, "Winter"), "WIN-A", batch_id="b1")

    response = admin_client.get(EXPORT, {"campaign": str(summer.pk), "batch": "b1"})

    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined]
    assert [row["value"] for row in table] == ["SUM-A"]


# --- editing and deleting ----------------------------------------------------------------------------------


def test_editing_a_coupon_changes_its_limits_dates_and_recipient_but_not_its_value(
    admin_client: Client, summer: Campaign
) -> None:
    c = coupon(summer, "EDIT-ME", usage_limit=1)
    url = f"{LIST}{c.pk}/change/"
    page = text(admin_client.get(url))
    assert "EDIT-ME" in page
    assert 'name="value"' not in page

    response = admin_client.post(
        url,
        {
            "usage_limit": 5,
            "discount_limit": "",
            "reservation_limit": "",
            "start_date_0": "",
            "start_date_1": "",
            "expiry_date_0": "2031-01-31",
            "expiry_date_1": "12:00:00",
            "recipient_integration_id": "bob",
            "attributes": '{"tier": "gold"}',
            "value": "HACKED",
        },
    )

    assert response.status_code == 302, text(response)
    c.refresh_from_db()
    assert c.value == "EDIT-ME"
    assert c.usage_limit == 5
    assert c.recipient_integration_id == "bob"
    assert c.expiry_date is not None and c.expiry_date.date() == dt.date(2031, 1, 31)
    assert c.attributes == {"tier": "gold"}


def test_delete_all_matching_says_how_many_then_deletes_only_those(
    admin_client: Client, shop: Application, summer: Campaign
) -> None:
    coupon(summer, "GO-1", batch_id="b1")
    coupon(summer, "GO-2", batch_id="b1")
    coupon(summer, "STAY-1", batch_id="b2")
    coupon(running_campaign(shop, "Winter"), "STAY-2", batch_id="b1")

    confirm = text(admin_client.get(DELETE_MATCHING, {"campaign": str(summer.pk), "batch": "b1"}))
    assert "Delete 2 coupons of “Summer”?" in confirm
    assert "Every coupon of the campaign of batch b1 will be deleted." in confirm
    assert Coupon.objects.count() == 4

    response = admin_client.post(
        DELETE_MATCHING, {"campaign": summer.pk, "batch": "b1", "confirmed": "yes"}, follow=True
    )

    assert "Deleted 2 coupons of “Summer”." in text(response)
    assert sorted(Coupon.objects.values_list("value", flat=True)) == ["STAY-1", "STAY-2"]


def test_delete_all_matching_needs_a_campaign(admin_client: Client, summer: Campaign) -> None:
    coupon(summer, "STAY-1")

    response = admin_client.get(DELETE_MATCHING, {"batch": "b1"}, follow=True)

    assert "Choose a campaign in the filters first" in text(response)
    assert Coupon.objects.count() == 1


def test_deleting_selected_coupons_asks_first(admin_client: Client, summer: Campaign) -> None:
    a, b = coupon(summer, "SEL-1"), coupon(summer, "SEL-2")
    coupon(summer, "KEEP-1")
    chosen = {"action": "delete_selected_coupons", "_selected_action": [a.pk, b.pk]}

    confirm = text(admin_client.post(LIST, chosen))
    assert "Delete 2 selected coupons?" in confirm
    assert Coupon.objects.count() == 3

    admin_client.post(LIST, {**chosen, "confirmed": "yes"})
    assert list(Coupon.objects.values_list("value", flat=True)) == ["KEEP-1"]


# --- promo-code groups a campaign accepts ------------------------------------------------------------------


def test_a_campaign_accepts_the_promo_code_groups_chosen_for_it(
    admin_client: Client, shop: Application, summer: Campaign
) -> None:
    spring = make_group(shop.environment, "Spring mailing", codes=["SPR-1"])
    autumn = make_group(shop.environment, "Autumn mailing", codes=["AUT-1"])
    make_group("sandbox", "Sandbox group", codes=["SB-1"])

    page = text(admin_client.get(SOURCES, {"campaign": str(summer.pk)}))
    assert "Spring mailing" in page and "Autumn mailing" in page
    assert "Sandbox group" not in page

    admin_client.post(SOURCES, {"campaign": summer.pk, "groups": [spring.pk, autumn.pk]})
    assert set(CampaignCodeSource.objects.values_list("group_id", flat=True)) == {spring.pk, autumn.pk}

    response = admin_client.post(SOURCES, {"campaign": summer.pk, "groups": [autumn.pk]}, follow=True)
    assert list(CampaignCodeSource.objects.values_list("group_id", flat=True)) == [autumn.pk]
    assert "“Summer” accepts issued codes of: Autumn mailing." in text(response)


# --- who may do what ---------------------------------------------------------------------------------------


def test_staff_who_may_only_view_coupons_see_the_list_but_cannot_make_or_delete(
    summer: Campaign,
) -> None:
    coupon(summer, "VIEW-1")
    viewer = get_user_model().objects.create_user("viewer", password="pw-123456", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_coupon"))
    client = Client()
    client.force_login(viewer)

    page = text(client.get(LIST, {"campaign": str(summer.pk)}))
    assert "VIEW-1" in page
    assert "Generate coupons" not in page
    assert "Delete all matching" not in page
    assert client.get(GENERATE, {"campaign": str(summer.pk)}).status_code == 403
    assert client.post(DELETE_MATCHING, {"campaign": summer.pk, "confirmed": "yes"}).status_code == 403
    assert Coupon.objects.count() == 1


def test_deleting_one_coupon_from_its_page_asks_first(admin_client: Client, summer: Campaign) -> None:
    c = coupon(summer, "ONE-1")
    url = f"{LIST}{c.pk}/delete/"

    assert "ONE-1" in words(admin_client.get(url))
    assert Coupon.objects.filter(pk=c.pk).exists()

    admin_client.post(url, {"post": "yes"})
    assert not Coupon.objects.filter(pk=c.pk).exists()
