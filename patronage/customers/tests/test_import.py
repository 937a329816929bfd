"""Importing customers from CSV: what a staff member sees in the job and in the customers afterwards."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from patronage.customers import imports
from patronage.customers.models import CustomerGroup, CustomerProfile
from patronage.customers.services import profile_upsert
from patronage.dataio.models import ImportJob
from patronage.dataio.running import import_job_run
from patronage.testing.imports import stored_import
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

HEADER = "name,email,password,phone,birthday,group,tax_exempt,accepts_marketing,attr.tier"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The default PBKDF2 costs ~0.2 s per hash; the kill test below keeps the real one on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def live(db: None) -> Environment:
    return environment_get(Environment.LIVE)


@pytest.fixture
def vip(live: Environment) -> CustomerGroup:
    return CustomerGroup.objects.create(environment=live, name="VIP")


def run_import(
    content: str | bytes, *, environment: str = Environment.LIVE, skip_bad_rows: bool = False
) -> ImportJob:
    """What the worker does with an upload: the real service, with the file in memory."""
    data = content.encode() if isinstance(content, str) else content
    job = stored_import(data, environment=environment, filename="customers.csv", skip_bad_rows=skip_bad_rows)
    import_job_run(job=job)
    job.refresh_from_db()
    return job


def problems(job: ImportJob) -> list[tuple[int | None, str, str]]:
    return list(job.problems.order_by("line", "id").values_list("line", "column", "message"))


def snapshot() -> list[Any]:
    return list(CustomerProfile.objects.order_by("pk").values())


def customer(email: str) -> CustomerProfile:
    return CustomerProfile.objects.get(email__iexact=email)


def test_a_good_file_creates_customers_with_every_column(live: Environment, vip: CustomerGroup) -> None:
    # Given a file of two new customers
    job = run_import(
        f"{HEADER}\n"
        "Ada Lovelace,ada@example.com,s3cret,'+1 201-555-0123,1815-12-10,vip,no,yes,gold\n"
        'Grace Hopper,grace@example.com,,,,,yes,NO,"{""level"": 2}"\n'
    )
    # Then both are created and the job says so
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.created_count, job.updated_count, job.skipped_count, job.total_rows) == (2, 0, 0, 2)
    assert job.message == "Created 2, updated 0."
    ada = customer("ada@example.com")
    assert ada.environment == live
    assert ada.integration_id == "ada@example.com"
    assert ada.name == "Ada Lovelace"
    assert ada.phone == "+12015550123"
    assert ada.birth_date == dt.date(1815, 12, 10) and ada.birth_md == 1210
    assert ada.group == vip
    assert (ada.tax_exempt, ada.accepts_marketing) == (False, True)
    assert ada.attributes == {"tier": "gold"}
    # And the password works in the customer panel at once
    assert ada.check_password("s3cret")
    grace = customer("grace@example.com")
    assert grace.password == "" and grace.group is None and grace.birth_date is None
    assert (grace.tax_exempt, grace.accepts_marketing) == (True, False)
    assert grace.attributes == {"tier": {"level": 2}}


def test_rows_update_customers_by_email_whatever_its_case(live: Environment, vip: CustomerGroup) -> None:
    # Given an existing customer with a password, a group, a phone and custom attributes
    profile, _ = profile_upsert(
        environment=live,
        integration_id="shop-7",
        attributes={"Name": "Ada", "Email": "Ada@Example.com", "PhoneNumber": "+12015550123", "a": 1, "b": 2},
    )
    profile.set_password("old password")
    profile.group = vip
    profile.save()
    # When a file with only some columns names her in another case, with an empty password
    job = run_import("NAME,Email,Password,attr.b,attr.c\nAda King,ADA@example.COM,,3,\n")
    # Then she is updated, not duplicated
    assert (job.created_count, job.updated_count) == (0, 1), job.message
    assert CustomerProfile.objects.count() == 1
    profile.refresh_from_db()
    assert profile.name == "Ada King"
    assert profile.email == "ADA@example.COM"
    # And what the file does not say is left alone: password, group, phone, integration ID, attribute a
    assert profile.check_password("old password")
    assert profile.group == vip and profile.phone == "+12015550123" and profile.integration_id == "shop-7"
    assert profile.attributes == {"a": 1, "b": 3}


def test_empty_cells_clear_fields_and_null_removes_an_attribute(
    live: Environment, vip: CustomerGroup
) -> None:
    run_import(f"{HEADER}\nAda,ada@example.com,pw,+12015550123,1990-01-02,VIP,yes,yes,gold\n")
    job = run_import(f"{HEADER}\n,ada@example.com,,,,,,,null\n")
    assert job.updated_count == 1, job.message
    ada = customer("ada@example.com")
    assert (ada.name, ada.phone, ada.birth_date, ada.birth_md, ada.group) == ("", "", None, None, None)
    assert (ada.tax_exempt, ada.accepts_marketing) == (False, False)
    assert ada.attributes == {}
    assert ada.check_password("pw")


def test_an_attribute_value_replaces_the_old_one_whole(live: Environment) -> None:
    header = "name,email,password,attr.prefs,attr.on,attr.big,attr.o"
    row = 'Ada,ada@example.com,,"{""a"": 1}",true,12345678901234567890,"{""x"": [1, 2.5]}"'
    run_import(f"{header}\n{row}\n")
    run_import('name,email,password,attr.prefs\nAda,ada@example.com,,"{""b"": [2]}"\n')
    assert customer("ada@example.com").attributes == {
        "prefs": {"b": [2]},
        "on": True,
        "big": 12345678901234567890,
        "o": {"x": [1, 2.5]},
    }


def test_an_email_with_an_international_domain_matches_whatever_the_ascii_case(live: Environment) -> None:
    run_import("name,email,password\nAda,ada@exämple.com,\n")
    job = run_import("name,email,password\nAda King,ADA@exämple.com,\n")
    assert (job.created_count, job.updated_count) == (0, 1), job.message
    assert CustomerProfile.objects.get().name == "Ada King"


def test_integration_ids_default_to_the_email_and_rename_existing_customers(live: Environment) -> None:
    profile_upsert(environment=live, integration_id="old-id", attributes={"Email": "bob@example.com"})
    job = run_import(
        "name,email,password,integration_id\n"
        "Bob,bob@example.com,,crm-bob\n"
        "Cy,CY@Example.com,,\n"
        "Di,di@example.com,,crm-di\n"
    )
    assert (job.created_count, job.updated_count) == (2, 1), job.message
    assert customer("bob@example.com").integration_id == "crm-bob"
    assert customer("cy@example.com").integration_id == "cy@example.com"
    assert customer("di@example.com").integration_id == "crm-di"


def test_every_bad_row_is_reported_with_its_line_and_nothing_changes(
    live: Environment, vip: CustomerGroup
) -> None:
    # Given an existing customer
    profile_upsert(environment=live, integration_id="taken", attributes={"Email": "owner@example.com"})
    before = snapshot()
    # When a file with one good row and a bad row of every kind is imported
    job = run_import(
        "name,email,password,integration_id,phone,birthday,group,tax_exempt,accepts_marketing,attr.x\n"
        "Good,good@example.com,,,,,,,,\n"  # line 2
        "No email,,,,,,,,,\n"  # 3
        "Bad email,not-an-email,,,,,,,,\n"  # 4
        "Dup,GOOD@example.com,,,,,,,,\n"  # 5: duplicate email in the file
        "Date,date@example.com,,,,1990-02-30,,,,\n"  # 6
        "Group,group@example.com,,,,,Platinum,,,\n"  # 7
        "Columns,columns@example.com,,,\n"  # 8: too few columns
        "Phone,phone@example.com,,,12,,,,,\n"  # 9
        "Flag,flag@example.com,,,,,,maybe,,\n"  # 10
        "Json,json@example.com,,,,,,,,{x\n"  # 11
        "Taken,taken@example.com,,taken,,,,,,\n"  # 12: integration ID of another customer
        "Twice,twice@example.com,,same,,,,,,\n"  # 13
        "Twice,twice2@example.com,,same,,,,,,\n"  # 14: integration ID twice in the file
    )
    # Then nothing was imported, and the job says why
    assert job.status == ImportJob.Status.FAILED
    assert (job.created_count, job.updated_count, job.skipped_count) == (0, 0, 0)
    assert job.message.startswith("11 rows have problems, so nothing was imported")
    assert "“Skip bad rows” to import the other 2 rows" in job.message
    assert snapshot() == before
    # And every bad row is listed with its line, column and reason
    found = {(line, column): message for line, column, message in problems(job)}
    assert found[(3, "email")] == "email: required"
    assert found[(4, "email")] == "email: 'not-an-email' is not a valid email address"
    assert found[(5, "email")] == "email: GOOD@example.com is also on line 2 (duplicate email in the file)"
    assert found[(6, "birthday")] == "birthday: '1990-02-30' is not a date such as 1990-05-17"
    assert found[(7, "group")] == "group: unknown group 'Platinum' (groups: VIP)"
    assert found[(8, "")] == "expected 10 columns (as in the header), found 5"
    assert found[(9, "phone")].startswith("phone: '12' is not")
    assert found[(10, "tax_exempt")] == "tax_exempt: 'maybe' is not yes or no"
    assert found[(11, "attr.x")].startswith("attr.x: '{x' starts like JSON but is not valid JSON")
    assert found[(12, "integration_id")] == (
        "integration_id: 'taken' is already used by the customer with email owner@example.com"
    )
    assert found[(14, "integration_id")] == "integration_id: 'same' is also on line 13"
    assert len(found) == 11


def test_skipping_bad_rows_imports_the_good_ones(live: Environment) -> None:
    job = run_import(
        "name,email,password\nAda,ada@example.com,\nBad,bad,\nBob,bob@example.com,\n"
        "Ada again,ADA@example.com,\n",
        skip_bad_rows=True,
    )
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.created_count, job.updated_count, job.skipped_count, job.total_rows) == (2, 0, 2, 4)
    assert job.message == "Created 2, updated 0, skipped 2 bad rows."
    assert [line for line, _, _ in problems(job)] == [3, 5]
    assert sorted(CustomerProfile.objects.values_list("name", flat=True)) == ["Ada", "Bob"]


def test_a_new_customer_whose_email_is_another_customers_integration_id_is_a_bad_row(
    live: Environment,
) -> None:
    profile_upsert(
        environment=live, integration_id="ada@example.com", attributes={"Email": "other@example.com"}
    )
    job = run_import("name,email,password\nAda,ada@example.com,\n")
    assert job.status == ImportJob.Status.FAILED
    [(line, column, message)] = problems(job)
    assert (line, column) == (2, "integration_id")
    assert "already used by the customer with email other@example.com" in message
    assert "new customers get their email as integration ID; give one" in message


def test_a_spreadsheet_file_with_bom_crlf_and_trailing_empty_rows_is_read(live: Environment) -> None:
    job = run_import(b"\xef\xbb\xbfname,email,password\r\nAda,ada@example.com,\r\n,,\r\n\r\n")
    assert (job.status, job.created_count, job.total_rows) == (ImportJob.Status.SUCCEEDED, 1, 1)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name,mail,password\nAda,ada@example.com,\n", "unknown column 'mail'"),
        ("name,email\nAda,ada@example.com\n", "missing: password"),
        ("email,name,password,attr.Email\n", "column attr.Email: use the email column instead"),
        ("", "The file is empty"),
    ],
)
def test_a_wrong_header_is_refused_clearly(live: Environment, content: str, expected: str) -> None:
    job = run_import(content)
    assert job.status == ImportJob.Status.FAILED
    assert expected in job.message or any(expected in message for _, _, message in problems(job))
    assert not CustomerProfile.objects.exists()


def test_a_header_only_file_imports_nothing(live: Environment) -> None:
    job = run_import("name,email,password\n")
    assert job.status == ImportJob.Status.FAILED
    assert job.message == "The file has no rows after its header: nothing was imported."


def test_a_file_that_is_not_utf8_is_refused_with_the_line(live: Environment) -> None:
    job = run_import("name,email,password\nZoë,zoe@example.com,\n".encode("latin-1"))
    assert job.status == ImportJob.Status.FAILED
    assert job.message.startswith("Line 2 is not UTF-8 text")
    assert not CustomerProfile.objects.exists()


def test_imports_of_one_environment_never_touch_the_other(live: Environment) -> None:
    profile_upsert(
        environment=live, integration_id="ada", attributes={"Email": "ada@example.com", "Name": "Live"}
    )
    job = run_import("name,email,password\nSandbox Ada,ada@example.com,\n", environment=Environment.SANDBOX)
    assert (job.created_count, job.updated_count) == (1, 0)
    assert customer_in(Environment.LIVE, "ada@example.com").name == "Live"
    assert customer_in(Environment.SANDBOX, "ada@example.com").name == "Sandbox Ada"


def customer_in(slug: str, email: str) -> CustomerProfile:
    return CustomerProfile.objects.get(environment__slug=slug, email=email)


def test_a_big_file_is_checked_and_hashed_in_worker_processes(
    live: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file big enough for the process pool (lowered here) with passwords on every row
    monkeypatch.setattr(imports, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(imports, "CHUNK_ROWS", 50)
    rows = "".join(f"User {i},user{i}@example.com,pw-{i}\n" for i in range(300))
    content = ("name,email,password\n" + rows + "Bad,nope,\n").encode()
    job = stored_import(content, environment=live, filename="big.csv", skip_bad_rows=True)
    # When it is imported
    outcome = import_job_run(job=job)
    job.refresh_from_db()
    # Then the outcome is the same as in one process, and the workers hashed the passwords
    assert (job.created_count, job.skipped_count) == (300, 1), job.message
    [note] = outcome.notes
    assert note.startswith("Hashed 300 passwords in ") and "passwords/s" in note
    assert [line for line, _, _ in problems(job)] == [302]
    assert customer("user299@example.com").check_password("pw-299")
    assert customer("user0@example.com").check_password("pw-0")


# --- the CLI ------------------------------------------------------------------------------------------
def write(tmp_path: Path, content: str, name: str = "customers.csv") -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def test_cli_imports_and_prints_counts(
    live: Environment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "name,email,password\nAda,ada@example.com,pw\nBob,bob@example.com,\n")
    call_command("import", "customers", path)
    out = capsys.readouterr().out
    assert "Created 2, updated 0." in out
    assert "2 rows in" in out and "rows/s" in out
    assert ImportJob.objects.get().status == ImportJob.Status.SUCCEEDED


def test_cli_lists_bad_rows_and_exits_1_when_nothing_was_imported(
    live: Environment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "name,email,password\nAda,ada@example.com,\nBad,bad,\n")
    with pytest.raises(SystemExit) as exited:
        call_command("import", "customers", path)
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "1 row has problems, so nothing was imported" in out
    assert "line 3: email: 'bad' is not a valid email address" in out
    assert not CustomerProfile.objects.exists()
    # With --skip-bad-rows the good row goes in
    call_command("import", "customers", path, "--skip-bad-rows", "--environment", "sandbox")
    assert "Created 1, updated 0, skipped 1 bad row." in capsys.readouterr().out
    assert customer_in(Environment.SANDBOX, "ada@example.com")


def test_cli_refuses_a_missing_file_with_status_2(live: Environment, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("import", "customers", str(tmp_path / "nope.csv"))
    assert caught.value.returncode == 2


def cli_env() -> dict[str, str]:
    """Environment for a `patronage` subprocess that talks to this test's database."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "patronage.settings"}


@pytest.mark.django_db(transaction=True)
def test_cli_exit_status_and_progress_from_a_real_process(tmp_path: Path) -> None:
    environment_get(Environment.LIVE)
    good = write(tmp_path, "name,email,password\nAda,ada@example.com,\n")
    result = subprocess.run(
        [sys.executable, "-m", "patronage.cli", "import", "customers", good],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Created 1, updated 0." in result.stdout
    bad = write(tmp_path, "name,email,password\nBad,bad,\n", "bad.csv")
    result = subprocess.run(
        [sys.executable, "-m", "patronage.cli", "import", "customers", bad],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
    )
    assert result.returncode == 1
    assert "line 2: email: 'bad' is not a valid email address" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_killing_an_import_midway_leaves_the_customers_as_they_were(tmp_path: Path) -> None:
    # Given customers, some of which the file would update
    live = environment_get(Environment.LIVE)
    for i in range(5):
        profile_upsert(environment=live, integration_id=f"c{i}", attributes={"Email": f"user{i}@example.com"})
    before = snapshot()
    # And a file of 30,000 rows with passwords (hashed with the real, slow hasher: the run takes long)
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("name,email,password,accepts_marketing\n")
        for i in range(30_000):
            f.write(f"User {i},user{i}@example.com,password-{i},yes\n")
    # When `patronage import customers big.csv` runs and is killed once it reports progress
    process = subprocess.Popen(
        [sys.executable, "-m", "patronage.cli", "import", "customers", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        progress = process.stderr.readline()
        assert " rows, " in progress, progress + process.stderr.read()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        with_children_gone(process)
    # Then the customers table is exactly as before
    assert snapshot() == before
    # And the job never finished: it shows as running (the back office flags it once it stalls)
    assert ImportJob.objects.get().status == ImportJob.Status.RUNNING


def with_children_gone(process: subprocess.Popen[str]) -> None:
    """Worker processes notice their parent died and stop; make sure, so no CPU is left burning."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)


# --- concurrency (PostgreSQL) ---------------------------------------------------------------------------
def race_imports(files: list[str], monkeypatch: pytest.MonkeyPatch) -> list[ImportJob]:
    """Run the imports in threads with their own connections, all staged before any of them saves."""
    barrier = threading.Barrier(len(files), timeout=30)
    merge = imports._Staging.merge

    def merge_together(self: Any, *args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return merge(self, *args, **kwargs)

    monkeypatch.setattr(imports._Staging, "merge", merge_together)
    results: list[Any] = [None] * len(files)

    def run(i: int) -> None:
        try:
            results[i] = run_import(files[i])
        except Exception as exc:  # surfaced by the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(files))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_creating_the_same_emails_never_duplicate_nor_half_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment_get(Environment.LIVE)
    first = "name,email,password\n" + "".join(f"First {i},user{i}@example.com,\n" for i in range(0, 200))
    second = "name,email,password\n" + "".join(f"Second {i},user{i}@example.com,\n" for i in range(100, 300))
    jobs = race_imports([first, second], monkeypatch)
    assert all(isinstance(job, ImportJob) for job in jobs), jobs
    statuses = sorted(job.status for job in jobs)
    # One saved; the other found its new emails taken meanwhile and changed nothing
    assert statuses == [ImportJob.Status.FAILED, ImportJob.Status.SUCCEEDED]
    winner = next(job for job in jobs if job.status == ImportJob.Status.SUCCEEDED)
    loser = next(job for job in jobs if job.status == ImportJob.Status.FAILED)
    assert "Nothing was imported" in loser.message
    assert winner.created_count == 200
    names = set(CustomerProfile.objects.values_list("name", flat=True))
    prefix = "First" if winner is jobs[0] else "Second"
    assert len(names) == 200 and all(name.startswith(prefix) for name in names)
    assert CustomerProfile.objects.count() == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_updating_the_same_customers_both_apply_without_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = environment_get(Environment.LIVE)
    for i in range(300):
        profile_upsert(environment=live, integration_id=f"c{i}", attributes={"Email": f"user{i}@example.com"})
    # In opposite orders, so locks taken in file order would deadlock
    first = "name,email,password,attr.first\n" + "".join(
        f"A,user{i}@example.com,,yes\n" for i in range(0, 300)
    )
    second = "name,email,password,attr.second\n" + "".join(
        f"B,user{i}@example.com,,yes\n" for i in reversed(range(0, 300))
    )
    jobs = race_imports([first, second], monkeypatch)
    assert [job.status for job in jobs] == [ImportJob.Status.SUCCEEDED] * 2, jobs
    assert [job.updated_count for job in jobs] == [300, 300]
    # Each import applied whole: every customer has both attributes and one writer's name throughout
    assert set(CustomerProfile.objects.values_list("name", flat=True)) in ({"A"}, {"B"})
    assert all(
        p == {"first": "yes", "second": "yes"}
        for p in CustomerProfile.objects.values_list("attributes", flat=True)
    )
