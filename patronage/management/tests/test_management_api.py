from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db


def _staff(*perms: str) -> Client:
    user = get_user_model().objects.create_user("staff", password="pw-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def test_staff_with_permission_list_applications(live_app: Application) -> None:
    response = _staff("view_application").get("/api/v1/applications")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["items"][0]["slug"] == "live-shop" and body["items"][0]["environment"] == "live"


def test_staff_without_permission_are_forbidden(live_app: Application) -> None:
    response = _staff().get("/api/v1/applications")
    assert response.status_code == 403
    assert response.json()["message"] == "Your account lacks the permission workspace.view_application"


def test_anonymous_callers_are_refused(client: Client) -> None:
    response = client.get("/api/v1/applications")
    assert response.status_code == 401
    assert response.json()["message"].startswith("Log in to the back office")
    assert client.get("/api/v1/health").json() == {"status": "ok"}
