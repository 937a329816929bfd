"""The API edge: what neither API lets through, and the shape of every refusal (both databases)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client

from patronage.customers.models import CustomerProfile
from patronage.testing.api import IntegrationClient

pytestmark = pytest.mark.django_db

NUL, SURROGATE = "\\u0000", "\\ud800"  # as they are written inside a JSON string


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["StatusCode"] == status and body["message"] and body["errors"][0]["title"]
    return body


@pytest.fixture
def staff(admin_client: Client) -> Client:
    return admin_client


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        ("/v2/customer_profiles/c", '{"attributes": {"Name": "a%sb"}}', "/attributes/Name"),
        ("/v2/customer_profiles/c", '{"attributes": {"bad%s": 1}}', "/attributes/bad\\u0000"),
        (
            "/v2/customer_sessions/s",
            '{"customerSession": {"profileId": "p%s"}}',
            "/customerSession/profileId",
        ),
        (
            "/v2/customer_sessions/s",
            '{"customerSession": {"cartItems": [{"sku": "A", "quantity": 1, "name": "x%s"}]}}',
            "/customerSession/cartItems/0/name",
        ),
        (
            "/v2/customer_sessions/s",
            '{"customerSession": {"couponCodes": ["ok", "C%s"]}}',
            "/customerSession/couponCodes/1",
        ),
        (
            "/v2/customer_profiles",
            '{"customerProfiles": [{"integrationId": "i%s"}]}',
            "/customerProfiles/0/integrationId",
        ),
    ],
)
@pytest.mark.parametrize("char", [NUL, SURROGATE])
def test_a_nul_or_lone_surrogate_in_an_integration_body_is_a_400_pointing_at_it(
    api: IntegrationClient, path: str, body: str, pointer: str, char: str
) -> None:
    # when
    response = api.put(path, raw=body.replace("%s", char))
    # then: refused where it is, and nothing stored
    error = _error(response, 400)
    expected = pointer.replace("\\u0000", char)
    assert error["errors"][0]["source"] == {"pointer": expected}
    assert "cannot be stored" in error["message"]
    assert not CustomerProfile.objects.exists()


def test_a_nul_in_a_path_or_query_parameter_is_a_400_naming_it(api: IntegrationClient, staff: Client) -> None:
    # when / then: the Integration API's path parameter and query parameter
    error = _error(api.put("/v2/customer_profiles/a%00b", {"attributes": {}}), 400)
    assert error["errors"][0]["source"] == {"parameter": "integrationId"}
    error = _error(api.get("/v2/customer_sessions/s?x=%00"), 400)
    assert error["errors"][0]["source"] == {"parameter": "x"}
    # and the Management API's
    error = _error(staff.get("/api/v1/applications?environment=live%00"), 400)
    assert error["errors"][0]["source"] == {"parameter": "environment"}
    error = _error(staff.get("/api/v1/segments/1%00/members"), 400)
    assert error["errors"][0]["source"]["parameter"]


def test_the_management_api_refuses_them_in_bodies_too(staff: Client) -> None:
    # when: a promo code to redeem with a NUL, as JSON and in a text body of codes
    redeem = staff.post(
        "/api/v1/promocodes/redeem",
        data='{"environment": "live", "customer": "c", "code": "A%sB"}'.replace("%s", NUL),
        content_type="application/json",
    )
    upload = staff.post("/api/v1/promocode-groups/1/codes", data=b"OK1\nBAD\x00\n", content_type="text/plain")
    # then
    assert _error(redeem, 400)["errors"][0]["source"] == {"pointer": "/code"}
    assert _error(upload, 400)["errors"][0]["source"] == {"line": "2"}


@pytest.mark.parametrize("price", [1e15, -1e20, "1e400", "NaN"])
def test_additional_cost_prices_are_bounded_like_cart_item_prices(api: IntegrationClient, price: Any) -> None:
    # when
    response = api.session("s", additionalCosts={"shipping": {"price": price}})
    # then
    error = _error(response, 400)
    assert error["errors"][0]["source"]["pointer"] == "/customerSession/additionalCosts/shipping/price"


def test_a_cart_whose_total_cannot_be_stored_is_refused(api: IntegrationClient) -> None:
    item = {"sku": "A", "quantity": 1_000_000, "price": 10**12}
    # when: each price is allowed, the total (2 * 10^18) is not
    response = api.session("s", cartItems=[item, item])
    # then
    assert _error(response, 400)["errors"][0]["source"] == {"pointer": "/customerSession/cartItems"}


def test_numbers_json_does_not_have_are_refused(api: IntegrationClient) -> None:
    for raw in ('{"attributes": {"x": NaN}}', '{"attributes": {"x": 1e400}}'):
        assert _error(api.put("/v2/customer_profiles/c", raw=raw), 400)["errors"][0]["title"]


@pytest.mark.parametrize("parameter", ["limit", "offset"])
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
def test_management_limit_and_offset_are_bounded(staff: Client, parameter: str, value: int) -> None:
    # when
    response = staff.get(f"/api/v1/applications?{parameter}={value}")
    # then
    assert _error(response, 400)["errors"][0]["source"] == {"parameter": parameter}


def test_multipart_without_a_boundary_is_a_400(api: IntegrationClient, staff: Client) -> None:
    for response in (
        staff.post("/api/v1/segments", data=b"x", content_type="multipart/form-data"),
        api.client.post(
            "/v2/customer_sessions/s/returns",
            data=b"x",
            content_type="multipart/form-data",
            headers={"Authorization": f"ApiKey-v1 {api.key}"},
        ),
    ):
        assert _error(response, 400)["errors"][0]["source"] == {"parameter": "Content-Type"}


def test_a_wrong_method_is_a_json_405_with_allow(api: IntegrationClient) -> None:
    # when
    response = api.call("DELETE", "/v2/customer_sessions/s")
    # then
    error = _error(response, 405)
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "PUT"}
    assert "DELETE" in error["message"]


def test_an_unknown_management_path_is_a_json_404(staff: Client) -> None:
    _error(staff.get("/api/v1/no-such-thing"), 404)


def _wsgi(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Call the WSGI application as gunicorn does for a chunked request: the body already de-chunked in
    ``wsgi.input``, no CONTENT_LENGTH."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
    }
    started: list[str] = []

    def start_response(status: str, headers_: Any, exc_info: Any = None) -> Any:
        started.append(status)

    chunks = WSGIHandler()(environ, start_response)
    return int(started[0].split()[0]), json.loads(b"".join(chunks))


def test_a_chunked_body_is_read(api: IntegrationClient, settings: Any) -> None:
    from django.core import signals
    from django.db import close_old_connections

    signals.request_finished.disconnect(close_old_connections)
    signals.request_started.disconnect(close_old_connections)
    try:
        headers = {"Authorization": f"ApiKey-v1 {api.key}"}
        # when: a chunked profile update
        status, body = _wsgi(
            "PUT", "/v2/customer_profiles/c", b'{"attributes": {"Name": "Chunked"}}', headers
        )
        # then: it was read and applied
        assert status == 200, body
        assert body["customerProfile"]["attributes"]["Name"] == "Chunked"
        # and a chunked body over the limit is refused like any other
        settings.PATRONAGE_MAX_BODY_BYTES = 100
        status, body = _wsgi("PUT", "/v2/customer_profiles/c", b"{" + b" " * 200 + b"}", headers)
        assert status == 413 and body["StatusCode"] == 413
    finally:
        signals.request_finished.connect(close_old_connections)
        signals.request_started.connect(close_old_connections)
