from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from patronage.workspace.models import Application, Environment

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    return client


def _form(**fields: Any) -> dict[str, Any]:
    """The application form as the back office posts it (with the empty API key inline)."""
    return {
        "name": "Main store",
        "slug": "main-store",
        "environment": Environment.objects.get(slug="live").pk,
        "currency": "EUR",
        "time_zone": "Europe/Warsaw",
        "description": "",
        "default_discount_scope": "sessionTotal",
        "coupon_code_case": "insensitive-uppercase",
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
        **fields,
    }


def test_a_shop_is_created_from_the_back_office(staff: Client) -> None:
    response = staff.post("/admin/workspace/application/add/", _form())
    assert response.status_code == 302, response.content[:2000]
    assert Application.objects.get(slug="main-store").environment.slug == "live"


def test_bad_currency_and_time_zone_are_shown_on_the_fields(staff: Client) -> None:
    response = staff.post("/admin/workspace/application/add/", _form(currency="EU1", time_zone="Mars/Base"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["currency"] == ["Use an ISO 4217 code such as USD or EUR."]
    assert errors["time_zone"] == ["'Mars/Base' is not a known IANA time zone (e.g. Europe/Warsaw)"]


def test_a_shop_cannot_move_to_the_other_environment(staff: Client, live_app: Application) -> None:
    sandbox = Environment.objects.get(slug="sandbox")
    assert staff.get(f"/admin/workspace/application/{live_app.pk}/change/").status_code == 200
    staff.post(
        f"/admin/workspace/application/{live_app.pk}/change/",
        _form(name="Renamed", environment=sandbox.pk, currency="USD", time_zone="UTC"),
    )
    live_app.refresh_from_db()
    assert live_app.name == "Renamed"
    assert live_app.environment.slug == "live"
