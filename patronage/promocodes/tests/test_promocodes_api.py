"""The promo codes Management API, as a staff tool or a shop's checkout back end would use it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import PromoCode
from patronage.promocodes.services import promo_code_group_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db


class Staff:
    def __init__(self, *perms: str) -> None:
        user = get_user_model().objects.create_user("staff", password="pw-123456", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="promocodes", codename__in=perms)
        )
        self.client = Client()
        self.client.force_login(user)

    def call(self, method: str, url: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
        return self.client.generic(method, "/api/v1" + url, data=data, content_type=content_type)


@pytest.fixture
def staff() -> Staff:
    return Staff("view_promocodegroup", "add_promocode", "change_promocode")


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


def test_groups_are_listed_with_their_counts(staff: Staff, live: Environment) -> None:
    promo_code_group_create(environment=live, name="Gifts", codes=["A", "B", "C"])
    promo_code_group_create(environment=live, name="Empty")
    promo_code_group_create(environment=environment_get(Environment.SANDBOX), name="Elsewhere")
    ann = CustomerProfile.objects.create(environment=live, integration_id="ann")
    PromoCode.objects.filter(code__in=["A", "B"]).update(issued_to=ann, issued_at=clock.now())
    PromoCode.objects.filter(code="A").update(redeemed_at=clock.now(), redeemed_by=ann)
    response = staff.call("GET", "/promocode-groups")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(g["name"], g["total"], g["active"], g["issued"], g["redeemed"]) for g in items] == [
        ("Empty", 0, 0, 0, 0),
        ("Gifts", 3, 1, 2, 1),
    ]


def test_upload_as_json_reports_problems_by_position(staff: Staff, live: Environment) -> None:
    group, _ = promo_code_group_create(environment=live, name="Gifts", codes=["OLD"])
    response = staff.call(
        "POST", f"/promocode-groups/{group.pk}/codes", {"codes": ["NEW1", "OLD", "bad code", " "]}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["added"], body["duplicates"], body["invalid"]) == (1, 1, 1)
    assert [(p["line"], p["title"]) for p in body["problems"]] == [(2, "Duplicate code"), (3, "Invalid code")]


def test_upload_as_plain_text_one_code_per_line(staff: Staff, live: Environment) -> None:
    group, _ = promo_code_group_create(environment=live, name="Gifts")
    response = staff.call(
        "POST", f"/promocode-groups/{group.pk}/codes", "A1\r\n\r\n  B2  \nA1\n", content_type="text/plain"
    )
    assert response.status_code == 200
    assert response.json()["added"] == 2
    assert response.json()["problems"][0]["details"] == "Line 4: A1 repeats line 1; skipped"
    assert list(PromoCode.objects.order_by("id").values_list("code", flat=True)) == ["A1", "B2"]


def test_upload_needs_a_known_group_a_codes_list_and_the_permission(staff: Staff, live: Environment) -> None:
    assert staff.call("POST", "/promocode-groups/999/codes", {"codes": ["A"]}).status_code == 404
    group, _ = promo_code_group_create(environment=live, name="Gifts")
    assert staff.call("POST", f"/promocode-groups/{group.pk}/codes", {"code": "A"}).status_code == 400
    viewer = Staff.__new__(Staff)
    user = get_user_model().objects.create_user("viewer", is_staff=True)
    viewer.client = Client()
    viewer.client.force_login(user)
    assert viewer.call("POST", f"/promocode-groups/{group.pk}/codes", {"codes": ["A"]}).status_code == 403
    assert not PromoCode.objects.exists()


def test_redeem_once_then_409_saying_when(staff: Staff, live: Environment) -> None:
    promo_code_group_create(environment=live, name="Gifts", codes=["GIFT1", "GIFT2"])
    ann = CustomerProfile.objects.create(environment=live, integration_id="ann", email="ann@example.com")
    CustomerProfile.objects.create(environment=live, integration_id="bob", email="bob@example.com")
    PromoCode.objects.filter(code="GIFT1").update(issued_to=ann, issued_at=clock.now())
    # Bob cannot use Ann's code; nobody can use a code not issued yet
    response = staff.call("POST", "/promocodes/redeem", {"code": "GIFT1", "customer": "bob"})
    assert response.status_code == 409 and "another customer" in response.json()["message"]
    response = staff.call("POST", "/promocodes/redeem", {"code": "GIFT2", "customer": "ann"})
    assert response.status_code == 409 and "not issued" in response.json()["message"]
    # Ann, named by her email, can, once
    response = staff.call("POST", "/promocodes/redeem", {"code": "GIFT1", "customer": "ANN@example.com"})
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["group"], body["customer"]) == ("GIFT1", "Gifts", "ann")
    again = staff.call("POST", "/promocodes/redeem", {"code": "GIFT1", "customer": "ann"})
    assert again.status_code == 409
    used = PromoCode.objects.get(code="GIFT1").redeemed_at
    assert f"already used on {used:%Y-%m-%d %H:%M:%S} UTC" in again.json()["message"]


def test_redeem_unknown_code_or_customer_is_404(staff: Staff, live: Environment) -> None:
    promo_code_group_create(environment=live, name="Gifts", codes=["GIFT1"])
    CustomerProfile.objects.create(environment=live, integration_id="ann")
    assert staff.call("POST", "/promocodes/redeem", {"code": "NOPE", "customer": "ann"}).status_code == 404
    assert staff.call("POST", "/promocodes/redeem", {"code": "GIFT1", "customer": "zed"}).status_code == 404
