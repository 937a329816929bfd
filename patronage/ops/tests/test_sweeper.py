"""The worker's sweeper thread fails an import whose process went away, without anyone opening the job."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from patronage.core import clock
from patronage.dataio.models import ImportFileChunk, ImportJob
from patronage.ops.sweeper import StalledWorkSweeper
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_sweeper_fails_a_stalled_import_and_deletes_its_upload() -> None:
    # Given: an import left "running" by a killed process 11 minutes ago, its upload still stored
    job = ImportJob.objects.create(
        kind="customers", environment=environment_get("live"), filename="a.csv", size=3, status="running"
    )
    ImportFileChunk.objects.create(job=job, position=0, data=b"abc")
    ImportJob.objects.filter(pk=job.pk).update(updated=clock.now() - dt.timedelta(minutes=11))
    fresh = ImportJob.objects.create(
        kind="customers", environment=environment_get("live"), filename="b.csv", size=3, status="running"
    )
    # When: a worker's sweeper runs
    sweeper = StalledWorkSweeper(interval=0.05)
    sweeper.start()
    try:
        for _ in range(200):
            job.refresh_from_db()
            if job.status != ImportJob.Status.RUNNING:
                break
            time.sleep(0.05)
    finally:
        sweeper.stop()
        sweeper.join(timeout=10)
    # Then: the stalled job failed, saying why, and its upload is gone; the live one runs on
    assert job.status == ImportJob.Status.FAILED
    assert "its worker or command went away" in job.message
    assert not ImportFileChunk.objects.filter(job=job).exists()
    fresh.refresh_from_db()
    assert fresh.status == ImportJob.Status.RUNNING
