"""The offers Management API, as a staff tool or the shop's mobile app back end would use it."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.offers.models import GalleryImage, Offer, OfferAssignment, OfferRedemption
from patronage.testing.offers import make_image, make_offer
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

ALL = [
    "view_offer",
    "add_offer",
    "change_offer",
    "delete_offer",
    "add_offerassignment",
    "delete_offerassignment",
    "add_offerredemption",
]


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


class Staff:
    def __init__(self, *perms: str, username: str = "staff") -> None:
        user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="offers", codename__in=perms)
        )
        self.client = Client()
        self.client.force_login(user)

    def call(self, method: str, url: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, "/api/v1" + url, data=data, content_type="application/json")


@pytest.fixture
def staff() -> Staff:
    return Staff(*ALL)


@pytest.fixture
def image() -> GalleryImage:
    return make_image(title="Banner")


def new_offer(image: GalleryImage, **fields: Any) -> dict[str, Any]:
    now = clock.now()
    return {
        "systemName": "spring-sale",
        "name": "Spring sale",
        "link": "https://shop.example.com/spring",
        "offerType": "online",
        "shops": ["live-shop"],
        "startsAt": (now - dt.timedelta(days=1)).isoformat(),
        "endsAt": (now + dt.timedelta(days=30)).isoformat(),
        "linkType": "category",
        "objectId": "spring",
        "pictureId": image.pk,
        "imageSmallId": image.pk,
        "imageMediumId": image.pk,
        "imageBigId": image.pk,
        **fields,
    }


def test_staff_create_change_list_and_delete_an_offer(
    staff: Staff, live_app: Application, image: GalleryImage
) -> None:
    # When staff create an offer
    response = staff.call("POST", "/offers", new_offer(image))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["systemName"] == "spring-sale" and created["shops"] == ["live-shop"]
    assert created["environment"] == "live" and created["isPublic"] is False
    offer_id = created["id"]
    # And change only its name and sort order
    response = staff.call("PATCH", f"/offers/{offer_id}", {"name": "Big spring sale", "sortOrder": 3})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Big spring sale" and response.json()["objectId"] == "spring"
    # Then the list shows it
    listed = staff.call("GET", "/offers?environment=live").json()
    assert listed["count"] == 1 and listed["items"][0]["sortOrder"] == 3
    assert staff.call("GET", f"/offers/{offer_id}").json()["name"] == "Big spring sale"
    # When they delete it, it is gone and the image stays
    assert staff.call("DELETE", f"/offers/{offer_id}").status_code == 204
    assert staff.call("GET", f"/offers/{offer_id}").status_code == 404
    assert GalleryImage.objects.filter(pk=image.pk).exists()


def test_bad_input_points_at_each_field(staff: Staff, live_app: Application, image: GalleryImage) -> None:
    make_offer(environment="live", shops=[live_app], system_name="taken")
    response = staff.call(
        "POST", "/offers", new_offer(image, systemName="taken", shops=["nope"], imageBigId=999_999)
    )
    assert response.status_code == 400
    pointers = {e["source"]["pointer"]: e["details"] for e in response.json()["errors"]}
    assert pointers == {
        "/shops/0": "No shop 'nope' in the Live environment",
        "/imageBigId": "No gallery image 999999",
    }
    # With shops and images right, the service's checks point at JSON fields too
    response = staff.call(
        "POST",
        "/offers",
        new_offer(image, systemName="taken", link="not a url", endsAt="2000-01-01T00:00:00Z"),
    )
    assert {e["source"]["pointer"] for e in response.json()["errors"]} == {"/systemName", "/link", "/endsAt"}
    # A missing field is reported by pydantic with its pointer
    response = staff.call("POST", "/offers", {"name": "x"})
    assert response.status_code == 400
    assert "/systemName" in {e["source"]["pointer"] for e in response.json()["errors"]}


def test_emails_are_assigned_and_removed_in_bulk(staff: Staff, live_app: Application) -> None:
    offer = make_offer(environment="live", shops=[live_app], assigned_emails=["ada@example.com"])
    # When staff assign three emails, one already assigned and in another case
    response = staff.call(
        "POST",
        f"/offers/{offer.pk}/assignments",
        {"emails": ["ADA@example.com", "grace@example.com", "b@x.io"]},
    )
    assert response.json() == {"assigned": 2, "unchanged": 1}
    assert sorted(offer.assignments.values_list("email", flat=True)) == [
        "ada@example.com",
        "b@x.io",
        "grace@example.com",
    ]
    # An invalid email fails the whole request, pointing at it
    response = staff.call("POST", f"/offers/{offer.pk}/assignments", {"emails": ["ok@example.com", "nope"]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/emails/1"
    assert not OfferAssignment.objects.filter(email="ok@example.com").exists()
    # Removing counts what was there
    response = staff.call(
        "DELETE", f"/offers/{offer.pk}/assignments", {"emails": ["Ada@Example.com", "x@y.io"]}
    )
    assert response.json() == {"removed": 1, "unchanged": 1}
    # A public offer takes no emails
    public = make_offer(environment="live", shops=[live_app], is_public=True)
    response = staff.call("POST", f"/offers/{public.pk}/assignments", {"emails": ["a@example.com"]})
    assert response.status_code == 400 and "public" in response.json()["message"]


def test_the_mobile_app_lists_what_a_customer_sees_with_absolute_image_urls(
    staff: Staff, live_app: Application
) -> None:
    # Given Ada (registered with a mixed-case email) with one assigned and one public offer, and one not hers
    CustomerProfile.objects.create(
        environment=live_app.environment, integration_id="c-ada", email="Ada@Example.com"
    )
    mine = make_offer(
        environment="live",
        shops=[live_app],
        assigned_emails=["ada@example.com"],
        sort_order=2,
        object_id="shoes",
    )
    public = make_offer(environment="live", shops=[live_app], is_public=True, sort_order=1)
    make_offer(environment="live", shops=[live_app], assigned_emails=["someone@example.com"])
    # When the app asks by integration ID, and by email
    for customer in ("c-ada", "ADA@example.com"):
        response = staff.call("GET", f"/offers/visible?shop=live-shop&customer={customer}")
        assert response.status_code == 200, response.content
        offers = response.json()
        # Then it gets her two offers in sort order, with the mobile-app fields
        assert [o["id"] for o in offers] == [public.pk, mine.pk]
        assert offers[1]["objectId"] == "shoes" and offers[1]["linkType"] == "promotion_page"
        assert offers[1]["imageBigUrl"].startswith("http://testserver/media/gallery/")
        assert offers[1]["redeemed"] is False
    assert staff.call("GET", "/offers/visible?shop=live-shop&customer=ghost").status_code == 404


def test_the_shop_records_a_redemption_once(staff: Staff, live_app: Application) -> None:
    CustomerProfile.objects.create(
        environment=live_app.environment, integration_id="c-ada", email="ada@example.com"
    )
    offer = make_offer(environment="live", shops=[live_app], assigned_emails=["ada@example.com"])
    response = staff.call("POST", f"/offers/{offer.pk}/redemptions", {"customer": "ADA@example.com"})
    assert response.status_code == 201, response.content
    assert response.json()["customer"] == "c-ada" and response.json()["source"] == "api"
    assert OfferRedemption.objects.get().recorded_by is not None
    # A second time is a conflict naming the first
    again = staff.call("POST", f"/offers/{offer.pk}/redemptions", {"customer": "c-ada"})
    assert again.status_code == 409 and "already redeemed" in again.json()["message"]
    # The app sees it redeemed
    listed = staff.call("GET", "/offers/visible?shop=live-shop&customer=c-ada").json()
    assert listed[0]["redeemed"] is True
    # A date in the future is refused, pointing at it
    other = make_offer(environment="live", shops=[live_app], assigned_emails=["ada@example.com"])
    future = (clock.now() + dt.timedelta(days=1)).isoformat()
    response = staff.call(
        "POST", f"/offers/{other.pk}/redemptions", {"customer": "c-ada", "redeemedAt": future}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/redeemedAt"


def test_a_customer_the_offer_is_not_for_cannot_redeem_it(staff: Staff, live_app: Application) -> None:
    # given: a private offer assigned to Ada, and Bob, a customer of the same environment
    CustomerProfile.objects.create(
        environment=live_app.environment, integration_id="c-bob", email="bob@example.com"
    )
    offer = make_offer(environment="live", shops=[live_app], assigned_emails=["ada@example.com"])

    # when: the shop records a redemption by Bob
    response = staff.call("POST", f"/offers/{offer.pk}/redemptions", {"customer": "c-bob"})

    # then: refused in the usual error body, pointing at the customer; nothing recorded
    assert response.status_code == 400, response.content
    body = response.json()
    assert "is not for bob@example.com" in body["message"]
    assert body["errors"][0]["source"]["pointer"] == "/customer"
    assert not OfferRedemption.objects.exists()


ROUNDS = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_patches_of_different_fields_at_once_both_stay(live_app: Application) -> None:
    # given: one offer and two API clients, each on its own connection
    offer = make_offer(environment="live", shops=[live_app], name="Spring sale", sort_order=0)
    clients = [Staff(*ALL), Staff(*ALL, username="script")]

    def run(i: int, body: dict[str, Any], barrier: threading.Barrier, statuses: list[Any]) -> None:
        try:
            barrier.wait(timeout=10)
            statuses[i] = clients[i].call("PATCH", f"/offers/{offer.pk}", body).status_code
        except Exception as exc:  # reported below
            statuses[i] = exc
        finally:
            connection.close()

    for n in range(ROUNDS):
        barrier = threading.Barrier(2)
        statuses: list[Any] = [None, None]
        bodies = [{"name": f"Spring sale {n}"}, {"sortOrder": n + 1}]

        # when: both change their own field of the offer at the same instant
        threads = [threading.Thread(target=run, args=(i, bodies[i], barrier, statuses)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        # then: both changes survive
        assert statuses == [200, 200]
        offer.refresh_from_db()
        assert (offer.name, offer.sort_order) == (f"Spring sale {n}", n + 1), f"round {n}"


def test_staff_need_the_permissions(live_app: Application) -> None:
    viewer = Staff("view_offer")
    offer = make_offer(environment="live", shops=[live_app])
    assert viewer.call("GET", "/offers").status_code == 200
    response = viewer.call("DELETE", f"/offers/{offer.pk}")
    assert response.status_code == 403
    assert response.json()["message"] == "Your account lacks the permission offers.delete_offer"
    assert Offer.objects.filter(pk=offer.pk).exists()
    assert Client().get("/api/v1/offers").status_code == 401
