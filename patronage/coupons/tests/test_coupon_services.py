"""Coupon services: creating from a pattern, personal codes, updates, deletes and the list filters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import running_campaign
from patronage.core import clock
from patronage.core.errors import Conflict, ValidationFailed
from patronage.coupons.models import Coupon
from patronage.coupons.selectors import CouponFilters, coupons_filtered
from patronage.coupons.services import (
    coupon_delete,
    coupon_update,
    coupons_create,
    coupons_delete,
    coupons_for_recipients,
    coupons_update_batch,
)
from patronage.promocodes.services import promo_code_group_create, promo_codes_upload
from patronage.workspace.models import Application, CodeCase

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(live_app: Application) -> Campaign:
    return running_campaign(live_app, "Spring coupons")


def test_coupons_from_a_pattern_share_a_batch_and_keep_the_fixed_characters(campaign: Campaign) -> None:
    # when: 200 coupons are made from SPRING-#### with dates and a limit
    expiry = clock.now() + dt.timedelta(days=30)
    made = coupons_create(
        campaign=campaign,
        count=200,
        pattern="SPRING-####",
        usage_limit=3,
        expiry_date=expiry,
        attributes={"channel": "print"},
    )
    # then: 200 distinct codes of the pattern, one batch, the settings on each
    values = [c.value for c in made]
    assert len(values) == len(set(values)) == 200
    assert all(v.startswith("SPRING-") and len(v) == 11 for v in values)
    assert len({c.batch_id for c in made}) == 1 and made[0].batch_id
    assert {(c.usage_limit, c.expiry_date, c.attributes["channel"]) for c in made} == {(3, expiry, "print")}


def test_codes_are_stored_in_the_applications_case(live_app: Application) -> None:
    # given: an application whose codes are stored in lower case
    live_app.coupon_code_case = CodeCase.LOWER
    live_app.save()
    campaign = running_campaign(live_app, "Lower")
    # when: codes come from an upper-case pattern and alphabet
    made = coupons_create(campaign=campaign, count=20, pattern="VIP-####", alphabet="ABCDEFGH")
    # then: they are kept in lower case
    assert all(c.value == c.value.lower() and c.value.startswith("vip-") for c in made)


def test_a_pattern_too_small_for_the_count_or_too_short_is_refused(campaign: Campaign) -> None:
    with pytest.raises(ValidationFailed, match=r"needs? at least"):
        coupons_create(campaign=campaign, count=100, pattern="AB-##", alphabet="0123456789")
    with pytest.raises(ValidationFailed, match="4 to 100"):
        coupons_create(campaign=campaign, count=1, pattern="A#")
    with pytest.raises(ValidationFailed, match="between 1 and 20,000"):
        coupons_create(campaign=campaign, count=20_001, pattern="#" * 12)
    with pytest.raises(ValidationFailed, match="usage limit"):
        coupons_create(campaign=campaign, count=1, pattern="######", usage_limit=1_000_000)
    assert not Coupon.objects.exists()


def test_generation_never_reuses_a_coupon_or_a_promo_code_of_the_application(campaign: Campaign) -> None:
    # given: a pattern with 1,000 possible codes, 80 of them already coupons and 20 promo codes
    alphabet = "0123456789"
    existing = coupons_create(campaign=campaign, count=80, pattern="X###", alphabet=alphabet)
    group, _ = promo_code_group_create(environment=campaign.application.environment, name="Mailing")
    promo = [f"X{n:03d}" for n in range(0, 1000, 50)]
    promo_codes_upload(group=group, lines=promo)
    # when: 20 more are made from the same pattern
    more = coupons_create(campaign=campaign, count=20, pattern="X###", alphabet=alphabet)
    # then: none of them repeats a coupon or a promo code
    taken = {c.value for c in existing} | set(promo)
    assert len(more) == 20 and not {c.value for c in more} & taken


def test_personal_codes_one_per_recipient_in_their_order(campaign: Campaign) -> None:
    made = coupons_for_recipients(
        campaign=campaign, recipients=["cust-2", "cust-1", "cust-2", "cust-3"], pattern="ME-#####"
    )
    assert [c.recipient_integration_id for c in made] == ["cust-2", "cust-1", "cust-3"]
    assert all(c.value.startswith("ME-") and c.reservation is False for c in made)
    with pytest.raises(ValidationFailed, match="At most 1,000"):
        coupons_for_recipients(campaign=campaign, recipients=[f"c{n}" for n in range(1001)])


def test_update_replaces_fields_and_refuses_a_limit_below_the_uses(campaign: Campaign) -> None:
    (coupon,) = coupons_create(
        campaign=campaign, count=1, pattern="ONE-#####", recipient_integration_id="cust-1", usage_limit=5
    )
    Coupon.objects.filter(pk=coupon.pk).update(usage_counter=3)
    # when: staff change the limit and clear the recipient
    changed = coupon_update(
        coupon=coupon, data={"usage_limit": 4, "recipient_integration_id": None, "attributes": {"a": 1}}
    )
    # then: the new values are kept and the code is no longer personal
    changed.refresh_from_db()
    assert (changed.usage_limit, changed.recipient_integration_id, changed.reservation) == (4, "", True)
    assert changed.attributes == {"a": 1}
    # and: a limit below the 3 uses is refused, unlimited is fine
    with pytest.raises(Conflict, match="already used 3 times"):
        coupon_update(coupon=changed, data={"usage_limit": 2})
    assert coupon_update(coupon=changed, data={"usage_limit": 0}).usage_limit == 0
    with pytest.raises(ValidationFailed, match="after the start"):
        coupon_update(
            coupon=changed,
            data={"start_date": clock.now(), "expiry_date": clock.now() - dt.timedelta(days=1)},
        )


def test_batch_update_changes_only_that_batch(campaign: Campaign) -> None:
    first = coupons_create(campaign=campaign, count=5, pattern="A-#####")
    second = coupons_create(campaign=campaign, count=3, pattern="B-#####")
    expiry = clock.now() + dt.timedelta(days=7)
    changed = coupons_update_batch(
        campaign=campaign,
        batch_id=second[0].batch_id,
        data={"usage_limit": 9, "expiry_date": expiry, "discount_limit": Decimal("25")},
    )
    assert changed == 3
    assert set(
        Coupon.objects.filter(batch_id=second[0].batch_id).values_list("usage_limit", "expiry_date")
    ) == {(9, expiry)}
    assert set(Coupon.objects.filter(batch_id=first[0].batch_id).values_list("usage_limit", flat=True)) == {1}


def test_filters_and_bulk_delete_by_filter(campaign: Campaign) -> None:
    now = clock.now()
    used = coupons_create(campaign=campaign, count=4, pattern="USED-#####", usage_limit=2)
    Coupon.objects.filter(pk__in=[c.pk for c in used[:2]]).update(usage_counter=2)
    Coupon.objects.filter(pk=used[2].pk).update(usage_counter=1)
    expired = coupons_create(
        campaign=campaign, count=2, pattern="OLD-#####", expiry_date=now - dt.timedelta(days=1)
    )
    future = coupons_create(
        campaign=campaign, count=3, pattern="NEW-#####", start_date=now + dt.timedelta(days=1)
    )
    mine = coupons_for_recipients(campaign=campaign, recipients=["cust-9"], pattern="MY-#####")

    def count(**filters: object) -> int:
        return coupons_filtered(campaign=campaign, filters=CouponFilters(**filters)).count()  # type: ignore[arg-type]

    assert count() == 10
    assert count(usable=False) == 2 and count(usable=True) == 8
    assert count(redeemed=True) == 3
    assert count(valid="expired") == 2 and count(valid="validFuture") == 3 and count(valid="validNow") == 5
    assert count(recipient_integration_id="cust-9") == 1
    assert count(value="old-") == 2 and count(value=mine[0].value.lower(), exact_match=True) == 1
    assert count(batch_id=future[0].batch_id) == 3
    assert count(expires_before=now) == 2 and count(starts_after=now) == 3
    # when: the used-up coupons are deleted by filter
    assert coupons_delete(campaign=campaign, filters=CouponFilters(usable=False)) == 2
    # then: only they are gone
    assert count() == 8 and count(usable=False) == 0
    coupon_delete(coupon=expired[0])
    assert count(valid="expired") == 1
