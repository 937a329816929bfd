"""Both OpenAPI documents, fuzzed: whatever a client sends, the answer is never a server error.

A bounded schemathesis run in-process against the WSGI application, authenticated so that requests reach
the real code (an Integration API key; a staff session with its CSRF token for the Management API). It runs
in the PostgreSQL pass of ``make test``: PostgreSQL is the stricter store (NUL, surrogates, bigint, numeric
overflow all fail there and pass on SQLite). Derandomized, so a run is reproducible; each example's data
stays in the test's transaction, so later examples meet the customers and sessions earlier ones made.
"""

from __future__ import annotations

import os
import traceback
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from patronage.testing.factories import make_api_key
from patronage.workspace.models import Application

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Examples per operation and generation mode (valid data, then data the schema forbids). Tunable for a
# longer hunt: PATRONAGE_FUZZ_EXAMPLES=2000 make test-postgres PYTEST_ARGS=-k schemathesis
EXAMPLES = int(os.environ.get("PATRONAGE_FUZZ_EXAMPLES", "60"))
CSRF = "edgeedgeedgeedgeedgeedgeedgeedge"


def _failures(
    schema: Any, *, headers: dict[str, str], cookies: dict[str, str], statuses: Counter[int]
) -> Iterator[str]:
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, headers=headers, cookies=cookies)

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                response = case.call_and_validate(checks=[not_a_server_error])
                statuses[response.status_code] += 1

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to break in it: e.g. a lone string path parameter has no invalid value
            except Exception:
                where = f"{operation.method.upper()} {operation.path} ({mode})"
                yield f"{where}:\n{traceback.format_exc(limit=3)}"


@pytest.fixture
def app() -> Iterator[Any]:
    # As Django's test client does: the request must not close the connection holding the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_no_integration_api_request_is_a_server_error(app: Any, live_app: Application) -> None:
    # given: the Integration API's document and a key of a live application
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"Authorization": f"ApiKey-v1 {make_api_key(live_app)}"}
    # when: every operation is called with generated requests
    statuses: Counter[int] = Counter()
    failures = list(_failures(schema, headers=headers, cookies={}, statuses=statuses))
    # then: no server error, and the key let the requests reach the code (some succeeded)
    assert not failures, "\n\n".join(failures)
    assert sum(n for status, n in statuses.items() if status < 300) > EXAMPLES, statuses


def test_no_management_api_request_is_a_server_error(app: Any, live_app: Application) -> None:
    # given: the Management API's document and a superuser's session, writes carrying the CSRF token
    user = get_user_model().objects.create_superuser("fuzz", "fuzz@example.com", "fuzz-password-1")
    client = Client()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # when
    statuses: Counter[int] = Counter()
    failures = list(_failures(schema, headers={"X-CSRFToken": CSRF}, cookies=cookies, statuses=statuses))
    # then: no server error, and the session let the requests reach the code, writes included
    assert not failures, "\n\n".join(failures)
    assert sum(n for status, n in statuses.items() if status < 300) > EXAMPLES, statuses
    assert statuses[401] + statuses[403] < sum(statuses.values()) / 10, statuses
