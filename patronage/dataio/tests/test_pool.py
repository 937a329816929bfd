"""Killing an import (kill -9) leaves no process behind and, once the job is swept as stalled, no upload."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from patronage.core import clock
from patronage.customers.imports import POOL_MIN_BYTES
from patronage.dataio.models import ImportFileChunk, ImportJob
from patronage.dataio.running import import_jobs_stop_stalled
from patronage.testing.imports import stored_import

ROOT = Path(__file__).resolve().parents[3]


def big_file(passwords: bool) -> bytes:
    """Rows past the size at which the import checks (and hashes) them in a pool of processes."""
    out = io.StringIO()
    out.write("name,email,password\n")
    i = 0
    while out.tell() < POOL_MIN_BYTES + 512 * 1024:
        password = f"password-{i}-of-the-test" if passwords else ""
        out.write(f"Customer number {i} of the kill test,kill{i}@example.com,{password}\n")
        i += 1
    return out.getvalue().encode()


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line), read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        found[int(entry)] = (int(ppid), state, command)
    return found


def alive(pids: set[int]) -> set[int]:
    now = processes()
    return {pid for pid in pids if pid in now and now[pid][1] not in ("Z", "X")}


POOL_USED = sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


@pytest.mark.skipif(not POOL_USED, reason="reads /proc; the pool needs two cores")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("passwords", [True, False], ids=["mid-hash", "mid-check"])
def test_a_killed_import_leaves_no_processes_and_its_upload_is_swept(passwords: bool) -> None:
    # Given an uploaded file big enough for a pool of processes (hashing with the real, slow hasher; or
    # without passwords, where the workers only check rows and wait for more between chunks)
    data = big_file(passwords)
    job = stored_import(data, filename="big.csv")
    assert ImportFileChunk.objects.filter(job=job).exists()
    # When a process runs it as a worker does, and is killed with -9 while its pool works
    run = (
        "from patronage.dataio.models import ImportJob\n"
        "from patronage.dataio.running import import_job_run\n"
        f"import_job_run(job=ImportJob.objects.get(pk={job.pk}))"
    )
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "patronage.settings"}
    importer = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", run],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    children: set[int] = set()
    try:
        for _ in range(600):  # up to about a minute for the pool to start hashing
            children = {pid for pid, (ppid, _, _) in processes().items() if ppid == importer.pid}
            job.refresh_from_db()
            workers = [pid for pid in children if "spawn_main" in processes().get(pid, (0, "", ""))[2]]
            if workers and (job.phase == "Hashing passwords" or not passwords):
                break
            assert importer.poll() is None, "the import ended before it was killed"
            time.sleep(0.1)
        else:
            pytest.fail(f"the import never started its pool (phase {job.phase!r})")
        commands = {pid: processes().get(pid, (0, "", ""))[2] for pid in children}
        assert any("resource_tracker" in command for command in commands.values()), commands
        os.kill(importer.pid, signal.SIGKILL)
        importer.wait(timeout=30)
        # Then its pool workers and multiprocessing's resource tracker go too (polled, no timing asserted)
        for _ in range(300):
            if not alive(children):
                break
            time.sleep(0.2)
        left = {pid: commands[pid] for pid in alive(children)}
        assert not left, f"still running after their parent was killed: {left}"
    finally:
        for pid in alive(children):  # never leave CPU burning, whatever the outcome
            os.kill(pid, signal.SIGKILL)
    # And the job, which stays "running", is swept once it stalls: failed, and its upload deleted
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    with clock.frozen_at(clock.now() + dt.timedelta(minutes=11)):
        assert import_jobs_stop_stalled() == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "upload the file again" in job.message
    assert not ImportFileChunk.objects.filter(job=job).exists()
