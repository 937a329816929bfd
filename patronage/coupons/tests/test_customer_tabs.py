"""The customer page's Coupons, Referred customers and Sessions tabs (seed 004), and Return items: a real
return through the Integration API's service, telling what it rolled back."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.campaigns.models import Campaign
from patronage.campaigns.tests.helpers import rule, running_campaign
from patronage.core import clock
from patronage.customer_sessions.models import CartItem, CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient
from patronage.workspace.models import Application

from ..models import Coupon, CouponReservation, Redemption, Referral

pytestmark = pytest.mark.django_db

ALWAYS = ["and", True]
CART = [
    {"name": "Mug", "sku": "MUG", "quantity": 2, "price": 10},
    {"name": "Beans", "sku": "BEAN", "quantity": 3, "price": 30},
]


def put(api: IntegrationClient, session_id: str, **session: Any) -> dict[str, Any]:
    response = api.session(session_id, **session)
    assert response.status_code == 200, response.content
    return response.json()


def summer(application: Application) -> Campaign:
    """5.00 off every cart line: a per-item discount a return rolls back."""
    return running_campaign(
        application,
        "Summer",
        rule(
            "Summer 10%",
            ALWAYS,
            ["setDiscountPerItem", "Summer 10%", [".", "Session", "CartItems"], ["Item"], 5],
        ),
    )


def change_url(profile: CustomerProfile) -> str:
    return f"/admin/customers/customerprofile/{profile.pk}/change/"


def return_url(session: CustomerSession) -> str:
    return f"/admin/customer_sessions/customersession/{session.pk}/return/"


def staff(*perms: str) -> Client:
    user = get_user_model().objects.create_user("agent", password="pw-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_customerprofile", *perms]))
    client = Client()
    client.force_login(user)
    return client


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</table>", start)]


def cells(html: str, css_class: str) -> list[str]:
    found = re.findall(rf'<td class="[^"]*\b{css_class}\b[^"]*">(.*?)</td>', html, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in found]


def redeem(coupon: Coupon, session: CustomerSession, *, rolled_back: bool = False) -> Redemption:
    return Redemption.objects.create(
        application=coupon.application,
        kind=Redemption.Kind.COUPON,
        coupon=coupon,
        campaign=coupon.campaign,
        code=coupon.value,
        session=session,
        profile=session.profile,
        rolled_back_at=clock.now() if rolled_back else None,
    )


@pytest.fixture
def ada(api: IntegrationClient, live_app: Application) -> CustomerProfile:
    summer(live_app)
    put(api, "s-open", profileId="ada", cartItems=CART[:1])
    put(api, "s-closed", profileId="ada", cartItems=CART, state="closed")
    return CustomerProfile.objects.get(integration_id="ada")


# --- Coupons ------------------------------------------------------------------------------------------------


def test_the_coupons_tab_lists_personal_reserved_and_redeemed_coupons_with_their_status(
    admin_client: Client, ada: CustomerProfile, live_app: Application
) -> None:
    # given a personal coupon, a reserved one, one redeemed in a session, an expired and a future one,
    # and a coupon of somebody else
    campaign = Campaign.objects.get(name="Summer")
    now = clock.now()
    make = Coupon.objects.create
    personal = make(
        application=live_app,
        campaign=campaign,
        value="SAVE10",
        recipient_integration_id="ada",
        attributes={"tier": "gold"},
        usage_limit=0,
    )
    reserved = make(application=live_app, campaign=campaign, value="HELD-1", usage_limit=5, usage_counter=2)
    CouponReservation.objects.create(coupon=reserved, profile=ada)
    used = make(application=live_app, campaign=campaign, value="USED-1", usage_counter=1)
    redeem(used, CustomerSession.objects.get(integration_id="s-closed"))
    make(
        application=live_app,
        campaign=campaign,
        value="OLD-1",
        recipient_integration_id="ada",
        expiry_date=now - dt.timedelta(days=1),
    )
    make(
        application=live_app,
        campaign=campaign,
        value="SOON-1",
        recipient_integration_id="ada",
        start_date=now + dt.timedelta(days=3),
    )
    make(application=live_app, campaign=campaign, value="BOBS-1", recipient_integration_id="bob")

    # when staff open the customer page
    html = admin_client.get(change_url(ada)).content.decode()

    # then the Coupons tab lists the customer's five coupons, each with its status
    table = section(html, "customer-coupons")
    assert re.findall(r'data-coupon="([^"]+)"', table) == ["SOON-1", "OLD-1", "USED-1", "HELD-1", "SAVE10"]
    assert cells(table, "status") == ["pending", "expired", "used", "active", "active"]
    # and the redemptions as used / limit (unlimited reads ∞), the session that used it, the attributes
    assert cells(table, "usage") == ["0 / 1", "0 / 1", "1 / 1", "2 / 5", "0 / ∞"]
    assert cells(table, "sessions")[2] == "s-closed"
    assert f"/admin/customer_sessions/customersession/{used.redemptions.get().session_id}/change/" in table
    assert "tier: gold" in cells(table, "attributes")[4]
    assert f"/admin/campaigns/campaign/{campaign.pk}/change/" in table
    assert cells(table, "coupon") == [
        "SOON-1 Personal",
        "OLD-1 Personal",
        "USED-1 Redeemed",
        "HELD-1 Reserved",
        "SAVE10 Personal",
    ]
    assert personal.value in table and "BOBS-1" not in table


def test_a_coupon_of_a_disabled_campaign_reads_disabled_and_a_rolled_back_use_is_marked(
    admin_client: Client, ada: CustomerProfile, live_app: Application
) -> None:
    stopped = running_campaign(live_app, "Stopped", rule("x", ALWAYS), state="disabled")
    Coupon.objects.create(
        application=live_app, campaign=stopped, value="OFF-1", recipient_integration_id="ada"
    )
    campaign = Campaign.objects.get(name="Summer")
    given_back = Coupon.objects.create(application=live_app, campaign=campaign, value="BACK-1")
    redeem(given_back, CustomerSession.objects.get(integration_id="s-closed"), rolled_back=True)

    table = section(admin_client.get(change_url(ada)).content.decode(), "customer-coupons")

    assert cells(table, "status") == ["active", "disabled"]
    assert cells(table, "sessions")[0] == "s-closed (rolled back)"


def test_a_customer_without_coupons_reads_so(admin_client: Client, ada: CustomerProfile) -> None:
    html = admin_client.get(change_url(ada)).content.decode()
    assert "This customer has no coupons" in section(html, "customer-coupons")


# --- Referred customers -------------------------------------------------------------------------------------


def test_the_referred_customers_tab_lists_the_friends_who_used_the_advocates_codes(
    admin_client: Client, api: IntegrationClient, ada: CustomerProfile, live_app: Application
) -> None:
    # given two friends who used Ada's code, one of them cancelled since, and a code of somebody else
    campaign = Campaign.objects.get(name="Summer")
    code = Referral.objects.create(
        application=live_app,
        campaign=campaign,
        code="ADA-FRIENDS",
        advocate_integration_id="ada",
        usage_limit=0,
    )
    other = Referral.objects.create(
        application=live_app, campaign=campaign, code="EVE-FRIENDS", advocate_integration_id="eve"
    )
    for friend, session_id, referral, rolled_back in [
        ("bob", "b1", code, False),
        ("cyd", "c1", code, True),
        ("dan", "d1", other, False),
    ]:
        put(api, session_id, profileId=friend, cartItems=CART[:1], state="closed")
        session = CustomerSession.objects.get(integration_id=session_id)
        Redemption.objects.create(
            application=live_app,
            kind=Redemption.Kind.REFERRAL,
            referral=referral,
            campaign=campaign,
            code=referral.code,
            session=session,
            profile=session.profile,
            rolled_back_at=clock.now() if rolled_back else None,
        )

    # when staff open Ada's page
    html = admin_client.get(change_url(ada)).content.decode()

    # then her tab lists bob and cyd (newest first), cyd's use marked rolled back, each linked
    table = section(html, "referred-customers")
    assert cells(table, "friend") == ["cyd", "bob"]
    assert cells(table, "session") == ["c1", "b1"]
    assert cells(table, "code")[0].startswith("ADA-FRIENDS (rolled back")
    assert cells(table, "code")[1] == "ADA-FRIENDS"
    bob = CustomerProfile.objects.get(integration_id="bob")
    assert change_url(bob) in table
    assert "dan" not in table


# --- Sessions -----------------------------------------------------------------------------------------------


def test_the_sessions_tab_lists_every_session_with_items_coupons_and_a_return_action(
    admin_client: Client, api: IntegrationClient, ada: CustomerProfile
) -> None:
    put(api, "s-cancelled", profileId="ada", cartItems=CART[:1], state="closed")
    put(api, "s-cancelled", state="cancelled")
    CustomerSession.objects.filter(integration_id="s-closed").update(
        coupon_codes=["SAVE10"], referral_code="FRIEND-1"
    )

    table = section(admin_client.get(change_url(ada)).content.decode(), "customer-sessions-table")

    assert cells(table, "session") == ["s-cancelled", "s-closed", "s-open"]
    assert cells(table, "state") == ["Cancelled", "Closed", "Open"]
    assert cells(table, "items") == ["2", "5", "2"]
    assert cells(table, "returned") == ["0", "0", "0"]
    assert cells(table, "coupons") == ["—", "SAVE10", "—"]
    assert cells(table, "referral") == ["—", "FRIEND-1", "—"]
    # only the closed order can return items
    assert cells(table, "return") == ["—", "Return items", "—"]
    closed = CustomerSession.objects.get(integration_id="s-closed")
    assert return_url(closed) in table


def test_the_sessions_tab_pages_and_filters_by_state(
    admin_client: Client, live_app: Application, ada: CustomerProfile
) -> None:
    # given 25 more orders: 27 sessions in all
    profile_sessions = [
        CustomerSession(
            application=live_app,
            integration_id=f"bulk-{n:02}",
            profile=ada,
            profile_integration_id="ada",
            state="closed",
            created=clock.now() - dt.timedelta(days=1, minutes=n),
        )
        for n in range(25)
    ]
    CustomerSession.objects.bulk_create(profile_sessions)

    # when staff open the tab, its second page, and the open sessions only
    first = section(admin_client.get(change_url(ada)).content.decode(), "customer-sessions-table")
    page_two = admin_client.get(change_url(ada) + "?sessions_page=2").content.decode()
    open_only = admin_client.get(change_url(ada) + "?sessions_state=open").content.decode()

    # then 20 a page, newest first, and the filter keeps what is in that state
    assert len(cells(first, "session")) == 20
    assert cells(section(page_two, "customer-sessions-table"), "session") == [
        f"bulk-{n:02}" for n in range(18, 25)
    ]
    assert "Page 2 of 2 (27 sessions)" in page_two
    assert cells(section(open_only, "customer-sessions-table"), "session") == ["s-open"]


def test_staff_who_may_only_view_sessions_get_no_return_action(
    api: IntegrationClient, ada: CustomerProfile
) -> None:
    client = staff("view_customersession")
    table = section(client.get(change_url(ada)).content.decode(), "customer-sessions-table")
    assert cells(table, "return") == ["—", "—"]
    closed = CustomerSession.objects.get(integration_id="s-closed")
    assert client.get(return_url(closed)).status_code == 403


# --- Return items -------------------------------------------------------------------------------------------


def test_return_items_asks_for_confirmation_returns_and_tells_what_was_rolled_back(
    admin_client: Client, ada: CustomerProfile
) -> None:
    closed = CustomerSession.objects.get(integration_id="s-closed")
    url = return_url(closed)
    # given the return page: a quantity per line, up to what is left
    form = admin_client.get(url).content.decode()
    assert 'name="qty-0"' in form and 'max="2"' in form and 'max="3"' in form

    # when one unit of line 2 is chosen: a confirmation step, nothing returned yet
    review = admin_client.post(url, {"step": "review", "qty-0": "0", "qty-1": "1"}).content.decode()
    assert "Return these items?" in review
    assert "1 \u00d7 Beans (line 2, BEAN)" in review
    assert CartItem.objects.get(session=closed, position=1).returned_quantity == 0

    # when confirmed
    done = admin_client.post(url, {"step": "confirm", "qty-1": "1"}, follow=True)

    # then the return happened, like the API's, and the page says what it rolled back
    closed.refresh_from_db()
    assert closed.state == "partially_returned"
    assert CartItem.objects.get(session=closed, position=1).returned_quantity == 1
    said = [str(m) for m in done.context["messages"]]
    assert said == [
        "Returned 1 of line 2 (Beans) of session s-closed.",
        "Campaign “Summer”: discount “Summer 10%” of USD 1.67 on line 2 (Beans) rolled back.",
    ]
    page = done.content.decode()
    assert "of 2" in page  # two beans left to return
    assert "USD 30.00" in page
    assert LogEntry.objects.get(object_id=str(closed.pk)).change_message == "Returned 1 of line 2 (Beans)"

    # and the Sessions tab counts the returned unit
    table = section(admin_client.get(change_url(ada)).content.decode(), "customer-sessions-table")
    assert cells(table, "returned")[0] == "1" and cells(table, "items")[0] == "4"
    assert cells(table, "state")[0] == "Partially returned"


def test_return_items_refuses_more_than_is_left_in_words(admin_client: Client, ada: CustomerProfile) -> None:
    closed = CustomerSession.objects.get(integration_id="s-closed")
    html = admin_client.post(
        return_url(closed), {"step": "review", "qty-0": "3", "qty-1": "x"}
    ).content.decode()
    assert "Line 1 (Mug): between 0 and 2 can be returned, not 3." in html
    assert "Line 2: “x” is not a whole number." in html
    nothing = admin_client.post(return_url(closed), {"step": "confirm", "qty-0": "0"}).content.decode()
    assert "Type how many to return on at least one line." in nothing
    assert not CartItem.objects.filter(session=closed, returned_quantity__gt=0).exists()


def test_an_open_session_cannot_return_items(admin_client: Client, ada: CustomerProfile) -> None:
    open_session = CustomerSession.objects.get(integration_id="s-open")
    html = admin_client.get(return_url(open_session)).content.decode()
    assert "Only closed or partially returned sessions can return items" in html
    response = admin_client.post(return_url(open_session), {"step": "confirm", "qty-0": "1"})
    assert response.status_code == 200
    assert CartItem.objects.get(session=open_session).returned_quantity == 0


def test_the_tabs_cost_the_same_queries_for_many_coupons_friends_and_sessions(
    admin_client: Client, api: IntegrationClient, ada: CustomerProfile, live_app: Application
) -> None:
    campaign = Campaign.objects.get(name="Summer")
    session = CustomerSession.objects.get(integration_id="s-closed")
    referral = Referral.objects.create(
        application=live_app, campaign=campaign, code="ADA-CODE", advocate_integration_id="ada", usage_limit=0
    )

    def add(count: int, start: int) -> None:
        for n in range(start, start + count):
            redeem(Coupon.objects.create(application=live_app, campaign=campaign, value=f"C-{n:03}"), session)
            Redemption.objects.create(
                application=live_app,
                kind=Redemption.Kind.REFERRAL,
                referral=referral,
                campaign=campaign,
                code="ADA-CODE",
                session=session,
                profile=ada,
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(change_url(ada)).status_code == 200
        return len(captured)

    # given a few coupons and friends, then ten times as many
    add(3, 0)
    few = queries()
    add(27, 3)
    # then the page asks the database as often
    assert queries() == few
