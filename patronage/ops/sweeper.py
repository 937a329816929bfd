"""Recover from killed processes: a thread every ``patronage worker`` runs beside its job loop.

- A mailing's sender renews its lease on the mailing as it works; when a worker is killed mid-send the lease
  runs out and the next sweep of any worker takes the send over (``sending.resume_stalled``), so a restart
  needs no one to press Resume.
- An import whose worker or CLI was killed makes no progress; the sweep marks it failed (nothing of it was
  saved) and deletes its stored upload (``running.import_jobs_stop_stalled``) instead of leaving both until
  someone opens the job or starts another import.
- A webhook delivery whose worker was killed mid-send (or whose job was never queued) stays pending long
  past its time; the sweep queues it again (``webhooks.deliveries_resume_stalled``).
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from patronage.campaigns.webhooks import deliveries_resume_stalled
from patronage.dataio.running import import_jobs_stop_stalled
from patronage.mailings.sending import resume_stalled

logger = logging.getLogger(__name__)
SWEEP_SECONDS = 30.0


def sweep() -> None:
    """One pass; each part on its own, so one failing does not stop the other."""
    try:
        for mailing_id in resume_stalled():
            logger.info("Resumed mailing #%s after its sender stopped", mailing_id)
    except Exception:  # the next sweep tries again; a worker must not die of it
        logger.exception("Could not resume stalled mailings")
    try:
        import_jobs_stop_stalled()  # logs each job it stops
    except Exception:
        logger.exception("Could not stop stalled imports")
    try:
        if resumed := deliveries_resume_stalled():
            logger.info("Queued %s webhook deliveries again after their worker stopped", len(resumed))
    except Exception:
        logger.exception("Could not queue stalled webhook deliveries")


class StalledWorkSweeper(threading.Thread):
    def __init__(self, interval: float = SWEEP_SECONDS) -> None:
        super().__init__(name="stalled-work", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                close_old_connections()
                sweep()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
