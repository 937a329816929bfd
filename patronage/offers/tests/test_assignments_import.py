"""Assigning emails to private offers from CSV: the Import/Export job, an offer's "Import emails", the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from patronage.customers.models import CustomerProfile
from patronage.dataio.models import ImportJob
from patronage.dataio.running import import_job_run
from patronage.offers import imports
from patronage.offers.models import Offer, OfferAssignment
from patronage.offers.selectors import offers_visible
from patronage.testing.imports import stored_import
from patronage.testing.offers import make_offer
from patronage.workspace.models import Application

pytestmark = pytest.mark.django_db

# Until OffersConfig.ready() registers it (one line, see the report), the tests do.
imports.register()


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def spring(live_app: Application) -> Offer:
    return make_offer(environment="live", shops=[live_app], system_name="spring-sale")


@pytest.fixture
def vip(live_app: Application) -> Offer:
    return make_offer(environment="live", shops=[live_app], system_name="vip-night")


def run_import(
    content: str, *, skip_bad_rows: bool = False, options: dict[str, str] | None = None
) -> ImportJob:
    data = content.encode()
    job = stored_import(
        data, kind="offer-assignments", filename="emails.csv", skip_bad_rows=skip_bad_rows, options=options
    )
    import_job_run(job=job)
    job.refresh_from_db()
    return job


def assigned(offer: Offer) -> list[str]:
    return sorted(OfferAssignment.objects.filter(offer=offer).values_list("email", flat=True))


def problems(job: ImportJob) -> list[tuple[int | None, str]]:
    return list(job.problems.order_by("line", "id").values_list("line", "message"))


def test_a_file_assigns_emails_lowercased_and_the_customer_sees_the_offer(
    live_app: Application, spring: Offer, vip: Offer
) -> None:
    # Given a file naming two offers by system name, with emails in mixed case and spaces
    job = run_import(
        "Email,Offer ID\n"
        " Ada@Example.COM ,spring-sale\ngrace@example.com,spring-sale\nada@example.com,vip-night\n"
    )
    # Then every pair is assigned and the job says so
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.created_count, job.unchanged_count, job.skipped_count) == (3, 0, 0)
    assert job.message == "Created 3, updated 0."
    assert assigned(spring) == ["ada@example.com", "grace@example.com"]
    assert assigned(vip) == ["ada@example.com"]
    # And Ada, registering afterwards in another case, sees both offers
    visible = offers_visible(application=live_app, email="ADA@example.com")
    assert [o.system_name for o in visible] == ["spring-sale", "vip-night"]


def test_reimporting_changes_nothing_and_duplicates_count_once(spring: Offer) -> None:
    first = run_import("Email,Offer ID\nada@example.com,spring-sale\nADA@example.com,spring-sale\n")
    assert (first.created_count, first.unchanged_count) == (1, 1)
    # When the same file comes again
    again = run_import("email,offer id\nada@example.com,spring-sale\n")
    # Then nothing changes, and the job still succeeded (the emails are assigned, as the file says)
    assert again.status == ImportJob.Status.SUCCEEDED, again.message
    assert (again.created_count, again.unchanged_count) == (0, 1)
    assert again.message == "Created 0, 1 unchanged (already there)."
    assert assigned(spring) == ["ada@example.com"]


def test_bad_rows_are_reported_by_line_and_stop_the_whole_file(
    live_app: Application, spring: Offer, sandbox_app: Application
) -> None:
    # Given a public offer, and an offer of the other environment
    make_offer(environment="live", shops=[live_app], system_name="for-all", is_public=True)
    make_offer(environment="sandbox", shops=[sandbox_app], system_name="sandbox-only")
    job = run_import(
        "Email,Offer ID\n"
        "ada@example.com,spring-sale\n"
        "not-an-email,spring-sale\n"
        "bob@example.com,no-such-offer\n"
        "carol@example.com,for-all\n"
        "dan@example.com,sandbox-only\n"
        ",spring-sale\n"
    )
    # Then nothing is imported and each bad line says why
    assert job.status == ImportJob.Status.FAILED
    assert assigned(spring) == []
    assert problems(job) == [
        (3, "Email: 'not-an-email' is not a valid email address"),
        (4, "Offer ID: no offer with system name 'no-such-offer' in Live"),
        (5, "Offer ID: for-all is a public offer; public offers take no emails"),
        (6, "Offer ID: no offer with system name 'sandbox-only' in Live"),
        (7, "Email: required"),
    ]
    assert job.message.startswith("5 rows have problems, so nothing was imported.")
    # When skipping bad rows, the good one is imported
    skipped = run_import(
        "Email,Offer ID\nada@example.com,spring-sale\nnot-an-email,spring-sale\n", skip_bad_rows=True
    )
    assert (skipped.created_count, skipped.skipped_count) == (1, 1)
    assert assigned(spring) == ["ada@example.com"]


def test_a_file_without_offer_id_needs_a_fixed_offer(spring: Offer) -> None:
    job = run_import("Email\nada@example.com\n")
    assert job.status == ImportJob.Status.FAILED
    assert "Offer ID" in job.message and assigned(spring) == []


def test_an_import_for_one_offer_takes_emails_alone_and_rejects_other_offers(
    spring: Offer, vip: Offer
) -> None:
    # Given the import is for the spring offer (as from its "Import emails" button, by id)
    job = run_import("Email\nada@example.com\ngrace@example.com\n", options={"offer": str(spring.pk)})
    assert job.options == {"offer": spring.pk}
    assert (job.created_count, job.status) == (2, ImportJob.Status.SUCCEEDED)
    assert assigned(spring) == ["ada@example.com", "grace@example.com"]
    # When the file has an Offer ID column, empty or naming this offer is fine, another offer is not
    job = run_import(
        "Email,Offer ID\nbob@example.com,\ncarol@example.com,spring-sale\ndan@example.com,vip-night\n",
        options={"offer": "spring-sale"},
    )
    assert problems(job) == [(4, "Offer ID: 'vip-night', but this import is for offer spring-sale only")]
    assert assigned(vip) == [] and "bob@example.com" not in assigned(spring)


def test_the_cli_imports_for_one_offer(spring: Offer, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "emails.csv"
    path.write_text("Email\nada@example.com\nbad\n")
    # When run with --skip-bad-rows and --offer
    call_command("import", "offer-assignments", str(path), "--skip-bad-rows", "--offer", "spring-sale")
    out = capsys.readouterr().out
    assert "Created 1" in out and "skipped 1 bad row" in out and "line 3: Email: 'bad'" in out
    assert assigned(spring) == ["ada@example.com"]


def test_the_new_import_form_opens_for_one_offer_and_the_job_page_names_it(
    spring: Offer, live_app: Application
) -> None:
    # Given a staff member following the offer's "Import emails" link
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(admin)
    url = reverse("admin:dataio_importjob_add") + f"?kind=offer-assignments&offer={spring.pk}"
    page = client.get(url).content.decode()
    # Then the form names the offer and has the type chosen
    assert "spring-sale (" in page
    assert '<option value="offer-assignments" selected>' in page
    # When they upload a file of emails alone
    response = client.post(
        url,
        {
            "kind": "offer-assignments",
            "environment": "live",
            "option_offer": str(spring.pk),
            "file": SimpleUploadedFile("emails.csv", b"Email\nada@example.com\n"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get()
    assert job.options == {"offer": spring.pk}
    import_job_run(job=job)
    # Then the job page names the offer and shows the counts of this kind
    page = client.get(response["Location"]).content.decode()
    assert "spring-sale (" in page and 'id="job-unchanged"' in page and 'id="job-updated"' not in page
    assert assigned(spring) == ["ada@example.com"]


def test_customers_registering_later_see_their_assigned_offer(live_app: Application, spring: Offer) -> None:
    run_import("Email,Offer ID\nnew@example.com,spring-sale\n")
    CustomerProfile.objects.create(
        environment=live_app.environment, integration_id="c-1", email="New@Example.com"
    )
    assert list(offers_visible(application=live_app, email="New@Example.com")) == [spring]
