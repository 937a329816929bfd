"""The account page: a customer edits their own details and password."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from patronage.core import clock
from patronage.customers.accounts import account_set_password
from patronage.customers.models import CustomerProfile
from patronage.workspace.models import Application

from .conftest import PASSWORD, make_customer

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "walnut-lantern-77"


def url(shop: Application, page: str = "") -> str:
    return f"/panel/{shop.slug}/{page}"


def signed_in_client(shop: Application, email: str = "anna@example.com") -> Client:
    client = Client()
    response = client.post(url(shop, "login/"), {"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def edit(client: Client, shop: Application, **fields: Any) -> Any:
    return client.post(url(shop, "account/"), fields, follow=True)


def test_the_account_page_shows_the_customer_details(shop: Application, anna: CustomerProfile) -> None:
    client = signed_in_client(shop)
    response = client.get(url(shop))
    assert response.status_code == 302 and response["Location"] == url(shop, "offers/")
    response = client.get(url(shop, "account/"))
    page = response.content.decode()
    for shown in ["Anna Nowak", "anna@example.com", "+1 415-555-0123", "Not subscribed", "Sign out"]:
        assert shown in page
    # And personal pages are never cached
    assert "no-store" in response["Cache-Control"]


def test_a_bad_phone_is_refused_on_its_field(shop: Application, anna: CustomerProfile) -> None:
    client = signed_in_client(shop)
    # When Anna types a number that cannot be a phone number
    response = edit(client, shop, name="Anna Kowalska", phone="12345", accepts_marketing="on")
    # Then the phone field says so and shows what she typed, and nothing is saved
    page = response.content.decode()
    assert "This is not a valid phone number." in page
    assert 'value="12345"' in page
    assert 'aria-invalid="true"' in page
    anna.refresh_from_db()
    assert (anna.name, anna.phone, anna.accepts_marketing) == ("Anna Nowak", "+14155550123", False)


def test_edits_are_saved_with_the_phone_in_e164(shop: Application, anna: CustomerProfile) -> None:
    client = signed_in_client(shop)
    later = clock.now() + dt.timedelta(hours=1)
    # When Anna changes her name, types her phone her own way and subscribes
    with clock.frozen_at(later):
        response = edit(
            client, shop, name="  Anna   Kowalska ", phone="(212) 555-0188", accepts_marketing="on"
        )
    # Then she is told, and sees her new details
    assert response.redirect_chain == [(url(shop, "account/"), 302)]
    page = response.content.decode()
    assert "Your details have been saved." in page
    assert "Anna Kowalska" in page and "+1 212-555-0188" in page and "Subscribed" in page
    # And the phone is stored in E.164, the activity time moved
    anna.refresh_from_db()
    assert (anna.name, anna.phone, anna.accepts_marketing) == ("Anna Kowalska", "+12125550188", True)
    assert anna.last_activity == later


def test_clearing_the_phone_and_unsubscribing(shop: Application, anna: CustomerProfile) -> None:
    anna.accepts_marketing = True
    anna.save(update_fields=["accepts_marketing"])
    client = signed_in_client(shop)
    edit(client, shop, name="Anna Nowak", phone="")
    anna.refresh_from_db()
    assert (anna.phone, anna.accepts_marketing) == ("", False)


def test_edits_leave_other_attributes_alone(shop: Application, anna: CustomerProfile) -> None:
    # Given attributes the shop sends through the API
    anna.attributes = {"ShoeSize": 38}
    anna.tax_exempt = True
    anna.save(update_fields=["attributes", "tax_exempt"])
    client = signed_in_client(shop)
    edit(client, shop, name="Anna", phone="")
    anna.refresh_from_db()
    assert anna.attributes == {"ShoeSize": 38} and anna.tax_exempt and anna.email == "anna@example.com"


def test_changing_the_password_signs_out_other_devices(shop: Application, anna: CustomerProfile) -> None:
    # Given Anna signed in on her phone and on a laptop
    phone, laptop = signed_in_client(shop), signed_in_client(shop)
    # When she changes her password on the laptop, getting the current one wrong first
    page = laptop.post(
        url(shop, "account/password/"),
        {"current_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    ).content.decode()
    assert "Your current password is not correct." in page
    response = laptop.post(
        url(shop, "account/password/"),
        {"current_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    # Then the laptop stays signed in and says so
    assert response.redirect_chain == [(url(shop, "account/"), 302)]
    assert "Other devices are signed out." in response.content.decode()
    assert laptop.get(url(shop, "account/")).status_code == 200
    # And the phone is signed out
    assert phone.get(url(shop, "account/"))["Location"].startswith(url(shop, "login/"))


def test_a_reset_password_signs_out_other_devices(shop: Application, anna: CustomerProfile) -> None:
    # Given Anna signed in on her phone
    phone = signed_in_client(shop)
    # When she sets a new password through a reset link on another device
    account_set_password(profile=anna, password=NEW_PASSWORD, confirmation=NEW_PASSWORD, login=True)
    # Then the phone's session no longer opens her account
    assert phone.get(url(shop, "account/")).status_code == 302


def test_another_customer_in_the_same_browser_replaces_the_first(
    shop: Application, anna: CustomerProfile
) -> None:
    make_customer(shop.environment, email="ben@example.com", Name="Ben Adams")
    client = signed_in_client(shop)
    client.post(url(shop, "logout/"))
    client.post(url(shop, "login/"), {"email": "ben@example.com", "password": PASSWORD})
    page = client.get(url(shop, "account/")).content.decode()
    assert "Ben Adams" in page and "Anna" not in page
