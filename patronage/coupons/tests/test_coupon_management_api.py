"""Coupons through the Management API with the official SDK (9.0.0, unmodified) against a real server:
create_coupons, create_coupons_for_multiple_recipients, import_coupons, get_coupons_without_total_count,
update_coupon, update_coupon_batch, delete_coupon, delete_coupons and export_coupons."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any

import pytest
import talon_one
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from talon_one import models as t
from talon_one.rest import ApiException

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.coupons.models import Coupon
from patronage.dataio.models import ImportJob
from patronage.testing.factories import make_application
from patronage.workspace.models import Application
from patronage.workspace.services import management_key_create

pytestmark = pytest.mark.django_db(transaction=True)

ALL = ("view_coupon", "add_coupon", "change_coupon", "delete_coupon")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def management_api(server_url: str, *codenames: str, username: str = "coupons") -> talon_one.ManagementApi:
    user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="coupons", codename__in=codenames)
    )
    _, key = management_key_create(user=user, name="coupon scripts")
    configuration = talon_one.Configuration(
        host=server_url + "/api",
        api_key={"Authorization": key},
        api_key_prefix={"Authorization": "ManagementKey-v1"},
    )
    return talon_one.ManagementApi(talon_one.ApiClient(configuration))


def refusal(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


@pytest.fixture
def shop(db: None) -> Application:
    return make_application(environment="live")


def coupon_campaign(application: Application, name: str = "Summer codes") -> Campaign:
    return running_campaign(application, name, features=["coupons"])


def coupon(campaign: Campaign, value: str, **fields: Any) -> Coupon:
    return Coupon.objects.create(application=campaign.application, campaign=campaign, value=value, **fields)


def test_staff_create_coupons_from_a_pattern(live_server: Any, shop: Application) -> None:
    campaign = coupon_campaign(shop)
    management = management_api(live_server.url, *ALL)
    expires = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)

    # when staff create five coupons from a pattern and ask for them back
    made = management.create_coupons(
        shop.pk,
        campaign.pk,
        t.NewCoupons(
            usage_limit=2,
            number_of_coupons=5,
            coupon_pattern="SUMMER-####",
            valid_characters=["A", "B", "7"],
            expiry_date=expires,
            discount_limit=50,
            attributes={"channel": "print"},
            limits=[t.LimitConfig(action="redeemCoupon", limit=1, entities=["Coupon", "Profile"])],
        ),
        silent="no",
    )

    # then the SDK gets the five coupons, drawn from the pattern, sharing one batch
    assert isinstance(made, t.InlineResponse20010) and made.total_result_size == 5
    assert all(isinstance(c, t.Coupon) for c in made.data)
    assert all(re.fullmatch(r"SUMMER-[AB7]{4}", c.value) for c in made.data)
    assert len({c.value for c in made.data}) == 5 and len({c.batch_id for c in made.data}) == 1
    first = made.data[0]
    assert (first.usage_limit, first.usage_counter, first.expiry_date) == (2, 0, expires)
    assert (first.discount_limit, first.discount_remainder, first.attributes) == (
        50,
        50,
        {"channel": "print"},
    )
    assert first.limits[0].action == "redeemCoupon" and first.limits[0].entities == ["Coupon", "Profile"]
    stored = Coupon.objects.get(value=first.value)
    assert (stored.campaign, stored.usage_limit, stored.batch_id) == (campaign, 2, first.batch_id)

    # and silent (Talon.One's default) makes them and answers 204 without a body (the generated SDK cannot
    # read an empty 204 into its model, so the raw answer is read, as an SDK user does)
    raw = management.create_coupons(
        shop.pk, campaign.pk, t.NewCoupons(usage_limit=1, number_of_coupons=3), _preload_content=False
    )
    assert (raw.status, raw.data) == (204, b"")
    assert Coupon.objects.filter(campaign=campaign).count() == 8
    # and the admin log names the key's staff user
    assert LogEntry.objects.filter(
        user__username="coupons", change_message__contains="Created 5 coupons"
    ).exists()

    # when the settings are wrong, then each refusal points at the field and nothing is made
    with pytest.raises(ApiException) as backwards:
        management.create_coupons(
            shop.pk,
            campaign.pk,
            t.NewCoupons(
                usage_limit=1,
                number_of_coupons=1,
                start_date=dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
                expiry_date=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            ),
        )
    assert backwards.value.status == 400
    assert refusal(backwards)["errors"][0]["source"]["pointer"] == "/expiryDate"
    with pytest.raises(ApiException) as too_many:
        management.create_coupons(shop.pk, campaign.pk, t.NewCoupons(usage_limit=1, number_of_coupons=20_001))
    assert too_many.value.status == 400
    assert refusal(too_many)["errors"][0]["source"]["pointer"] == "/numberOfCoupons"
    with pytest.raises(ApiException) as small:
        management.create_coupons(
            shop.pk, campaign.pk, t.NewCoupons(usage_limit=1, number_of_coupons=10, coupon_pattern="AB#")
        )
    assert small.value.status == 400
    assert Coupon.objects.filter(campaign=campaign).count() == 8

    # and a campaign without the feature "coupons" gets none
    plain = running_campaign(shop, "Plain discount")
    with pytest.raises(ApiException) as no_feature:
        management.create_coupons(shop.pk, plain.pk, t.NewCoupons(usage_limit=1, number_of_coupons=1))
    assert no_feature.value.status == 400
    assert "does not have the feature 'coupons'" in refusal(no_feature)["message"]


def test_staff_create_personal_coupons_for_recipients(live_server: Any, shop: Application) -> None:
    campaign = coupon_campaign(shop)
    management = management_api(live_server.url, *ALL)

    # when staff make codes for three recipients, one named twice
    made = management.create_coupons_for_multiple_recipients(
        shop.pk,
        campaign.pk,
        t.NewCouponsForMultipleRecipients(
            usage_limit=1,
            recipients_integration_ids=["ann", "bob", "ann", "carl"],
            coupon_pattern="VIP-#####",
        ),
        silent="no",
    )

    # then each gets one personal code nobody else may reserve
    assert isinstance(made, t.InlineResponse20010)
    assert [c.recipient_integration_id for c in made.data] == ["ann", "bob", "carl"]
    assert all(c.value.startswith("VIP-") and c.reservation is False for c in made.data)
    assert sorted(Coupon.objects.values_list("recipient_integration_id", flat=True)) == ["ann", "bob", "carl"]

    # and more than 1,000 recipients are refused before anything is made
    with pytest.raises(ApiException) as too_many:
        management.create_coupons_for_multiple_recipients(
            shop.pk,
            campaign.pk,
            t.NewCouponsForMultipleRecipients(
                usage_limit=1, recipients_integration_ids=[f"c{i}" for i in range(1001)]
            ),
        )
    assert too_many.value.status == 400
    assert Coupon.objects.count() == 3


def test_staff_list_coupons_with_talon_ones_filters(live_server: Any, shop: Application) -> None:
    # given a campaign with coupons in every state
    campaign = coupon_campaign(shop)
    used = coupon(campaign, "USED-0001", usage_counter=1, batch_id="b1")
    coupon(campaign, "OLD-0002", expiry_date=NOW - dt.timedelta(days=1), batch_id="b1")
    coupon(campaign, "SOON-0003", start_date=NOW + dt.timedelta(days=3), usage_limit=5)
    coupon(campaign, "ANN-0004", recipient_integration_id="ann", reservation=False)
    coupon(coupon_campaign(shop, "Other"), "ELSEWHERE-1")
    Coupon.objects.filter(pk=used.pk).update(created=NOW - dt.timedelta(days=3))
    management = management_api(live_server.url, *ALL)

    def values(**filters: Any) -> list[str]:
        page = management.get_coupons_without_total_count(shop.pk, campaign.pk, **filters)
        assert isinstance(page, t.InlineResponse20011)
        assert all(isinstance(c, t.Coupon) for c in page.data)
        return [c.value for c in page.data]

    # then each filter narrows the list as Talon.One's does (newest first without a sort)
    assert values() == ["ANN-0004", "SOON-0003", "OLD-0002", "USED-0001"]
    assert values(sort="value") == ["ANN-0004", "OLD-0002", "SOON-0003", "USED-0001"]
    assert values(value="0002") == ["OLD-0002"]
    assert values(value="old", exact_match=True) == []
    assert values(value="old-0002", exact_match=True) == ["OLD-0002"]
    assert values(usable="false") == ["USED-0001"]
    assert values(redeemed="true") == ["USED-0001"]
    assert values(redeemed="false", sort="value") == ["ANN-0004", "OLD-0002", "SOON-0003"]
    assert values(valid="expired") == ["OLD-0002"]
    assert values(valid="validFuture") == ["SOON-0003"]
    assert values(valid="validNow", sort="value") == ["ANN-0004", "USED-0001"]
    assert values(batch_id="b1", sort="-value") == ["USED-0001", "OLD-0002"]
    assert values(recipient_integration_id="ann") == ["ANN-0004"]
    assert values(created_before=NOW - dt.timedelta(days=1)) == ["USED-0001"]
    assert values(starts_after=NOW) == ["SOON-0003"]
    assert values(expires_before=NOW) == ["OLD-0002"]
    page = management.get_coupons_without_total_count(shop.pk, campaign.pk, page_size=3, sort="value")
    assert page.has_more is True and len(page.data) == 3
    page = management.get_coupons_without_total_count(shop.pk, campaign.pk, page_size=3, skip=3, sort="value")
    assert page.has_more is False and [c.value for c in page.data] == ["USED-0001"]

    # and a sort or a page size it does not know is refused with the parameter named
    with pytest.raises(ApiException) as bad_sort:
        values(sort="colour")
    assert bad_sort.value.status == 400
    assert refusal(bad_sort)["errors"][0]["source"]["parameter"] == "sort"


def test_staff_change_a_coupon_and_a_batch(live_server: Any, shop: Application) -> None:
    campaign = coupon_campaign(shop)
    one = coupon(
        campaign,
        "GIFT-0001",
        usage_limit=5,
        usage_counter=3,
        start_date=NOW,
        expiry_date=NOW + dt.timedelta(days=30),
        recipient_integration_id="ann",
        reservation=False,
        attributes={"tier": "gold"},
    )
    management = management_api(live_server.url, *ALL)

    # when staff PUT a coupon with only a new expiry date
    expires = dt.datetime(2032, 1, 1, tzinfo=dt.UTC)
    changed = management.update_coupon(shop.pk, campaign.pk, one.pk, t.UpdateCoupon(expiry_date=expires))

    # then, as Talon.One's PUT, the start date and recipient left out are cleared, the rest kept
    assert isinstance(changed, t.Coupon)
    assert changed.expiry_date == expires and changed.start_date is None
    assert changed.recipient_integration_id is None and changed.reservation is True
    assert (changed.usage_limit, changed.attributes) == (5, {"tier": "gold"})
    one.refresh_from_db()
    assert (one.start_date, one.expiry_date, one.recipient_integration_id) == (None, expires, "")

    # a usage limit below the uses made is refused; 0 (unlimited) is fine
    with pytest.raises(ApiException) as too_low:
        management.update_coupon(shop.pk, campaign.pk, one.pk, t.UpdateCoupon(usage_limit=2))
    assert too_low.value.status == 409
    assert "already used 3 times" in refusal(too_low)["message"]
    assert (
        management.update_coupon(shop.pk, campaign.pk, one.pk, t.UpdateCoupon(usage_limit=0)).usage_limit == 0
    )

    # when staff change a batch, then only that batch's coupons change, and only the fields sent
    first = [coupon(campaign, f"BATCH-A{i}", batch_id="a", attributes={"n": i}) for i in range(3)]
    other = coupon(campaign, "BATCH-B0", batch_id="b")
    assert (
        management.update_coupon_batch(
            shop.pk, campaign.pk, t.UpdateCouponBatch(batch_id="a", usage_limit=4, expiry_date=expires)
        )
        is None
    )
    rows = Coupon.objects.filter(pk__in=[c.pk for c in first]).order_by("value")
    assert [(c.usage_limit, c.expiry_date, c.attributes) for c in rows] == [
        (4, expires, {"n": 0}),
        (4, expires, {"n": 1}),
        (4, expires, {"n": 2}),
    ]
    other.refresh_from_db()
    assert (other.usage_limit, other.expiry_date) == (1, None)
    with pytest.raises(ApiException) as unknown_batch:
        management.update_coupon_batch(
            shop.pk, campaign.pk, t.UpdateCouponBatch(batch_id="zz", usage_limit=9)
        )
    assert unknown_batch.value.status == 404


def test_staff_delete_one_coupon_and_by_filter(live_server: Any, shop: Application) -> None:
    campaign = coupon_campaign(shop)
    one = coupon(campaign, "ONE-0001")
    coupon(campaign, "OLD-0002", expiry_date=NOW - dt.timedelta(days=1))
    coupon(campaign, "OLD-0003", expiry_date=NOW - dt.timedelta(days=2), batch_id="x")
    coupon(campaign, "KEEP-0004", batch_id="x")
    theirs = coupon(coupon_campaign(shop, "Other"), "OLD-0005", expiry_date=NOW - dt.timedelta(days=1))
    management = management_api(live_server.url, *ALL)

    # when staff delete one, then it is gone, and deleting it again is 404
    assert management.delete_coupon(shop.pk, campaign.pk, one.pk) is None
    assert not Coupon.objects.filter(pk=one.pk).exists()
    with pytest.raises(ApiException) as gone:
        management.delete_coupon(shop.pk, campaign.pk, one.pk)
    assert gone.value.status == 404

    # when staff delete the expired coupons of a batch, then only those go
    management.delete_coupons(shop.pk, campaign.pk, valid="expired", batch_id="x")
    assert sorted(Coupon.objects.filter(campaign=campaign).values_list("value", flat=True)) == [
        "KEEP-0004",
        "OLD-0002",
    ]
    # and without a filter every coupon of the campaign goes, but not another campaign's
    management.delete_coupons(shop.pk, campaign.pk)
    assert list(Coupon.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert LogEntry.objects.filter(change_message="Deleted coupon ONE-0001").exists()


def test_other_applications_campaigns_and_missing_permissions_are_refused(
    live_server: Any, shop: Application
) -> None:
    campaign = coupon_campaign(shop)
    mine = coupon(campaign, "MINE-0001")
    sandbox = make_application(environment="sandbox")
    sandbox_campaign = coupon_campaign(sandbox, "Sandbox codes")
    theirs = coupon(sandbox_campaign, "THEIRS-01")
    management = management_api(live_server.url, *ALL)

    # a sandbox application's campaign under the live application's path is not found, whatever the call
    calls = [
        lambda: management.get_coupons_without_total_count(shop.pk, sandbox_campaign.pk),
        lambda: management.create_coupons(
            shop.pk, sandbox_campaign.pk, t.NewCoupons(usage_limit=1, number_of_coupons=1)
        ),
        lambda: management.update_coupon(
            shop.pk, sandbox_campaign.pk, theirs.pk, t.UpdateCoupon(usage_limit=3)
        ),
        lambda: management.delete_coupon(shop.pk, sandbox_campaign.pk, theirs.pk),
        lambda: management.delete_coupons(shop.pk, sandbox_campaign.pk),
        lambda: management.export_coupons(shop.pk, campaign_id=sandbox_campaign.pk),
        # and a coupon of another campaign under this campaign's path
        lambda: management.delete_coupon(sandbox.pk, sandbox_campaign.pk, mine.pk),
    ]
    for call in calls:
        with pytest.raises(ApiException) as missing:
            call()
        assert missing.value.status == 404
    assert Coupon.objects.count() == 2 and Coupon.objects.get(pk=theirs.pk).usage_limit == 1

    # staff who may only look can list but not add, change or delete
    viewer = management_api(live_server.url, "view_coupon", username="viewer")
    assert [c.value for c in viewer.get_coupons_without_total_count(shop.pk, campaign.pk).data] == [
        "MINE-0001"
    ]
    refused = [
        (
            lambda: viewer.create_coupons(
                shop.pk, campaign.pk, t.NewCoupons(usage_limit=1, number_of_coupons=1)
            ),
            "add",
        ),
        (lambda: viewer.import_coupons(shop.pk, campaign.pk, up_file="value\nNEW-0001\n"), "add"),
        (
            lambda: viewer.update_coupon(shop.pk, campaign.pk, mine.pk, t.UpdateCoupon(usage_limit=3)),
            "change",
        ),
        (lambda: viewer.delete_coupons(shop.pk, campaign.pk), "delete"),
    ]
    for call, verb in refused:
        with pytest.raises(ApiException) as forbidden:
            call()
        assert forbidden.value.status == 403
        assert f"coupons.{verb}_coupon" in refusal(forbidden)["message"]
    assert list(Coupon.objects.filter(campaign=campaign).values_list("value", "usage_limit")) == [
        ("MINE-0001", 1)
    ]
    # and staff with no coupon permission cannot even list
    nobody = management_api(live_server.url, username="nobody")
    with pytest.raises(ApiException) as blind:
        nobody.export_coupons(shop.pk)
    assert blind.value.status == 403


def test_import_is_all_or_nothing_with_bad_lines_by_number(live_server: Any, shop: Application) -> None:
    campaign = coupon_campaign(shop)
    coupon(campaign, "TAKEN-01")
    management = management_api(live_server.url, *ALL)

    # given a file with a bad date, a short code, a code taken already and a bad limit
    bad = (
        "value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n"
        "GOOD-0001,,2030-01-01T00:00:00Z,,2,,\n"
        "GOOD-0002,yesterday,,,,,\n"
        "abc,,,,,,\n"
        "taken-01,,,,,,\n"
        "GOOD-0003,,,,many,,\n"
    )
    # when staff import it, then nothing is imported and each bad line is named
    with pytest.raises(ApiException) as refused:
        management.import_coupons(shop.pk, campaign.pk, up_file=bad)
    assert refused.value.status == 400
    body = refusal(refused)
    assert "Nothing was imported" in body["message"]
    assert [e["source"]["line"] for e in body["errors"]] == ["3", "4", "5", "6"]
    assert "yesterday" in body["errors"][0]["details"]
    assert "already a coupon" in body["errors"][2]["details"]
    assert Coupon.objects.count() == 1 and not ImportJob.objects.exists()

    # given a good file (codes in the shop's case, the limit 1 when left out, attributes as JSON)
    good = (
        "value,expirydate,startdate,recipientintegrationid,limitval,discountlimit,attributes\n"
        'good-0001,2031-01-01T00:00:00Z,,ann,2,25,"{""tier"": ""gold""}"\n'
        "GOOD-0002,,,,,,\n"
    )
    imported = management.import_coupons(shop.pk, campaign.pk, up_file=good)
    assert isinstance(imported, t.ModelImport) and imported.amount == 2 and imported.entity == "Coupon"
    first = Coupon.objects.get(value="GOOD-0001")
    assert (first.usage_limit, first.discount_limit, first.attributes) == (2, 25, {"tier": "gold"})
    assert (first.recipient_integration_id, first.import_id) == ("ann", imported.id)
    assert first.expiry_date == dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    assert Coupon.objects.get(value="GOOD-0002").usage_limit == 1
    # and the import is listed with the back office's imports
    job = ImportJob.objects.get(pk=imported.id)
    assert (job.kind, job.status, job.created_count) == ("coupons", "succeeded", 2)
    assert job.created_by is not None and job.created_by.username == "coupons"

    # when a file repeats codes already there, skipDuplicates leaves them out instead of refusing it
    again = "value\nGOOD-0001\nNEW-0003\nNEW-0003\n"
    with pytest.raises(ApiException) as duplicates:
        management.import_coupons(shop.pk, campaign.pk, up_file=again)
    assert duplicates.value.status == 400
    assert management.import_coupons(shop.pk, campaign.pk, up_file=again, skip_duplicates=True).amount == 1
    assert Coupon.objects.filter(value="NEW-0003").count() == 1


def test_export_filters_is_spreadsheet_safe_and_reimports(live_server: Any, shop: Application) -> None:
    campaign = coupon_campaign(shop)
    other = coupon_campaign(shop, "Other")
    coupon(campaign, "=HYPERLINK(1)", attributes={"a": 1}, recipient_integration_id="@ann", usage_limit=3)
    coupon(campaign, "USED-0002", usage_counter=1)
    coupon(other, "OTHER-01")
    management = management_api(live_server.url, *ALL)

    def rows(**filters: Any) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(management.export_coupons(shop.pk, **filters))))

    # the campaign's coupons, with Talon.One's columns, formulas neutralized
    exported = rows(campaign_id=campaign.pk, sort="value")
    assert [r["value"] for r in exported] == ["'=HYPERLINK(1)", "USED-0002"]
    assert exported[0]["recipientintegrationid"] == "'@ann" and exported[0]["limitval"] == "3"
    assert json.loads(exported[0]["attributes"]) == {"a": 1}
    assert exported[0]["campaignid"] == str(campaign.pk)
    # the filters narrow it, and without a campaign it is the whole application's
    assert [r["value"] for r in rows(campaign_id=campaign.pk, usable="true")] == ["'=HYPERLINK(1)"]
    assert [r["value"] for r in rows(value="other")] == ["OTHER-01"]
    assert len(rows()) == 3
    assert management.export_coupons(shop.pk, value="used", values_only=True).splitlines() == [
        "value",
        "USED-0002",
    ]

    # and the export imports into another campaign unchanged (after the codes are freed)
    text = management.export_coupons(shop.pk, campaign_id=campaign.pk)
    Coupon.objects.filter(campaign=campaign).delete()
    assert management.import_coupons(shop.pk, other.pk, up_file=text).amount == 2
    back = Coupon.objects.get(campaign=other, value="=HYPERLINK(1)")
    assert (back.recipient_integration_id, back.usage_limit, back.attributes) == ("@ann", 3, {"a": 1})
