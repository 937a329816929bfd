"""Referral codes through the official SDK (9.0.0, unmodified) against a real server: the Integration API's
create_referral and create_referrals_for_multiple_advocates, and the Management API's list, update, delete,
import and export of referrals."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
import talon_one
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from talon_one import models as t
from talon_one.rest import ApiException

from patronage.campaigns.tests.helpers import running_campaign
from patronage.coupons.models import Referral
from patronage.testing.factories import make_api_key, make_application
from patronage.workspace.models import Application, CodeCase
from patronage.workspace.services import management_key_create

pytestmark = pytest.mark.django_db(transaction=True)


def integration_api(server_url: str, application: Application) -> talon_one.IntegrationApi:
    configuration = talon_one.Configuration(
        host=server_url,
        api_key={"Authorization": make_api_key(application)},
        api_key_prefix={"Authorization": "ApiKey-v1"},
    )
    return talon_one.IntegrationApi(talon_one.ApiClient(configuration))


def management_api(server_url: str, *codenames: str, username: str = "referrals") -> talon_one.ManagementApi:
    user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="coupons", codename__in=codenames)
    )
    _, key = management_key_create(user=user, name="referral scripts")
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


@pytest.fixture
def sdk(live_server: Any, shop: Application) -> talon_one.IntegrationApi:
    return integration_api(live_server.url, shop)


def referral_campaign(application: Application, name: str = "Bring a friend") -> int:
    return running_campaign(application, name, features=["referrals"]).pk


def test_a_shop_creates_a_referral_code_for_an_advocate(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a referral campaign
    campaign_id = referral_campaign(shop)
    expires = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)

    # when the shop asks for a code for an advocate, bound to one friend
    referral = sdk.create_referral(
        t.NewReferral(
            campaign_id=campaign_id,
            advocate_profile_integration_id="ann",
            friend_profile_integration_id="bob",
            usage_limit=3,
            expiry_date=expires,
            attributes={"channel": "email"},
        )
    )

    # then the SDK gets a Referral with a fresh code of the default pattern
    assert isinstance(referral, t.Referral)
    assert referral.code.startswith("REF-") and len(referral.code) == 12
    assert (referral.campaign_id, referral.advocate_profile_integration_id) == (campaign_id, "ann")
    assert referral.friend_profile_integration_id == "bob"
    assert (referral.usage_limit, referral.usage_counter) == (3, 0)
    assert referral.expiry_date == expires
    assert referral.attributes == {"channel": "email"}
    # and a second code for the same advocate is another code
    again = sdk.create_referral(t.NewReferral(campaign_id=campaign_id, advocate_profile_integration_id="ann"))
    assert again.code != referral.code and again.usage_limit == 1
    assert Referral.objects.filter(advocate_integration_id="ann").count() == 2


def test_a_referral_needs_a_referral_campaign_of_the_keys_application(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    # given a campaign without the referrals feature, and a referral campaign of another shop
    plain = running_campaign(shop, "Plain discount").pk
    elsewhere = referral_campaign(make_application(environment="live"), "Theirs")

    # when the shop asks for codes of them, then it is told why not
    with pytest.raises(ApiException) as no_feature:
        sdk.create_referral(t.NewReferral(campaign_id=plain, advocate_profile_integration_id="ann"))
    assert no_feature.value.status == 400
    assert "does not have the feature 'referrals'" in refusal(no_feature)["message"]

    with pytest.raises(ApiException) as foreign:
        sdk.create_referral(t.NewReferral(campaign_id=elsewhere, advocate_profile_integration_id="ann"))
    assert foreign.value.status == 404
    assert f"Campaign {elsewhere} not found" in refusal(foreign)["message"]

    # and dates the wrong way round are refused with a pointer at the field
    with pytest.raises(ApiException) as backwards:
        sdk.create_referral(
            t.NewReferral(
                campaign_id=referral_campaign(shop),
                advocate_profile_integration_id="ann",
                start_date=dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
                expiry_date=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            )
        )
    assert backwards.value.status == 400
    assert refusal(backwards)["errors"][0]["source"]["pointer"] == "/expiryDate"
    assert not Referral.objects.exists()


def test_codes_for_many_advocates_silent_and_not(sdk: talon_one.IntegrationApi, shop: Application) -> None:
    campaign_id = referral_campaign(shop)

    # when the shop asks for codes for three advocates without saying silent, then it gets 204 and no body
    # (Talon.One's default). The generated SDK cannot read an empty 204 into its response model, so the raw
    # answer is read here, as an SDK user does with _preload_content=False.
    raw = sdk.create_referrals_for_multiple_advocates(
        t.NewReferralsForMultipleAdvocates(
            campaign_id=campaign_id, advocate_profile_integration_ids=["a1", "a2", "a3"], usage_limit=1
        ),
        _preload_content=False,
    )
    assert (raw.status, raw.data) == (204, b"")
    assert sorted(Referral.objects.values_list("advocate_integration_id", flat=True)) == ["a1", "a2", "a3"]

    # when it asks with silent=no, a pattern and an alphabet, then it gets the codes, in the shop's case
    made = sdk.create_referrals_for_multiple_advocates(
        t.NewReferralsForMultipleAdvocates(
            campaign_id=campaign_id,
            advocate_profile_integration_ids=["b1", "b2"],
            usage_limit=0,
            referral_pattern="fr-######",
            valid_characters=["a", "b", "c", "d"],
        ),
        silent="no",
    )
    assert made.total_result_size == 2
    assert [r.advocate_profile_integration_id for r in made.data] == ["b1", "b2"]
    for referral in made.data:
        assert referral.code[:3] == "FR-" and set(referral.code[3:]) <= set("ABCD")
        assert referral.usage_limit == 0
    assert len({r.batch_id for r in made.data}) == 1 and made.data[0].batch_id


def test_a_pattern_too_small_for_the_advocates_is_refused(
    sdk: talon_one.IntegrationApi, shop: Application
) -> None:
    campaign_id = referral_campaign(shop)
    with pytest.raises(ApiException) as small:
        sdk.create_referrals_for_multiple_advocates(
            t.NewReferralsForMultipleAdvocates(
                campaign_id=campaign_id,
                advocate_profile_integration_ids=[f"a{i}" for i in range(20)],
                usage_limit=1,
                referral_pattern="RF-#",
            ),
            silent="no",
        )
    assert small.value.status == 400
    assert "RF-#" in refusal(small)["message"]
    assert refusal(small)["errors"][0]["source"]["pointer"] == "/referralPattern"
    assert not Referral.objects.exists()


def test_lowercase_shops_get_lowercase_codes(live_server: Any) -> None:
    shop = make_application(environment="live")
    shop.coupon_code_case = CodeCase.LOWER
    shop.save(update_fields=["coupon_code_case"])
    sdk = integration_api(live_server.url, shop)
    referral = sdk.create_referral(
        t.NewReferral(campaign_id=referral_campaign(shop), advocate_profile_integration_id="ann")
    )
    assert referral.code.startswith("ref-") and referral.code == referral.code.lower()


# --- Management API ---------------------------------------------------------------------------------------

ALL = ("view_referral", "add_referral", "change_referral", "delete_referral")


def test_staff_list_change_and_delete_referrals(live_server: Any, shop: Application) -> None:
    # given a campaign with codes: one used up, one expired, one for another advocate
    campaign = running_campaign(shop, "Friends", features=["referrals"])
    now = dt.datetime.now(dt.UTC)
    used = Referral.objects.create(
        application=shop, campaign=campaign, code="USED-0001", advocate_integration_id="ann", usage_counter=1
    )
    old = Referral.objects.create(
        application=shop,
        campaign=campaign,
        code="OLD-0002",
        advocate_integration_id="ann",
        expiry_date=now - dt.timedelta(days=1),
    )
    fresh = Referral.objects.create(
        application=shop, campaign=campaign, code="FRESH-0003", advocate_integration_id="bob", usage_limit=5
    )
    management = management_api(live_server.url, *ALL)

    # when staff list them with filters, then each filter narrows as Talon.One's does
    def codes(**filters: Any) -> list[str]:
        page = management.get_referrals_without_total_count(shop.pk, campaign.pk, **filters)
        assert isinstance(page, t.InlineResponse20012)
        return [r.code for r in page.data]

    assert codes() == ["USED-0001", "OLD-0002", "FRESH-0003"]
    assert codes(advocate="ann") == ["USED-0001", "OLD-0002"]
    assert codes(usable="false") == ["USED-0001"]
    assert codes(usable="true", sort="-code") == ["OLD-0002", "FRESH-0003"]
    assert codes(valid="expired") == ["OLD-0002"]
    assert codes(valid="validNow") == ["USED-0001", "FRESH-0003"]
    assert codes(code="fresh") == ["FRESH-0003"]
    Referral.objects.filter(pk=used.pk).update(created=now - dt.timedelta(days=3))
    assert codes(created_before=now - dt.timedelta(days=1)) == ["USED-0001"]
    assert codes(created_after=now - dt.timedelta(days=1)) == ["OLD-0002", "FRESH-0003"]
    page = management.get_referrals_without_total_count(shop.pk, campaign.pk, page_size=2)
    assert page.has_more is True and len(page.data) == 2

    # when staff change a code, then the friend and dates are replaced and the limit kept when left out
    changed = management.update_referral(
        shop.pk,
        campaign.pk,
        fresh.pk,
        t.UpdateReferral(friend_profile_integration_id="carl", attributes={"tier": "gold"}),
    )
    assert changed.friend_profile_integration_id == "carl"
    assert changed.usage_limit == 5 and changed.attributes == {"tier": "gold"}

    # a limit below the uses made is refused; 0 (unlimited) is fine
    Referral.objects.filter(pk=fresh.pk).update(usage_counter=3)
    with pytest.raises(ApiException) as too_low:
        management.update_referral(shop.pk, campaign.pk, fresh.pk, t.UpdateReferral(usage_limit=2))
    assert too_low.value.status == 400
    assert "used 3 times already" in refusal(too_low)["message"]
    assert (
        management.update_referral(shop.pk, campaign.pk, used.pk, t.UpdateReferral(usage_limit=0)).usage_limit
        == 0
    )

    # when staff delete one, then it is gone, and a second delete is 404
    management.delete_referral(shop.pk, campaign.pk, old.pk)
    assert not Referral.objects.filter(pk=old.pk).exists()
    with pytest.raises(ApiException) as gone:
        management.delete_referral(shop.pk, campaign.pk, old.pk)
    assert gone.value.status == 404
    # and each change is in the admin log under the key's staff user
    logged = list(LogEntry.objects.order_by("id").values_list("user__username", "change_message"))
    assert ("referrals", "Deleted the referral code OLD-0002") in logged
    assert sum("Changed the referral code" in message for _, message in logged) == 2


def test_staff_without_permission_are_refused(live_server: Any, shop: Application) -> None:
    campaign = running_campaign(shop, "Friends", features=["referrals"])
    viewer = management_api(live_server.url, "view_referral")
    assert viewer.get_referrals_without_total_count(shop.pk, campaign.pk).data == []
    with pytest.raises(ApiException) as refused:
        viewer.import_referrals(
            shop.pk, campaign.pk, up_file="code,advocateprofileintegrationid\nABCD-1,ann\n"
        )
    assert refused.value.status == 403
    assert "coupons.add_referral" in refusal(refused)["message"]


def test_import_is_all_or_nothing_with_bad_lines_by_number(live_server: Any, shop: Application) -> None:
    campaign = running_campaign(shop, "Friends", features=["referrals"])
    Referral.objects.create(application=shop, campaign=campaign, code="TAKEN-01", advocate_integration_id="x")
    management = management_api(live_server.url, *ALL)

    # given a file with a bad date, a short code, a code taken already and a bad limit
    bad = (
        "code,advocateprofileintegrationid,startdate,expirydate,limitval,attributes\n"
        "GOOD-0001,ann,2030-01-01T00:00:00Z,,2,\n"
        "GOOD-0002,bob,yesterday,,,\n"
        "abc,carl,,,,\n"
        "taken-01,dora,,,,\n"
        "GOOD-0003,eve,,,many,\n"
    )
    # when staff import it, then nothing is imported and each bad line is named
    with pytest.raises(ApiException) as refused:
        management.import_referrals(shop.pk, campaign.pk, up_file=bad)
    assert refused.value.status == 400
    body = refusal(refused)
    assert [e["source"]["line"] for e in body["errors"]] == ["3", "4", "5", "6"]
    assert "yesterday" in body["errors"][0]["details"]
    assert "already used" in body["errors"][2]["details"]
    assert Referral.objects.count() == 1

    # given a good file (codes in the shop's case, limit defaulting to 1, attributes as JSON)
    good = (
        "code,advocateprofileintegrationid,startdate,expirydate,limitval,attributes\n"
        'good-0001,ann,2030-01-01T00:00:00Z,2031-01-01,2,"{""tier"": ""gold""}"\n'
        "GOOD-0002,bob,,,,\n"
    )
    imported = management.import_referrals(shop.pk, campaign.pk, up_file=good)
    assert isinstance(imported, t.ModelImport) and imported.amount == 2
    first = Referral.objects.get(code="GOOD-0001")
    assert (first.usage_limit, first.attributes, first.import_id) == (2, {"tier": "gold"}, imported.id)
    assert first.expiry_date == dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    assert Referral.objects.get(code="GOOD-0002").usage_limit == 1


def test_export_is_csv_safe_for_spreadsheets_and_reimports(live_server: Any, shop: Application) -> None:
    campaign = running_campaign(shop, "Friends", features=["referrals"])
    other = running_campaign(shop, "Other", features=["referrals"])
    Referral.objects.create(
        application=shop,
        campaign=campaign,
        code="=HYPERLINK(1)",
        advocate_integration_id="@ann",
        attributes={"a": 1},
    )
    Referral.objects.create(application=shop, campaign=other, code="OTHER-01", advocate_integration_id="bob")
    management = management_api(live_server.url, *ALL)

    text = management.export_referrals(shop.pk, campaign_id=campaign.pk)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["code"] for r in rows] == ["'=HYPERLINK(1)"]
    assert rows[0]["advocateprofileintegrationid"] == "'@ann"
    assert json.loads(rows[0]["attributes"]) == {"a": 1}
    assert len(list(csv.DictReader(io.StringIO(management.export_referrals(shop.pk))))) == 2

    # the export imports into another campaign unchanged (after the codes are freed)
    Referral.objects.filter(campaign=campaign).delete()
    imported = management.import_referrals(shop.pk, other.pk, up_file=text)
    assert imported.amount == 1
    assert Referral.objects.get(campaign=other, advocate_integration_id="@ann").code == "=HYPERLINK(1)"
