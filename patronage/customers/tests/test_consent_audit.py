"""The consent audit: every change of a customer's marketing consent leaves a row saying when, from what to
what and through what (back office, panel, import, Integration API; the unsubscribe link is tested with the
mailings), and the customer page shows the history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.customers.consent import ConsentActor, consent_set
from patronage.customers.models import ConsentChange, CustomerProfile
from patronage.customers.services import profiles_bulk_upsert
from patronage.dataio.models import ImportJob
from patronage.dataio.running import import_job_run
from patronage.testing.api import IntegrationClient
from patronage.testing.imports import stored_import
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

from .test_customers_admin import LIST, form_data

pytestmark = pytest.mark.django_db
Source = ConsentChange.Source


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def boss() -> Any:
    return get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")


@pytest.fixture
def staff(client: Client, boss: Any) -> Client:
    client.force_login(boss)
    return client


def history(profile: CustomerProfile) -> list[tuple[bool | None, bool, str, str]]:
    """(old, new, source, detail) of the customer's consent changes, oldest first."""
    rows = ConsentChange.objects.filter(profile=profile).order_by("created", "id")
    return list(rows.values_list("old_value", "new_value", "source", "detail"))


def customer(live: Environment, integration_id: str, **fields: Any) -> CustomerProfile:
    return CustomerProfile.objects.create(environment=live, integration_id=integration_id, **fields)


# --- back office ------------------------------------------------------------------------------------------


def test_staff_adding_and_editing_a_customer_record_who_changed_consent(
    staff: Client, boss: Any, live: Environment
) -> None:
    # given: staff add a customer with consent
    assert staff.post(f"{LIST}add/", form_data(accepts_marketing="on")).status_code == 302
    ada = CustomerProfile.objects.get(email="ada@example.com")
    # when: they save the customer unchanged, then take consent away
    url = f"{LIST}{ada.pk}/change/"
    assert staff.post(url, form_data(accepts_marketing="on")).status_code == 302
    assert staff.post(url, form_data()).status_code == 302
    # then: granted at creation, then withdrawn, both by boss; the unchanged save left no row
    assert history(ada) == [
        (None, True, Source.BACK_OFFICE, "boss"),
        (True, False, Source.BACK_OFFICE, "boss"),
    ]
    assert set(ConsentChange.objects.values_list("staff_user", flat=True)) == {boss.pk}


def test_a_customer_added_without_consent_has_no_history(staff: Client) -> None:
    assert staff.post(f"{LIST}add/", form_data()).status_code == 302
    assert not ConsentChange.objects.exists()


def test_the_customer_page_shows_the_consent_history_newest_first(
    staff: Client, boss: Any, live: Environment
) -> None:
    # given: a customer whose consent changed through three paths
    ada = customer(live, "ada", email="ada@example.com")
    consent_set(profile_id=ada.pk, accepts=True, actor=ConsentActor.import_job(None))
    consent_set(profile_id=ada.pk, accepts=False, actor=ConsentActor.link("“Autumn” (#4)"))
    consent_set(profile_id=ada.pk, accepts=True, actor=ConsentActor.staff(boss))
    # when
    page = staff.get(f"{LIST}{ada.pk}/change/").content.decode()
    # then: a Consent history tab with the three changes, the newest first
    assert "Consent history" in page
    table = page[page.index('id="consent-history"') :]
    positions = [table.index(text) for text in ("Back office", "Unsubscribe link", "CSV import")]
    assert positions == sorted(positions)
    assert "from the mailing “Autumn” (#4)" in table and "boss" in table


def test_a_long_history_shows_the_latest_changes_and_says_how_many_there_are(
    staff: Client, live: Environment
) -> None:
    ada = customer(live, "ada")
    ConsentChange.objects.bulk_create(
        ConsentChange(profile=ada, old_value=n % 2 == 0, new_value=n % 2 == 1, source=Source.API)
        for n in range(130)
    )
    page = staff.get(f"{LIST}{ada.pk}/change/").content.decode()
    assert "Showing the latest 100 of 130 changes." in page


# --- customer panel ---------------------------------------------------------------------------------------


def test_a_customer_unsubscribing_in_the_panel_is_recorded_with_the_shop(live_app: Application) -> None:
    # given: a customer with consent and a panel password
    anna = customer(live_app.environment, "anna", email="anna@example.com", accepts_marketing=True)
    anna.set_password("plum-orchard-42")
    anna.save()
    client = Client()
    panel = f"/panel/{live_app.slug}/"
    assert (
        client.post(f"{panel}login/", {"email": anna.email, "password": "plum-orchard-42"}).status_code == 302
    )
    # when: they untick marketing, then save again without a change
    client.post(f"{panel}account/", {"name": "Anna", "phone": ""})
    client.post(f"{panel}account/", {"name": "Anna N", "phone": ""})
    # then: one row, through the panel of this shop
    assert history(anna) == [(True, False, Source.PANEL, f"{live_app.name} customer panel")]


# --- CSV import -------------------------------------------------------------------------------------------


def run_import(content: str, *, user: Any = None) -> ImportJob:
    data = content.encode()
    job = stored_import(data, filename="spring.csv", actor=user)
    import_job_run(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    return job


def test_an_import_records_real_changes_and_new_customers_with_consent_naming_the_file(
    live: Environment, boss: Any
) -> None:
    # given: one customer who consents, one who does not, one without a say in the file
    keen = customer(live, "keen", email="keen@example.com", accepts_marketing=True)
    shy = customer(live, "shy", email="shy@example.com")
    same = customer(live, "same", email="same@example.com", accepts_marketing=True)
    # when: a file withdraws keen's consent, grants shy's, keeps same's and adds two customers
    job = run_import(
        "name,email,password,accepts_marketing\n"
        "Keen,keen@example.com,,no\n"
        "Shy,shy@example.com,,yes\n"
        "Same,same@example.com,,yes\n"
        "New Yes,new-yes@example.com,,yes\n"
        "New No,new-no@example.com,,no\n",
        user=boss,
    )
    # then: a row per real change, each naming the file and the job, by the user who started it
    detail = f"file spring.csv (import job #{job.pk})"
    assert history(keen) == [(True, False, Source.IMPORT, detail)]
    assert history(shy) == [(False, True, Source.IMPORT, detail)]
    assert history(same) == []
    assert history(CustomerProfile.objects.get(email="new-yes@example.com")) == [
        (None, True, Source.IMPORT, detail)
    ]
    assert history(CustomerProfile.objects.get(email="new-no@example.com")) == []
    assert set(ConsentChange.objects.values_list("staff_user", flat=True)) == {boss.pk}


def test_an_import_without_the_consent_column_records_nothing(live: Environment) -> None:
    keen = customer(live, "keen", email="keen@example.com", accepts_marketing=True)
    run_import("name,email,password\nKeen,keen@example.com,\nNew,new@example.com,\n")
    keen.refresh_from_db()
    assert keen.accepts_marketing and not ConsentChange.objects.exists()


def test_a_failed_import_leaves_no_audit_row(live: Environment) -> None:
    keen = customer(live, "keen", email="keen@example.com", accepts_marketing=True)
    data = b"name,email,password,accepts_marketing\nKeen,keen@example.com,,no\nBad,not-an-email,,yes\n"
    job = stored_import(data, environment=live, filename="bad.csv")
    import_job_run(job=job)
    keen.refresh_from_db()
    assert keen.accepts_marketing and not ConsentChange.objects.exists()


# --- Integration API --------------------------------------------------------------------------------------


def test_the_api_records_changes_with_the_keys_name_and_prefix_never_the_key(
    api: IntegrationClient, live: Environment
) -> None:
    # when: a shop creates a customer with consent, resends it unchanged, then withdraws it
    for marketing in (True, True, False):
        response = api.put("/v2/customer_profiles/c-1", {"attributes": {"AcceptsMarketing": marketing}})
        assert response.status_code == 200
    # then: two rows naming the key by its name and prefix
    profile = CustomerProfile.objects.get(integration_id="c-1")
    rows = history(profile)
    assert [row[:3] for row in rows] == [(None, True, Source.API), (True, False, Source.API)]
    detail = rows[0][3]
    assert detail.startswith("API key test (") and detail.endswith("…)")
    assert api.key not in detail and api.key[:8] in detail


def test_the_bulk_api_records_every_change_in_one_insert(api: IntegrationClient, live: Environment) -> None:
    # given: ten customers, five of them consenting
    for n in range(10):
        customer(live, f"c{n}", accepts_marketing=n < 5)
    # when: a bulk update grants everyone consent, and adds two customers (one consenting)
    items = [{"integrationId": f"c{n}", "attributes": {"AcceptsMarketing": True}} for n in range(10)]
    items += [
        {"integrationId": "new-1", "attributes": {"AcceptsMarketing": True}},
        {"integrationId": "new-2", "attributes": {"Name": "No say"}},
    ]
    response = api.put("/v2/customer_profiles", {"customerProfiles": items})
    assert response.status_code in (200, 204), response.content
    # then: the five real changes and the new consenting customer
    changes = ConsentChange.objects.order_by("profile__integration_id")
    assert [(c.profile.integration_id, c.old_value, c.new_value) for c in changes] == [
        *((f"c{n}", False, True) for n in range(5, 10)),
        ("new-1", None, True),
    ]
    assert all(c.source == Source.API and c.detail.startswith("API key test") for c in changes)


@pytest.mark.parametrize("size", [10, 100])
def test_the_bulk_service_takes_as_many_queries_for_a_hundred_customers_as_for_ten(
    live: Environment, size: int, request: pytest.FixtureRequest
) -> None:
    # given: customers without consent
    for n in range(size):
        customer(live, f"c{n}")
    # when: one call grants consent to all of them
    with CaptureQueriesContext(connection) as queries:
        profiles_bulk_upsert(
            environment=live, items=[(f"c{n}", {"AcceptsMarketing": True}) for n in range(size)]
        )
    # then: every change recorded, in a number of statements that does not grow with the customers
    assert ConsentChange.objects.count() == size
    audit = [q for q in queries.captured_queries if ConsentChange._meta.db_table in q["sql"]]
    assert len(audit) == 1
