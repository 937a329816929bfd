"""Import jobs through the back office and the real worker: upload, queue, run, report."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from patronage.core import clock
from patronage.customers.models import CustomerProfile
from patronage.dataio.models import CHUNK_BYTES, ImportFileChunk, ImportJob
from patronage.dataio.running import import_job_run
from patronage.dataio.testing import run_queued_jobs
from patronage.testing.imports import stored_import

pytestmark = pytest.mark.django_db

GOOD = b"name,email,password\nAda,ada@example.com,secret\nBob,bob@example.com,\n"
BAD = b"name,email,password\nAda,ada@example.com,\nBad,not-an-email,\n"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, content: bytes, **fields: Any) -> Any:
    data = {
        "kind": "customers",
        "environment": "live",
        "file": SimpleUploadedFile("list.csv", content),
        **fields,
    }
    return client.post(reverse("admin:dataio_importjob_add"), data)


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_queued_then_run_by_the_worker(admin_client: Client) -> None:
    # When a staff member uploads a file
    response = upload(admin_client, GOOD)
    job = ImportJob.objects.get()
    # Then they land on the job's page, which shows it waiting for a worker
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:dataio_importjob_change", args=[job.pk])
    page = admin_client.get(response["Location"]).content.decode()
    assert "Waiting for a worker" in page and "list.csv" in page
    assert job.status == ImportJob.Status.QUEUED and job.created_by is not None
    # When the worker runs
    run_queued_jobs()
    # Then the customers exist, the job tells the counts, and the stored file is gone
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.created_count, job.updated_count, job.percent) == (2, 0, 100)
    assert CustomerProfile.objects.get(email="ada@example.com").check_password("secret")
    assert not ImportFileChunk.objects.filter(job=job).exists()
    status = admin_client.get(reverse("admin:dataio_importjob_status", args=[job.pk])).json()
    assert status["status"] == "succeeded" and status["finished"] and status["created"] == 2


@pytest.mark.django_db(transaction=True)
def test_bad_rows_are_listed_and_downloadable(admin_client: Client) -> None:
    upload(admin_client, BAD)
    run_queued_jobs()
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED and job.problem_count == 1
    page = admin_client.get(reverse("admin:dataio_importjob_change", args=[job.pk])).content.decode()
    assert "1 row has problems, so nothing was imported" in page
    assert "Download errors (CSV)" in page and "not-an-email" in page
    response = admin_client.get(reverse("admin:dataio_importjob_errors", args=[job.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="import-{job.pk}-errors.csv"'
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert list(csv.reader(io.StringIO(body))) == [
        ["line", "column", "problem"],
        ["3", "email", "email: 'not-an-email' is not a valid email address"],
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
        ("name,email,password\nZoë,z@x.io,\n".encode("utf-16"), "binary data"),
        ("naïve,email\n".encode("latin-1"), "not UTF-8"),
        (b"name;email;password\n", "unknown column"),
        (b"", "The submitted file is empty"),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_at_upload(
    admin_client: Client, content: bytes, message: str
) -> None:
    response = upload(admin_client, content)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_file_over_the_size_limit_is_refused(admin_client: Client, settings: Any) -> None:
    settings.PATRONAGE_IMPORT_MAX_BYTES = 10
    response = upload(admin_client, GOOD)
    assert "The file is larger than 10" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_big_upload_is_stored_in_pieces_and_read_back_whole() -> None:
    rows = b"".join(b"User %d,user%d@example.com,\n" % (i, i) for i in range(70_000))
    content = b"name,email,password\n" + rows
    assert len(content) > 2 * CHUNK_BYTES
    job = stored_import(content, filename="big.csv")
    assert ImportFileChunk.objects.filter(job=job).count() == len(content) // CHUNK_BYTES + 1
    outcome = import_job_run(job=job)
    assert outcome.created == 70_000
    assert CustomerProfile.objects.filter(email="user69999@example.com").exists()


def test_a_job_runs_once_even_if_its_task_runs_twice() -> None:
    job = stored_import(GOOD, filename="a.csv")
    assert import_job_run(job=job).created == 2
    assert import_job_run(job=job).created == 0
    assert CustomerProfile.objects.count() == 2


def test_the_sample_file_of_a_type_imports_cleanly(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:dataio_importjob_sample", args=["customers"]))
    assert response["Content-Disposition"] == 'attachment; filename="customers-sample.csv"'
    sample = response.content
    assert sample.startswith(b"name,email,password,")
    job = stored_import(sample, filename="sample.csv")
    import_job_run(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert admin_client.get(reverse("admin:dataio_importjob_sample", args=["nope"])).status_code == 404


def staff(*permissions: str) -> Client:
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw", is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def test_staff_without_permissions_cannot_import_nor_see_imports() -> None:
    client = staff()
    assert client.get(reverse("admin:dataio_importjob_add")).status_code == 403
    assert client.get(reverse("admin:dataio_importjob_changelist")).status_code == 403
    assert upload(client, GOOD).status_code == 403
    assert not ImportJob.objects.exists()


def test_staff_may_import_only_the_types_they_may_change() -> None:
    # Allowed to import, but not to change customers: customers are not offered
    client = staff("dataio.add_importjob", "dataio.view_importjob")
    page = client.get(reverse("admin:dataio_importjob_add")).content.decode()
    assert "You have no permission to import any type of file" in page
    assert upload(client, GOOD).status_code == 200
    assert not ImportJob.objects.exists()


def test_staff_with_the_permissions_can_import_customers() -> None:
    client = staff(
        "dataio.add_importjob",
        "dataio.view_importjob",
        "customers.add_customerprofile",
        "customers.change_customerprofile",
    )
    assert "Customers" in client.get(reverse("admin:dataio_importjob_add")).content.decode()
    assert upload(client, GOOD).status_code == 302
    assert ImportJob.objects.get().kind == "customers"


def test_a_job_whose_worker_died_is_failed_and_its_upload_deleted(admin_client: Client) -> None:
    job = stored_import(GOOD, filename="a.csv")
    assert ImportFileChunk.objects.filter(job=job).exists()
    long_ago = clock.now() - dt.timedelta(minutes=11)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, updated=long_ago)
    # When staff open the job
    page = admin_client.get(reverse("admin:dataio_importjob_change", args=[job.pk])).content.decode()
    # Then it shows as failed, saying why, and its stored upload is gone
    assert "The import stopped: its worker or command went away" in page
    status = admin_client.get(reverse("admin:dataio_importjob_status", args=[job.pk])).json()
    assert (status["status"], status["finished"]) == ("failed", True)
    assert not ImportFileChunk.objects.filter(job=job).exists()
