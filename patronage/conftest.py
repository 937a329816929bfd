from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from patronage.testing.api import IntegrationClient
from patronage.testing.browser import browser, page, staff_page  # noqa: F401  (fixtures)
from patronage.testing.factories import make_api_key, make_application
from patronage.testing.smtp import smtp_server  # noqa: F401  (fixture)
from patronage.workspace.models import Application, Environment


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks: runs in the PostgreSQL pass of `make test`")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    # Uploaded pictures go to the test's own folder, never into var/media.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _one_mailing_thread(settings: Any) -> None:
    # Extra SMTP connections and preparation lanes are threads with their own database connections, which
    # cannot see a test's uncommitted rows; tests with committed data (transaction=True) opt in to more.
    settings.PATRONAGE_MAILING_CONNECTIONS = 1
    settings.PATRONAGE_MAILING_PREPARE_LANES = 1


@pytest.fixture(autouse=True)
def _fresh_campaign_plans() -> None:
    # A rolled-back test gives the next one the same application IDs and rule versions: compiled plans
    # cached by the last test must not be taken for this one's.
    from patronage.campaigns.plan import forget_plans

    forget_plans()


@pytest.fixture
def live_app(db: None) -> Application:
    return make_application(environment=Environment.LIVE, slug="live-shop")


@pytest.fixture
def sandbox_app(db: None) -> Application:
    return make_application(environment=Environment.SANDBOX, slug="sandbox-shop")


@pytest.fixture
def api(live_app: Application) -> IntegrationClient:
    return IntegrationClient(make_api_key(live_app))


@pytest.fixture
def sandbox_api(sandbox_app: Application) -> IntegrationClient:
    return IntegrationClient(make_api_key(sandbox_app))
