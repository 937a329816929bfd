"""Scale-out as an operator runs it: two `patronage serve` processes on two loopback ports and two
`patronage worker` processes against one PostgreSQL database. Races are sent across both servers at once;
nothing is lost or counted twice, and queued jobs run exactly once whichever worker takes them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django_tasks_db.models import DBTaskResult

from patronage.customer_sessions.models import CartItem, CustomerSession
from patronage.customers.models import CustomerProfile
from patronage.dataio.models import ImportJob
from patronage.dataio.services import import_job_create
from patronage.ops.tests.test_serve import free_port
from patronage.promocodes.models import PromoCode
from patronage.promocodes.services import promo_code_group_create
from patronage.testing.factories import make_api_key, make_application
from patronage.testing.threads import race
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12  # requests released at once in each race, alternating between the two servers
SESSIONS = 3  # sessions updated by every thread of the session race
CODES = 4  # promo codes raced for, each by every thread
JOBS = 6  # import jobs queued for the two workers
CSRF = "scaleouttestcsrftokenscaleoutte1"  # 32 characters: Django's form of an unmasked CSRF secret
START_TIMEOUT = 120  # seconds a process may take to answer; only bounds a broken start
# No proxy from the environment: every request stays on the loopback interface.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def database_url() -> str:
    """The URL of the database this test runs in (pytest-django's test database), for the subprocesses."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def call(base: str, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with OPENER.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with OPENER.open(base + "/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not start (exit {process.poll()})")
        time.sleep(0.2)


@pytest.fixture
def cluster() -> Iterator[list[str]]:
    """Two web servers (two gunicorn workers each) and two job workers on this test's database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "patronage.settings",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,  # shared by every server, or their session cookies differ
    }
    env.pop("PATRONAGE_TEST_DB_NAME", None)
    ports = [free_port(), free_port()]
    processes: list[subprocess.Popen[bytes]] = []

    def start(*verb: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "patronage.cli", *verb],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its gunicorn workers are stopped with it
        )
        processes.append(process)
        return process

    try:
        servers = [
            start("serve", "--no-migrate", "--workers", "2", "--bind", f"127.0.0.1:{port}") for port in ports
        ]
        start("worker")
        start("worker")
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, server in zip(bases, servers, strict=True):
            wait_until_up(base, server)
        yield bases
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def staff_headers() -> dict[str, str]:
    """A signed-in superuser's session cookie and CSRF token, as the back office's own calls send them."""
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "unused-password-1")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    cookie = f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={CSRF}"
    return {"Cookie": cookie, "X-CSRFToken": CSRF}


def test_two_servers_and_two_workers_lose_nothing_and_count_nothing_twice(cluster: list[str]) -> None:
    # given: a live shop with its key, customers holding issued promo codes, and a signed-in staff user
    key = make_api_key(make_application(environment="live"))
    integration = {"Authorization": f"ApiKey-v1 {key}"}
    live = environment_get(Environment.LIVE)
    codes = [f"SCALE{n}" for n in range(CODES)]
    promo_code_group_create(environment=live, name="Scale-out", codes=codes)
    for n, code in enumerate(codes):
        holder = CustomerProfile.objects.create(environment=live, integration_id=f"holder{n}")
        PromoCode.objects.filter(code=code).update(issued_to=holder, issued_at=holder.created)
    staff = staff_headers()

    # when: every thread updates the same sessions, each time on the other server, with its own attribute
    # and its own cart
    def update_sessions(i: int) -> list[int]:
        statuses = []
        for s in range(SESSIONS):
            cart = [{"sku": f"T{i}-{n}", "quantity": 1, "price": 1} for n in range(i + 1)]
            body = {
                "customerSession": {"profileId": "shopper", "cartItems": cart, "attributes": {f"a{i}": i}}
            }
            base = cluster[(i + s) % 2]
            statuses.append(call(base, "PUT", f"/v2/customer_sessions/shared{s}", body, integration)[0])
        return statuses

    updates = race(THREADS, update_sessions, timeout=120)
    # then: every update was answered, no attribute was lost and no cart mixes two writers
    assert updates == [[200] * SESSIONS] * THREADS
    for s in range(SESSIONS):
        session = CustomerSession.objects.get(integration_id=f"shared{s}")
        assert session.attributes == {f"a{i}": i for i in range(THREADS)}
        skus = list(CartItem.objects.filter(session=session).values_list("sku", flat=True))
        writers = {sku.split("-")[0] for sku in skus}
        assert len(writers) == 1, f"cart mixes writers: {skus}"
        assert len(skus) == int(writers.pop()[1:]) + 1 and session.total == len(skus)

    # when: each thread closes its own order of one customer, half of them on each server
    for i in range(THREADS):
        body = {
            "customerSession": {
                "profileId": "regular",
                "cartItems": [{"sku": "A", "quantity": 1, "price": i + 1}],
            }
        }
        assert call(cluster[i % 2], "PUT", f"/v2/customer_sessions/order{i}", body, integration)[0] == 200
    closes = race(
        THREADS,
        lambda i: call(
            cluster[(i + 1) % 2],
            "PUT",
            f"/v2/customer_sessions/order{i}",
            {"customerSession": {"state": "closed"}},
            integration,
        )[0],
        timeout=120,
    )
    # then: every order is counted on the customer once
    assert closes == [200] * THREADS
    regular = CustomerProfile.objects.get(integration_id="regular")
    assert regular.closed_sessions == THREADS
    assert regular.total_sales == Decimal(sum(range(1, THREADS + 1)))

    # when: every thread redeems every code at checkout, alternating servers
    def redeem(i: int) -> list[tuple[int, Any]]:
        return [
            call(
                cluster[(i + n) % 2],
                "POST",
                "/api/v1/promocodes/redeem",
                {"code": code, "customer": f"holder{n}"},
                staff,
            )
            for n, code in enumerate(codes)
        ]

    redeems = race(THREADS, redeem, timeout=120)
    # then: each code was redeemed exactly once: one 200, every other answer a 409
    assert all(isinstance(r, list) for r in redeems), redeems
    for n, code in enumerate(codes):
        statuses = sorted(answers[n][0] for answers in redeems)
        assert statuses == [200] + [409] * (THREADS - 1), (code, statuses)
        promo = PromoCode.objects.select_related("redeemed_by").get(code=code)
        assert promo.redeemed_at is not None and promo.redeemed_by is not None
        assert promo.redeemed_by.integration_id == f"holder{n}"

    # when: import jobs are queued for the two workers
    jobs = []
    for j in range(JOBS):
        rows = "".join(f"Buyer {j}-{r},buyer{j}-{r}@example.com,\n" for r in range(20))
        content = ("name,email,password\n" + rows).encode()
        jobs.append(
            import_job_create(
                kind="customers",
                environment=live,
                filename=f"part{j}.csv",
                size=len(content),
                skip_bad_rows=False,
                upload=io.BytesIO(content),
            )
        )
    finished = wait_for_jobs([job.pk for job in jobs])
    # then: every job ran once and every customer was imported once
    assert [job.status for job in finished] == [ImportJob.Status.SUCCEEDED] * JOBS
    assert [job.created_count for job in finished] == [20] * JOBS
    assert CustomerProfile.objects.filter(email__startswith="buyer").count() == JOBS * 20
    tasks = DBTaskResult.objects.filter(task_path__endswith="run_import_job")
    assert sorted(t.args_kwargs["args"][0] for t in tasks) == [job.pk for job in jobs]
    assert all(t.status == "SUCCESSFUL" and len(t.worker_ids) == 1 for t in tasks)
    print(f"import jobs run by {len({w for t in tasks for w in t.worker_ids})} of the 2 workers")


def wait_for_jobs(ids: list[int]) -> list[ImportJob]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        jobs = list(ImportJob.objects.filter(pk__in=ids).order_by("pk"))
        if all(job.finished for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.3)
