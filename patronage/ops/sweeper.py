"""Resume mailings whose sender died: a thread every ``patronage worker`` runs beside its job loop.

A sender renews its lease on the mailing as it works; when a worker is killed mid-send the lease runs out
and the next sweep of any worker takes the send over (``sending.resume_stalled``), so a restart needs no
one to press Resume.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from .sending import resume_stalled

logger = logging.getLogger(__name__)
SWEEP_SECONDS = 30.0


class StalledMailingsSweeper(threading.Thread):
    def __init__(self, interval: float = SWEEP_SECONDS) -> None:
        super().__init__(name="stalled-mailings", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                close_old_connections()
                try:
                    for mailing_id in resume_stalled():
                        logger.info("Resumed mailing #%s after its sender stopped", mailing_id)
                except Exception:  # the next sweep tries again; a worker must not die of it
                    logger.exception("Could not resume stalled mailings")
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
