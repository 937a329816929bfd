"""A segment's members need the permission to view segments, also through the customer list."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from patronage.segments.models import Segment
from patronage.segments.services import segment_create
from patronage.testing.mailings import make_customers
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/customers/customerprofile/"
EXPORT = CUSTOMERS + "export/"
VIPS = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "condition", "field": "profile.email", "operator": "domain", "value": "vip.example"}
    ],
}


def clerk(*codenames: str) -> Client:
    user = get_user_model().objects.create_user("clerk", password="pw-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_customerprofile", *codenames]))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def vips() -> Segment:
    live = environment_get(Environment.LIVE)
    vip = make_customers(live, 2, prefix="x")[0]
    vip.email = "secret@vip.example"
    vip.save(update_fields=["email"])
    return segment_create(environment=live, name="VIPs", rules=VIPS)


def test_without_segment_permission_the_list_neither_offers_nor_applies_the_segment_filter(
    vips: Segment,
) -> None:
    # Given a clerk who may see customers but not segments
    client = clerk()
    # Then the customer list offers no segment filter
    page = client.get(CUSTOMERS)
    assert page.status_code == 200 and "By segment" not in page.content.decode()
    # And asking for a segment's members by address is refused
    response = client.get(f"{CUSTOMERS}?segment={vips.pk}")
    assert response.status_code == 403
    assert "secret@vip.example" not in response.content.decode()


def test_without_segment_permission_the_export_of_a_segment_is_refused(vips: Segment) -> None:
    client = clerk()
    response = client.get(f"{EXPORT}?segment={vips.pk}")
    assert response.status_code == 403
    # The plain export of the list stays theirs
    assert client.get(EXPORT).status_code == 200


def test_with_segment_permission_the_list_and_export_filter_by_segment(vips: Segment) -> None:
    client = clerk("view_segment")
    page = client.get(f"{CUSTOMERS}?segment={vips.pk}")
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert "By segment" in client.get(CUSTOMERS).content.decode()
    export = client.get(f"{EXPORT}?segment={vips.pk}")
    assert export.status_code == 200
    assert b"secret@vip.example" in b"".join(export.streaming_content)  # type: ignore[attr-defined]
